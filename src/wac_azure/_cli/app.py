"""The ``wac-azure`` command line (also ``python -m wac_azure``).

A thin shell over the public API::

    wac-azure check   TARGET [--public SOURCE ...]
    wac-azure plan    TARGET [--port N] [--public SOURCE ...]
    wac-azure enable  TARGET [--port N] [--public SOURCE ...] [--dry-run]
    wac-azure enable  --all --subscription ID [--resource-group RG] [--port N] ...
    wac-azure status  TARGET
    wac-azure port    TARGET [--settings-only]
    wac-azure url     TARGET [--via private|public]
    wac-azure disable TARGET [--keep-rules]
    wac-azure diagnose TARGET [--via private|public] [--client-ip IP] [--probe]
    wac-azure enable-many  TARGET... | --all --subscription ID [--resource-group RG]
    wac-azure disable-many TARGET... | --all --subscription ID [--resource-group RG]
    wac-azure demo

TARGET is a VM resource ID or its Azure portal URL. Every verb takes
``--json`` (one JSON document on stdout), ``--emulator`` (run against an
embedded ARM emulator holding the demo scenario, plus ``app-01`` with
Windows Admin Center already enabled) and ``--quiet`` (no
progress lines on stderr). Real Azure is reached with azure-identity's
``DefaultAzureCredential``. Exit codes: 0 ok, 1 the operation or a check
failed (including an error Azure's answer caused), 2 usage error (argparse,
or an argument of yours that is invalid: a bad resource ID, port, address...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TextIO

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
from wac_azure._core.extension import normalize_proxy
from wac_azure._core.validate import check_diagnose_options, check_port, check_timeout
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Usage(Exception):
    """A usage error found after parsing (exit code 2)."""


_COMMON_DEFAULTS: dict[str, object] = {
    "json": False,
    "emulator": False,
    "quiet": False,
    "verbose": False,
    "timeout": 900.0,
}


def _common(*, suppress: bool) -> argparse.ArgumentParser:
    """The options every verb takes (accepted before and after the verb).

    The copy given to the verbs uses ``SUPPRESS`` defaults, so that an option
    given before the verb is not reset by the verb's parser.
    """
    common = argparse.ArgumentParser(add_help=False)

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

    def port(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"WAC port ({DEFAULT_PORT})")

    def fleet_selection(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--all", action="store_true", help="every Windows VM of --subscription (and group)"
        )
        p.add_argument("--subscription", metavar="ID", help="subscription for --all")
        p.add_argument("--resource-group", metavar="NAME", help="only this group (with --all)")
        p.add_argument("--concurrency", type=int, help="writes in flight per subscription (16)")
        p.add_argument(
            "--processes", type=int, help="worker processes, whole subscriptions each (1)"
        )

    parser = argparse.ArgumentParser(
        prog="wac-azure",
        description="Put Windows Admin Center on Azure VMs and take it off again.",
        epilog="Exit codes: 0 ok, 1 the operation or a check failed, 2 usage error.",
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
    p.add_argument("--dry-run", action="store_true", help="read and plan only; write nothing")
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
        else:
            p.add_argument("--keep-rules", action="store_true", help="keep our NSG rules")
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


def _emit(
    args: argparse.Namespace, out: TextIO, value: Any, extra: dict[str, Any] | None = None
) -> None:
    if args.json:
        doc = value.to_dict() if hasattr(value, "to_dict") else value
        if extra:
            doc = {**doc, **extra} if isinstance(doc, dict) else {"value": doc, **extra}
        print(json.dumps(doc, indent=2, sort_keys=True, default=str), file=out)
    else:
        print(str(value), file=out)


def _error_doc(exc: BaseException) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for attr in ("code", "status", "hints", "substatuses", "log_locations"):
        value = getattr(exc, attr, None)
        if value:
            doc[attr] = list(value) if isinstance(value, tuple) else value
    for attr in ("report", "plan"):
        value = getattr(exc, attr, None)
        if value is not None and hasattr(value, "to_dict"):
            doc[attr] = value.to_dict()
    return {"error": doc}


# ----------------------------------------------------------------------------- sessions


@asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[AzureSession]:
    if args.emulator:
        emu = ArmEmulator(seed=0)
        async with emu.session() as session:
            await prepare_cli_emulator(emu, session)
            yield session
        return
    try:
        # lazy: azure-identity (and msal) load only when signing in to real Azure
        from azure.identity.aio import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - azure-identity is a dependency
        raise _Usage(f"azure-identity is needed for real Azure: {exc}") from None

    credential = DefaultAzureCredential()
    try:
        async with AzureSession(credential, polling_interval=5) as session:
            yield session
    finally:
        await credential.close()


def _shards(args: argparse.Namespace, session: AzureSession) -> dict[str, Any]:
    """``processes`` and a session factory for ``--processes N`` (N > 1)."""
    n = getattr(args, "processes", None)
    if n is not None and n < 1:
        raise _Usage(f"--processes must be at least 1, got {n}")
    if n is None or n == 1:
        return {}
    if args.emulator:
        raise _Usage("--processes needs real Azure: the embedded emulator lives in this process")
    # lazy: azure-identity (and msal) load only when signing in to real Azure
    from azure.identity.aio import DefaultAzureCredential

    # each worker makes its own DefaultAzureCredential (a credential does not pickle)
    factory = wac_azure.SessionFactory.of(session, credential=DefaultAzureCredential)
    return {"processes": n, "session_factory": factory}


def _access(args: argparse.Namespace) -> wac_azure.AccessMode:

    public = getattr(args, "public", None)
    anywhere = getattr(args, "public_anywhere", False)
    if public and anywhere:
        raise _Usage("give either --public SOURCE... or --public-anywhere, not both")
    if anywhere:
        return PublicAccess.anywhere(acknowledge_risk=True)
    if public:
        return PublicAccess(public)
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
            check_port(args.port)
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
        raise _Usage(str(exc)) from exc


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:

    progress = _Progress(err, not args.quiet)
    if args.verb == "demo":
        if args.selfcheck:
            return await run_selfcheck(out)
        return await run_demo(out, json_output=args.json)
    _check_arguments(args)
    if args.verb == "enable" and (args.all or args.subscription or args.resource_group):
        if args.target is not None:
            raise _Usage("give either TARGET or --all --subscription ID, not both")
        if args.dry_run or args.salt or args.proxy:
            raise _Usage("--dry-run, --salt and --proxy work on one TARGET, not with --all")
        args.targets = []
        return await _run_many(args, out, err, verb="enable-many")
    if args.verb in ("enable-many", "disable-many"):
        return await _run_many(args, out, err, verb=args.verb)
    if args.verb == "enable" and args.concurrency is not None:
        raise _Usage("--concurrency goes with --all")
    if args.target is None:
        raise _Usage("give the TARGET VM (a resource ID or portal URL), or --all")
    try:
        target = VmTarget.parse(args.target)
        access = _access(args)  # PrivateAccess() for verbs without --public
    except InvalidInputError as exc:
        raise _Usage(str(exc)) from exc
    async with _session(args) as session:
        if args.verb == "check":
            report = await RequirementChecker(session).check(target, access=access)
            _emit(args, out, report)
            return EXIT_OK if report.passed else EXIT_FAILED
        if args.verb == "plan":
            plan = await NetworkRulePlanner(session).plan(target, access=access, port=args.port)
            _emit(args, out, plan)
            return EXIT_FAILED if getattr(plan, "is_blocked", False) else EXIT_OK
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
    raise _Usage(f"unknown verb {args.verb!r}")  # pragma: no cover - argparse rejects it


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


async def _run_many(args: argparse.Namespace, out: TextIO, err: TextIO, *, verb: str) -> int:
    """``enable-many`` / ``disable-many`` (and ``enable --all``): targets given, or
    ``--all`` discovered."""

    if args.all == bool(args.targets):
        raise _Usage("give either TARGET... or --all --subscription ID, not both or neither")
    if not args.all and (args.subscription or args.resource_group):
        raise _Usage("--subscription and --resource-group go with --all")
    try:
        access = _access(args)
        given = [VmTarget.parse(t) for t in args.targets]
    except InvalidInputError as exc:
        raise _Usage(str(exc)) from exc
    async with _session(args) as session:
        if args.all:
            sub = args.subscription
            if not sub and args.emulator:
                sub = DEFAULT_SUBSCRIPTION
            if not sub:
                raise _Usage("--all needs --subscription ID")
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


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; return the exit code (0 ok, 1 failed, 2 usage error)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=err, format="%(name)s: %(message)s")
    azure_logger = logging.getLogger("azure")
    azure_level = azure_logger.level
    if not args.verbose:  # the CLI reports failures itself; keep SDK warnings off the terminal
        azure_logger.setLevel(logging.ERROR)

    def fail(exc: BaseException, prefix: str) -> None:
        if args.json:
            print(json.dumps(_error_doc(exc), indent=2, default=str), file=out)
        print(f"wac-azure: {prefix}{exc}", file=err)

    try:
        return _main(args, out, err, fail)
    finally:
        azure_logger.setLevel(azure_level)


def _main(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    fail: Callable[[BaseException, str], None],
) -> int:

    try:
        return asyncio.run(_run(args, out, err))
    except _Usage as exc:
        # An InvalidInputError from the user's own arguments: report it as itself.
        cause = exc.__cause__
        fail(cause if isinstance(cause, InvalidInputError) else exc, "usage error: ")
        return EXIT_USAGE
    except (WacAzureError, ClientAuthenticationError) as exc:
        cause = _root_cause(exc)
        if isinstance(cause, ClientAuthenticationError):
            fail(
                cause,
                "could not authenticate to Azure (DefaultAzureCredential: sign in with "
                "`az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or "
                "use a managed identity): ",
            )
        else:
            fail(exc, "")
        return EXIT_FAILED
    except BrokenPipeError:  # e.g. piped into `head`: the reader has gone
        return EXIT_OK
    except KeyboardInterrupt:
        print("wac-azure: interrupted", file=err)
        return 130
    except Exception as exc:  # a bug or an unmapped Azure SDK error: say so, exit 1
        fail(exc, f"unexpected {type(exc).__name__}: ")
        if args.verbose:
            traceback.print_exc(file=err)
        return EXIT_FAILED
