"""The ``wac-azure`` command line (also ``python -m wac_azure``).

A thin shell over the public API::

    wac-azure check   TARGET [--public SOURCE ...]
    wac-azure plan    TARGET [--port N] [--public SOURCE ...]
    wac-azure enable  TARGET [--port N] [--public SOURCE ...] [--dry-run]
    wac-azure enable  --all --subscription ID [--resource-group RG] [--port N] [--dry-run] ...
    wac-azure status  TARGET
    wac-azure port    TARGET [--settings-only]
    wac-azure url     TARGET [--via private|public]
    wac-azure disable TARGET [--keep-rules]
    wac-azure diagnose TARGET [--via private|public] [--client-ip IP] [--probe]
    wac-azure discover [--subscription ID] [--resource-group RG] [--all-os]
    wac-azure enable-many  TARGET... | --all --subscription ID [--resource-group RG] [--dry-run]
    wac-azure disable-many TARGET... | --all --subscription ID [--resource-group RG]
    wac-azure demo

TARGET is a VM resource ID or its Azure portal URL. Every verb takes
``--json`` (one JSON document on stdout, snake_case keys, compact unless
``--verbose``; on any error ``{"error": {"type", "message"}}``), ``--emulator``
(run against an embedded ARM emulator holding the demo scenario, plus ``app-01``
with Windows Admin Center already enabled), ``--endpoint URL`` / ``--ca-file PATH``
/ ``--token TOKEN`` (an ARM endpoint such as a running
``python -m wac_azure.testing serve``; or the environment variables
``WAC_AZURE_ENDPOINT``, ``WAC_AZURE_CA_FILE``, ``WAC_AZURE_TOKEN``, which the
flags override) and ``--quiet`` (no progress lines on stderr). Real Azure is
reached with azure-identity's ``DefaultAzureCredential`` unless a token is given.
Exit codes: 0 ok, 1 the operation or a check failed (including an error Azure's
answer caused), 2 usage error (argparse, or an argument of yours that is invalid:
a bad resource ID, port, address...), 130 interrupted (Ctrl-C). A closed pipe
(``| head``) ends quietly with the command's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

from azure.core.exceptions import ClientAuthenticationError

import wac_azure
from wac_azure import (
    DEFAULT_PORT,
    AzureSession,
    ExtensionManager,
    InvalidInputError,
    NetworkRulePlanner,
    PrivateAccess,
    PublicAccess,
    RequirementChecker,
    TqdmProgress,
    VmTarget,
    WacAzureError,
    diagnose,
    disable,
    disable_many,
    discover,
    enable,
    enable_many,
)
from wac_azure._cli.demo import prepare_cli_emulator, run_demo, run_selfcheck
from wac_azure._cli.output import discover_doc, document, error_doc
from wac_azure._core.extension import normalize_proxy
from wac_azure._core.validate import check_diagnose_options, check_port, check_timeout
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator, StaticTokenCredential

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The environment variables the CLI reads when the matching flag is not given.
ENV_ENDPOINT = "WAC_AZURE_ENDPOINT"
ENV_CA_FILE = "WAC_AZURE_CA_FILE"
ENV_TOKEN = "WAC_AZURE_TOKEN"
ENV_SUBSCRIPTION = "WAC_AZURE_SUBSCRIPTION"


class UsageError(Exception):
    """A usage error found after parsing (exit code 2; ``"UsageError"`` under ``--json``)."""


class _ArgumentError(Exception):
    """argparse found the command line wrong (exit code 2); ``usage`` is its usage line."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises instead of printing and exiting, so that
    ``main`` can report a usage error as JSON under ``--json``."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message, self.format_usage())


_COMMON_DEFAULTS: dict[str, object] = {
    "json": False,
    "emulator": False,
    "quiet": False,
    "verbose": False,
    "timeout": 900.0,
    "endpoint": None,
    "ca_file": None,
    "token": None,
}


def _common(*, suppress: bool) -> _Parser:
    """The options every verb takes (accepted before and after the verb).

    The copy given to the verbs uses ``SUPPRESS`` defaults, so that an option
    given before the verb is not reset by the verb's parser.
    """
    common = _Parser(add_help=False)

    def default(name: str) -> object:
        return argparse.SUPPRESS if suppress else _COMMON_DEFAULTS[name]

    common.add_argument(
        "--json", action="store_true", default=default("json"), help="one JSON document on stdout"
    )
    common.add_argument(
        "--emulator",
        action="store_true",
        default=default("emulator"),
        help="run against an embedded ARM emulator holding the demo scenario (no Azure needed)",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=default("quiet"),
        help="no progress lines on stderr",
    )
    common.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=default("verbose"),
        help="log to stderr (INFO)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=default("timeout"),
        metavar="SECONDS",
        help="overall limit (900)",
    )
    common.add_argument(
        "--endpoint",
        default=default("endpoint"),
        metavar="URL",
        help=f"the ARM endpoint, https://... (${ENV_ENDPOINT}; default: Azure's)",
    )
    common.add_argument(
        "--ca-file",
        default=default("ca_file"),
        metavar="PATH",
        help=f"PEM CA bundle to trust for the endpoint (${ENV_CA_FILE})",
    )
    common.add_argument(
        "--token",
        default=default("token"),
        metavar="TOKEN",
        help=f"bearer token to send instead of signing in (${ENV_TOKEN}); never printed",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", metavar="TARGET", help="VM resource ID or Azure portal URL")

    def access(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--public",
            nargs="+",
            metavar="SOURCE",
            help="connect over the VM's public IP, only from these addresses/CIDRs",
        )
        p.add_argument(
            "--public-anywhere",
            action="store_true",
            help="connect over the public IP from ANY address (risky; prefer --public)",
        )
        p.add_argument(
            "--acknowledge-risk",
            action="store_true",
            help="accept --public sources covering more than a /8's worth of public addresses",
        )

    def port(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"WAC port ({DEFAULT_PORT})")
        p.add_argument(
            "--allow-well-known-port",
            action="store_true",
            help="accept a --port below 1024 or of RDP/WinRM (refused by default)",
        )

    def fleet_selection(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--all", action="store_true", help="every Windows VM of --subscription (and group)"
        )
        p.add_argument(
            "--subscription", metavar="ID", help=f"subscription for --all (${ENV_SUBSCRIPTION})"
        )
        p.add_argument("--resource-group", metavar="NAME", help="only this group (with --all)")
        p.add_argument("--concurrency", type=int, help="writes in flight per subscription (16)")
        p.add_argument(
            "--processes", type=int, help="worker processes, whole subscriptions each (1)"
        )

    def dry_run(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dry-run", action="store_true", help="read and plan only; write nothing")

    parser = _Parser(
        prog="wac-azure",
        description="Put Windows Admin Center on Azure VMs and take it off again.",
        epilog="Exit codes: 0 ok, 1 the operation or a check failed, 2 usage error, "
        "130 interrupted.",
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"wac-azure {wac_azure.__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    p = sub.add_parser("check", parents=[common], help="check a VM against WAC's requirements")
    target(p)
    access(p)
    p = sub.add_parser("plan", parents=[common], help="show the NSG rules WAC needs")
    target(p)
    access(p)
    port(p)
    p = sub.add_parser("enable", parents=[common], help="check, open the rules, install, URL")
    p.add_argument("target", nargs="?", metavar="TARGET", help="VM resource ID or Azure portal URL")
    access(p)
    port(p)
    fleet_selection(p)
    dry_run(p)
    p.add_argument("--salt", help="extension salt (default: reuse the deployed one)")
    p.add_argument("--proxy", help="proxy for the extension, http://host:port")
    p = sub.add_parser("status", parents=[common], help="the AdminCenter extension's state")
    target(p)
    p = sub.add_parser("port", parents=[common], help="the port WAC listens on")
    target(p)
    p.add_argument(
        "--settings-only",
        action="store_true",
        help="read the extension settings only (no Run Command in the VM)",
    )
    p = sub.add_parser("url", parents=[common], help="the https://<ip>:<port> to connect to")
    target(p)
    p.add_argument("--via", choices=["private", "public"], default="private")
    p = sub.add_parser("disable", parents=[common], help="uninstall WAC and remove our rules")
    target(p)
    p.add_argument(
        "--keep-rules", action="store_true", help="leave the NSG rules wac_azure created"
    )
    p = sub.add_parser("diagnose", parents=[common], help="run the troubleshooting checklist")
    target(p)
    p.add_argument("--via", choices=["private", "public"], default="private")
    p.add_argument("--client-ip", metavar="IP", help="the address your browser connects from")
    p.add_argument(
        "--probe", action="store_true", help="also try TLS to https://<ip>:<port> from here"
    )
    for verb, what in (("enable-many", "enable WAC on"), ("disable-many", "take WAC off")):
        p = sub.add_parser(
            verb, parents=[common], help=f"{what} many VMs at ARM's pace, with a progress bar"
        )
        p.add_argument("targets", nargs="*", metavar="TARGET", help="VM resource IDs or URLs")
        fleet_selection(p)
        if verb == "enable-many":
            port(p)
            access(p)
            dry_run(p)
        else:
            p.add_argument("--keep-rules", action="store_true", help="keep our NSG rules")
    p = sub.add_parser(
        "discover", parents=[common], help="list the Windows VMs of a subscription (or group)"
    )
    p.add_argument(
        "--subscription", metavar="ID", help=f"the subscription to list (${ENV_SUBSCRIPTION})"
    )
    p.add_argument("--resource-group", metavar="NAME", help="only this resource group")
    p.add_argument("--all-os", action="store_true", help="Linux VMs too")
    p = sub.add_parser("demo", parents=[common], help="the lifecycle demo on the emulator")
    p.add_argument(
        "--selfcheck", action="store_true", help="only create a VM and read it back via the SDK"
    )
    return parser


# ----------------------------------------------------------------------------- output


class _Progress:
    """Progress lines on stderr, with the elapsed time."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._start = time.monotonic()

    def __call__(self, event: object) -> None:  # a ProgressEvent: str() is its line
        message = str(event)
        if self._enabled:
            elapsed = time.monotonic() - self._start
            print(f"[{elapsed:6.1f}s] {message}", file=self._stream, flush=True)


class _Output:
    """stdout, written through once per command; a reader that has gone (``| head``)
    ends the output quietly and the command keeps its own exit code."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            _silence(self.stream)


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null, so that the interpreter's own
    flush at exit does not complain about the closed pipe either."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a StringIO: nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _emit(args: argparse.Namespace, out: _Output, value: Any) -> None:
    if args.json:
        doc = document(value, verbose=args.verbose)
        indent = 2 if args.verbose else None
        out.write(json.dumps(doc, indent=indent, sort_keys=True, default=str) + "\n")
    else:
        out.write(f"{value}\n")


# ----------------------------------------------------------------------------- sessions


class _Connection:
    """Where the CLI talks to: flags first, then the environment, then Azure."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.endpoint: str | None = args.endpoint or os.environ.get(ENV_ENDPOINT) or None
        self.ca_file: str | None = args.ca_file or os.environ.get(ENV_CA_FILE) or None
        self.token: str | None = args.token or os.environ.get(ENV_TOKEN) or None

    def check(self) -> None:
        """Usage errors for an endpoint that is not https, a CA file that is not there."""
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme.lower() != "https" or not parts.hostname:
                raise UsageError(
                    f"--endpoint / ${ENV_ENDPOINT} must be an https:// URL (a bearer token is "
                    f"never sent in clear text), got {self.endpoint!r}"
                )
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise UsageError(
                f"--ca-file / ${ENV_CA_FILE}: no such file {self.ca_file!r} (the PEM CA bundle "
                "to trust; `python -m wac_azure.testing serve` prints its path)"
            )
        if self.token is not None and not self.token.strip():
            raise UsageError(f"--token / ${ENV_TOKEN} is empty")

    @property
    def local(self) -> bool:
        """The endpoint is on this machine (an emulator): poll briskly, not every 5 s."""
        if self.endpoint is None:
            return False
        host = urlsplit(self.endpoint).hostname or ""
        if host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def _poll_interval(args: argparse.Namespace) -> float:
    """Seconds between a fleet's lists while installs run (15 against Azure)."""
    return 0.2 if _Connection(args).local else 15.0


@asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[AzureSession]:
    if args.emulator:
        emu = ArmEmulator(seed=0)
        async with emu.session() as session:
            await prepare_cli_emulator(emu, session)
            yield session
        return
    conn = _Connection(args)
    options: dict[str, Any] = {"polling_interval": 0.1 if conn.local else 5}
    if conn.endpoint:
        options["base_url"] = conn.endpoint
    if conn.ca_file:
        options["connection_verify"] = conn.ca_file
    if conn.token:
        async with AzureSession(StaticTokenCredential(conn.token), **options) as session:
            yield session
        return
    try:
        # lazy: azure-identity (and msal) load only when signing in to real Azure
        from azure.identity.aio import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - azure-identity is a dependency
        raise UsageError(f"azure-identity is needed for real Azure: {exc}") from None

    credential = DefaultAzureCredential()
    try:
        async with AzureSession(credential, **options) as session:
            yield session
    finally:
        await credential.close()


def _shards(args: argparse.Namespace, session: AzureSession) -> dict[str, Any]:
    """``processes`` and a session factory for ``--processes N`` (N > 1)."""
    n = getattr(args, "processes", None)
    if n is not None and n < 1:
        raise UsageError(f"--processes must be at least 1, got {n}")
    if n is None or n == 1:
        return {}
    if args.emulator:
        raise UsageError(
            "--processes needs real Azure: the embedded emulator lives in this process"
        )
    if _Connection(args).token:
        # --token / $WAC_AZURE_TOKEN: the workers send the same token (the credential
        # holds only the string, so it pickles), to the same --endpoint and CA file
        return {"processes": n, "session_factory": wac_azure.SessionFactory.of(session)}
    # lazy: azure-identity (and msal) load only when signing in to real Azure
    from azure.identity.aio import DefaultAzureCredential

    # each worker makes its own DefaultAzureCredential (a credential does not pickle)
    factory = wac_azure.SessionFactory.of(session, credential=DefaultAzureCredential)
    return {"processes": n, "session_factory": factory}


def _access(args: argparse.Namespace) -> wac_azure.AccessMode:

    public = getattr(args, "public", None)
    anywhere = getattr(args, "public_anywhere", False)
    if public and anywhere:
        raise UsageError("give either --public SOURCE... or --public-anywhere, not both")
    if anywhere:
        return PublicAccess.anywhere(acknowledge_risk=True)
    acknowledge = bool(getattr(args, "acknowledge_risk", False))
    if acknowledge and not public:
        raise UsageError("--acknowledge-risk goes with --public SOURCE...")
    if public:
        return PublicAccess(public, acknowledge_risk=acknowledge)
    return PrivateAccess()


# ----------------------------------------------------------------------------- verbs


def _check_arguments(args: argparse.Namespace) -> None:
    """Validate the user's arguments up front: an invalid one is a usage error (exit 2).

    Errors raised later, once Azure has answered, are failures of the operation (exit 1),
    even when they are InvalidInputError subclasses (a rule Azure holds that does not parse...).
    """

    try:
        check_timeout(args.timeout)
        if getattr(args, "port", None) is not None:
            check_port(
                args.port, allow_well_known_port=getattr(args, "allow_well_known_port", False)
            )
        if getattr(args, "proxy", None):
            normalize_proxy(args.proxy)
        salt = getattr(args, "salt", None)
        if salt is not None and not salt.strip():
            raise InvalidInputError("--salt must not be empty")
        concurrency = getattr(args, "concurrency", None)
        if concurrency is not None and concurrency < 1:
            raise InvalidInputError(f"--concurrency must be at least 1, got {concurrency}")
        if args.verb == "diagnose":
            check_diagnose_options(args.via, args.client_ip, args.timeout, 1.0)
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from exc
    if args.emulator and (args.endpoint or args.ca_file or args.token):
        raise UsageError(
            "--emulator runs its own emulator: leave out --endpoint, --ca-file and --token"
        )
    if not args.emulator:
        _Connection(args).check()


async def _run(args: argparse.Namespace, out: _Output, err: TextIO) -> int:

    progress = _Progress(err, not args.quiet)
    if args.verb == "demo":
        if args.selfcheck:
            return await run_selfcheck(out.stream)
        return await run_demo(out.stream, json_output=args.json)
    _check_arguments(args)
    if args.verb == "discover":
        return await _discover(args, out)
    if args.verb == "enable" and (args.all or args.subscription or args.resource_group):
        if args.target is not None:
            raise UsageError("give either TARGET or --all --subscription ID, not both")
        if args.salt or args.proxy:
            raise UsageError("--salt and --proxy work on one TARGET, not with --all")
        args.targets = []
        return await _run_many(args, out, err, verb="enable-many")
    if args.verb in ("enable-many", "disable-many"):
        return await _run_many(args, out, err, verb=args.verb)
    if args.verb == "enable" and args.concurrency is not None:
        raise UsageError("--concurrency goes with --all")
    if args.target is None:
        raise UsageError("give the TARGET VM (a resource ID or portal URL), or --all")
    try:
        target = VmTarget.parse(args.target)
        access = _access(args)  # PrivateAccess() for verbs without --public
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from exc
    async with _session(args) as session:
        if args.verb == "check":
            report = await RequirementChecker(session).check(target, access=access)
            _emit(args, out, report)
            return EXIT_OK if report.passed else EXIT_FAILED
        if args.verb == "plan":
            plan = await NetworkRulePlanner(session).plan(
                target,
                access=access,
                port=args.port,
                allow_well_known_port=args.allow_well_known_port,
            )
            _emit(args, out, plan)
            return EXIT_FAILED if plan.is_blocked else EXIT_OK
        if args.verb == "enable":
            result = await enable(
                session,
                target,
                access=access,
                port=args.port,
                dry_run=args.dry_run,
                timeout=args.timeout,
                progress=progress,
                salt=args.salt,
                proxy=args.proxy,
                allow_well_known_port=args.allow_well_known_port,
            )
            _emit(args, out, result)
            return EXIT_OK
        if args.verb == "diagnose":
            found = await diagnose(
                session,
                target,
                client_ip=args.client_ip,
                via=args.via,
                probe=args.probe,
                timeout=args.timeout,
            )
            _emit(args, out, found)
            return EXIT_FAILED if found.problems else EXIT_OK

        manager = ExtensionManager(session)
        if args.verb == "status":
            state = await manager.status(target, timeout=args.timeout)
            _emit(args, out, state)
            return EXIT_FAILED if state.failed else EXIT_OK
        if args.verb == "port":
            info = await manager.locate_port(
                target, from_guest=not args.settings_only, timeout=args.timeout
            )
            _emit(args, out, info)
            return EXIT_OK
        if args.verb == "url":
            url = await manager.connection_url(target, via=args.via, timeout=args.timeout)
            _emit(args, out, {"target": str(target), "url": url} if args.json else url)
            return EXIT_OK
        if args.verb == "disable":
            done = await disable(
                session,
                target,
                remove_rules=not args.keep_rules,
                timeout=args.timeout,
                progress=progress,
            )
            _emit(args, out, done)
            return EXIT_OK
    raise UsageError(f"unknown verb {args.verb!r}")  # pragma: no cover - argparse rejects it


def _subscription(args: argparse.Namespace) -> str:
    """``--subscription``, else ``$WAC_AZURE_SUBSCRIPTION``, else the emulator's."""
    sub = args.subscription or os.environ.get(ENV_SUBSCRIPTION)
    if not sub and args.emulator:
        sub = DEFAULT_SUBSCRIPTION
    if not sub:
        raise UsageError(f"give the subscription: --subscription ID (or ${ENV_SUBSCRIPTION})")
    return str(sub)


async def _discover(args: argparse.Namespace, out: _Output) -> int:
    sub = _subscription(args)
    async with _session(args) as session:
        targets = await discover(
            session,
            sub,
            resource_group=args.resource_group,
            windows_only=not args.all_os,
            timeout=args.timeout,
        )
    if args.json:
        _emit(args, out, discover_doc(targets, sub, args.resource_group))
    else:
        out.write("".join(f"{t.resource_id}\n" for t in targets))
    return EXIT_OK


class _Bar:
    """A tqdm-like bar for fleets on stderr: a line at most every second, and the last."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.total: int | None = None
        self.n = 0
        self._stream = stream
        self._enabled = enabled
        self._start = time.monotonic()
        self._shown = 0.0
        self._postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self._enabled and (now - self._shown >= 1.0 or self.n == self.total):
            self._shown = now
            print(
                f"[{now - self._start:6.1f}s] {self.n}/{self.total or '?'} VMs  {self._postfix}",
                file=self._stream,
                flush=True,
            )

    def set_postfix_str(self, text: str) -> None:
        self._postfix = text


async def _run_many(args: argparse.Namespace, out: _Output, err: TextIO, *, verb: str) -> int:
    """``enable-many`` / ``disable-many`` (and ``enable --all``): targets given, or
    ``--all`` discovered."""

    if args.all == bool(args.targets):
        raise UsageError("give either TARGET... or --all --subscription ID, not both or neither")
    if not args.all and (args.subscription or args.resource_group):
        raise UsageError("--subscription and --resource-group go with --all")
    try:
        access = _access(args)
        given = [VmTarget.parse(t) for t in args.targets]
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from exc
    async with _session(args) as session:
        if args.all:
            sub = _subscription(args)
            targets = await discover(
                session, sub, resource_group=args.resource_group, timeout=args.timeout
            )
        else:
            targets = given
        progress = TqdmProgress(_Bar(err, not args.quiet))
        if verb == "enable-many":
            result = await enable_many(
                session,
                targets,
                access=access,
                port=args.port,
                concurrency=args.concurrency,
                progress=progress,
                timeout=args.timeout,
                poll_interval=_poll_interval(args),
                dry_run=args.dry_run,
                allow_well_known_port=args.allow_well_known_port,
                **_shards(args, session),
            )
        else:
            result = await disable_many(
                session,
                targets,
                remove_rules=not args.keep_rules,
                concurrency=args.concurrency,
                progress=progress,
                timeout=args.timeout,
                poll_interval=_poll_interval(args),
                **_shards(args, session),
            )
    _emit(args, out, result)
    return EXIT_OK if result.ok else EXIT_FAILED


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``exc`` (``exc`` itself when it has none)."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` was asked for (read before parsing, for argparse's own errors)."""
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; return the exit code (0 ok, 1 failed, 2 usage, 130 interrupted)."""
    out = _Output(stdout or sys.stdout)
    err = stderr or sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(words)
    except _ArgumentError as exc:
        print(f"{exc.usage.rstrip()}\nwac-azure: error: {exc}", file=err)
        if _wants_json(words):
            out.write(json.dumps({"error": {"type": "UsageError", "message": str(exc)}}) + "\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version: argparse printed them
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("wac-azure: interrupted", file=err)
        return EXIT_INTERRUPTED
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=err, format="%(name)s: %(message)s")
    azure_logger = logging.getLogger("azure")
    azure_level = azure_logger.level
    if not args.verbose:  # the CLI reports failures itself; keep SDK warnings off the terminal
        azure_logger.setLevel(logging.ERROR)
    # The library's WARNINGs (unconfirmed checks, rules that only claim to be ours) go to
    # stderr as "wac-azure: warning: ..." lines; --quiet silences them, --verbose shows
    # INFO through basicConfig above. Without this handler Python's last resort would
    # print them bare, even under --quiet.
    library_logger = logging.getLogger("wac_azure")
    warnings_handler: logging.Handler | None = None
    if not args.verbose:
        warnings_handler = logging.StreamHandler(err)
        warnings_handler.setLevel(logging.ERROR if args.quiet else logging.WARNING)
        warnings_handler.setFormatter(logging.Formatter("wac-azure: warning: %(message)s"))
        library_logger.addHandler(warnings_handler)

    def fail(exc: BaseException, prefix: str) -> None:
        if args.json:
            doc = error_doc(exc, verbose=args.verbose)
            out.write(json.dumps(doc, indent=2 if args.verbose else None, default=str) + "\n")
        print(f"wac-azure: {prefix}{exc}", file=err)

    try:
        return _main(args, out, err, fail)
    finally:
        azure_logger.setLevel(azure_level)
        if warnings_handler is not None:
            library_logger.removeHandler(warnings_handler)


class Interrupted(Exception):
    """Ctrl-C: what ``--json`` reports (``{"error": {"type": "Interrupted", ...}}``)."""

    def __str__(self) -> str:
        return "interrupted"


def _run_interruptibly(coro: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(coro)``, where Ctrl-C cancels ``coro`` and then raises
    ``KeyboardInterrupt`` however ``coro`` ended: a request cut short by the
    cancellation may surface as a connection error, which must not be mistaken for
    a failure of the operation (exit 1 instead of 130)."""
    interrupted = False

    async def main() -> int:
        nonlocal interrupted
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            if task is not None:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            return await coro
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        code = asyncio.run(main())
    except BaseException:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    if interrupted:
        raise KeyboardInterrupt
    return code


def _main(
    args: argparse.Namespace,
    out: _Output,
    err: TextIO,
    fail: Callable[[BaseException, str], None],
) -> int:

    try:
        return _run_interruptibly(_run(args, out, err))
    except UsageError as exc:
        # An InvalidInputError from the user's own arguments: report it as itself.
        cause = exc.__cause__
        fail(cause if isinstance(cause, InvalidInputError) else exc, "usage error: ")
        return EXIT_USAGE
    except (WacAzureError, ClientAuthenticationError) as exc:
        cause = _root_cause(exc)
        if isinstance(cause, ClientAuthenticationError) and _Connection(args).token:
            fail(
                cause,
                f"the endpoint refused the token (--token / ${ENV_TOKEN}: expired, or not "
                "one for this endpoint?): ",
            )
        elif isinstance(cause, ClientAuthenticationError):
            fail(
                cause,
                "could not authenticate to Azure (DefaultAzureCredential: sign in with "
                "`az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or "
                "use a managed identity): ",
            )
        else:
            fail(exc, "")
        return EXIT_FAILED
    except BrokenPipeError:  # the reader went away in the middle of a write: end quietly
        out.closed = True
        _silence(out.stream)
        return EXIT_OK
    except KeyboardInterrupt:
        fail(Interrupted(), "")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug or an unmapped Azure SDK error: say so, exit 1
        fail(exc, f"unexpected {type(exc).__name__}: ")
        if args.verbose:
            traceback.print_exc(file=err)
        return EXIT_FAILED
