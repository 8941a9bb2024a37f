"""ExtensionManager: install, inspect, locate and uninstall the ``AdminCenter`` VM extension.

Facts this module relies on are in AZURE_FACTS.md §1 (extension) and §4
(inside the VM). Decisions:

* **Idempotent.** ``install`` writes only when the deployed extension differs
  from what is asked (port, salt, proxy) or ended ``Failed``; a second call
  with the same settings performs no write and returns ``changed=False``.
* **Salt.** The salt hashes the VM's IP into its public DNS record, so it
  must stay stable: a deployed salt is always reused; a VM without one gets a
  fresh random ``secrets.token_hex(16)`` (32 hex characters). Pass ``salt=``
  to choose it, e.g. to keep the same salt across an uninstall/reinstall
  (``(await manager.status(t)).salt`` gives it).
* **Proxy.** ``proxy=None`` keeps the proxy already deployed (compared and
  kept as it is); ``proxy=False`` removes it; a URL or ``{mode, address}``
  sets it (only that argument is validated).
* **Requirements.** A failed check that matters to installing
  (``_requirements.blocking_checks(report, purpose="install")``: every
  failure except ``network.inbound_path`` and ``network.exposure``) refuses
  the install before any write (:class:`~wac_azure.RequirementsNotMetError`);
  an *unknown* check (a custom image whose OS cannot be told...) is reported
  (log and progress) and the install goes on: Azure is the final judge.
  ``skip_checks=True`` skips them.
* **Retries.** azure-core retries 408/429/5xx; the library's policy
  (:func:`wac_azure._retry.retrying`) retries 409 "in progress" answers and
  operations that ended ``Failed`` with a transient code
  (``OperationPreempted``...). Everything else fails at once.
* **Timeouts.** Every public call takes ``timeout=`` (seconds) bounding all of
  its waits; past it, :class:`~wac_azure.OperationTimeoutError`.
"""

from __future__ import annotations

import asyncio
import enum
import html
import ipaddress
import logging
import re
import secrets
from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import attrs

from ._errors import (
    ExtensionError,
    ExtensionInstallError,
    ExtensionNotInstalledError,
    InvalidInputError,
    NoPublicIpError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    RequirementsNotMetError,
)
from ._facts import DEFAULT_PORT, EXTENSION_NAME, EXTENSION_PUBLISHER, EXTENSION_TYPE
from ._ids import VmTarget
from ._progress import ProgressCallback, ProgressEvent, ProgressStage, emit

if TYPE_CHECKING:
    from ._facts import ExtensionFacts, StatusFacts, VmFacts
    from ._session import AzureSession

__all__ = [
    "DEFAULT_PORT",
    "EXTENSION_NAME",
    "EXTENSION_PUBLISHER",
    "EXTENSION_TYPE",
    "LOG_LOCATIONS",
    "ExtensionManager",
    "ExtensionState",
    "OperationHandle",
    "PortInfo",
    "PortSource",
    "Progress",
    "UninstallResult",
    "extension_from_json",
    "format_url",
    "install_hints",
    "port_info",
    "url_for",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``typeHandlerVersion`` written; ``autoUpgradeMinorVersion`` carries real builds.
HANDLER_VERSION = "0.0"
#: Where the extension's logs are (inside the VM, then in the portal).
LOG_LOCATIONS: tuple[str, ...] = (
    "C:\\WindowsAzure\\Logs\\Plugins\\AdminCenter (in the VM)",
    "C:\\Packages\\Plugins\\AdminCenter (in the VM)",
    "Azure portal: the VM > Settings > Extensions > AdminCenter > View Detailed Status",
)
_TERMINAL = {"succeeded", "failed", "canceled"}
_SETTLE_INTERVAL = 5.0
_EXTENSION_WRITE = "Microsoft.Compute/virtualMachines/extensions/write"
_EXTENSION_DELETE = "Microsoft.Compute/virtualMachines/extensions/delete"

#: A progress callback: called with one :class:`~wac_azure.ProgressEvent` per stage
#: (the same type fleets use; ``str(event)`` is a readable line). Kept as an alias.
Progress = ProgressCallback


# ----------------------------------------------------------------------------- helpers


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def check_port(port: object, what: str = "port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInputError(f"{what} must be an integer from 1 to 65535, got {port!r}")
    return port


def check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def as_target(target: VmTarget | str) -> VmTarget:
    return VmTarget.parse(target)  # type: ignore[arg-type]


def _normalize_proxy(proxy: object) -> dict[str, str] | None:
    if proxy is None:
        return None
    if isinstance(proxy, str):
        proxy = {"mode": "application", "address": proxy}
    if not isinstance(proxy, Mapping):
        raise InvalidInputError(
            "proxy must be a URL such as 'http://proxy.example:3128' or "
            "{'mode': 'application', 'address': 'http://host:port'}"
        )
    address = str(proxy.get("address") or "")
    if "@" in address:
        # Never echo it: the text before '@' is a user name and password.
        raise InvalidInputError(
            "the proxy address must not carry credentials (user:password@host): the "
            "extension's settings are public, readable by anyone who can read the VM; give "
            "http://host:port of a proxy that allows the VM without a password"
        )
    if not re.match(r"^https?://[^\s/:]+(:\d{1,5})?/?$", address):
        raise InvalidInputError(
            f"proxy address {address!r} must look like http://host:port (no path, no spaces)"
        )
    return {"mode": str(proxy.get("mode") or "application"), "address": address}


def format_url(address: str, port: int) -> str:
    """``https://<address>:<port>``, with an IPv6 address in brackets."""
    check_port(port)
    host = address.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInputError(f"{address!r} is not an IP address") from None
    if ip.version == 6:
        return f"https://[{ip.compressed}]:{port}"
    return f"https://{ip}:{port}"


def install_hints(messages: Sequence[str], *, report: Any = None) -> tuple[str, ...]:
    """The troubleshooting steps that match an install failure's messages.

    Follows the product's "extension failed to install" guide: requirements
    first, then outbound access to the service, then a firewall or proxy in
    the VM; ``report`` (a RequirementReport) adds its failed checks.
    """
    text = " ".join(m for m in messages if m).lower()
    hints: list[str] = []
    failed = []
    if report is not None:
        for check in getattr(report, "checks", ()):
            status = getattr(getattr(check, "status", None), "value", getattr(check, "status", ""))
            if str(status) == "fail":
                failed.append(str(getattr(check, "summary", None) or getattr(check, "code", "")))
    if failed:
        hints.append("The VM does not meet the requirements: " + "; ".join(failed) + ".")
    if any(w in text for w in ("windowsadmincenter", "service tag", "443", "outbound", "connect")):
        hints.append(
            "Allow outbound HTTPS (TCP 443) to the WindowsAdminCenter service tag: add an "
            "outbound NSG rule such as PortForWACService (wac-azure plan / enable adds it), "
            "then check inside the VM with "
            "'Invoke-RestMethod -Method GET -Uri https://wac.azure.com'."
        )
        hints.append(
            "If outbound traffic is allowed and the test still fails, check that no firewall "
            "or proxy inside the VM blocks the connection (a proxy can be passed as proxy=)."
        )
    if "azureactivedirectory" in text or "entra" in text:
        hints.append(
            "Allow outbound HTTPS (TCP 443) to the AzureActiveDirectory service tag "
            "(rule PortForAADService)."
        )
    if any(w in text for w in ("memory", "size", "operating system", "not supported", "os ")):
        hints.append(
            "Check the requirements: Windows Server 2016 or later, at least 3 GiB of memory, "
            "the Azure public cloud (wac-azure check shows each one)."
        )
    if "agent" in text or "not running" in text or "deallocated" in text:
        hints.append("Start the VM and wait until its VM agent reports Ready, then retry.")
    if not hints:
        hints.append(
            "Check the requirements (wac-azure check) and that outbound HTTPS (TCP 443) to "
            "the WindowsAdminCenter service tag is allowed."
        )
    hints.append(
        "If nothing seems wrong, open a support request with the logs listed below "
        "(a network trace can hold secrets: review it before sharing)."
    )
    return tuple(hints)


def say(
    progress: ProgressCallback | None,
    target: VmTarget,
    stage: ProgressStage,
    message: str | None = None,
) -> None:
    """Emit one single-VM :class:`ProgressEvent` (``total=1``); a raising callback is ignored."""
    emit(progress, ProgressEvent(target, stage, 1, message))


def non_terminal(progress: ProgressCallback | None) -> ProgressCallback | None:
    """``progress`` without terminal events: for a step inside a larger operation
    (``enable`` runs ``install``), so the operation ends with exactly one terminal event."""
    if progress is None:
        return None
    callback = progress

    def forward(event: ProgressEvent) -> None:
        if not event.stage.terminal:
            callback(event)

    return forward


def warn_unknowns(t: VmTarget, report: Any, progress: ProgressCallback | None) -> None:
    """Unknown checks do not stop an install (Azure is the judge); say which ones."""
    unknown = [c.code for c in getattr(report, "unknowns", ())]
    if unknown:
        _log.info("%s: requirement checks not confirmed: %s", t.name, ", ".join(unknown))
        say(
            progress,
            t,
            ProgressStage.READING,
            f"not confirmed (continuing): {', '.join(unknown)}",
        )


def extension_from_json(data: Mapping[str, Any]) -> ExtensionFacts:
    """Parse an extension resource (GET with ``$expand=instanceView``) into ExtensionFacts."""
    from ._facts import parse_extension_resource

    return parse_extension_resource(data)


def _status_dict(s: StatusFacts) -> dict[str, Any]:
    return {
        "code": s.code,
        "level": s.level,
        "display_status": s.display_status,
        "message": s.message,
    }


# ----------------------------------------------------------------------------- values


class PortSource(str, enum.Enum):
    """Where a :class:`PortInfo` port came from."""

    SETTINGS = "settings"
    REGISTRY = "registry"
    DEFAULT = "default"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class ExtensionState:
    """The ``AdminCenter`` extension on one VM, as Azure reports it.

    ``installed`` is False when the VM has no extension of that name (every
    other field is then empty). ``port`` is the ``port`` setting,
    ``handler_version`` the running build when the instance view says it.
    ``changed`` tells whether the call that produced this state wrote anything.
    """

    target: VmTarget
    installed: bool
    provisioning_state: str | None = None
    handler_version: str | None = None
    port: int | None = None
    salt: str | None = None
    auto_upgrade: bool | None = None
    statuses: tuple[StatusFacts, ...] = ()
    substatuses: tuple[StatusFacts, ...] = ()
    changed: bool = False

    @classmethod
    def from_facts(
        cls, target: VmTarget, ext: ExtensionFacts | None, *, changed: bool = False
    ) -> ExtensionState:
        """Build the state from :class:`~wac_azure._facts.ExtensionFacts` (None: absent)."""
        if ext is None:
            return cls(target, False, changed=changed)
        return cls(
            target,
            True,
            provisioning_state=ext.provisioning_state,
            handler_version=ext.handler_version,
            port=ext.port,
            salt=ext.salt,
            auto_upgrade=ext.auto_upgrade,
            statuses=ext.statuses,
            substatuses=ext.substatuses,
            changed=changed,
        )

    @property
    def succeeded(self) -> bool:
        """Installed and provisioned successfully."""
        return self.installed and (self.provisioning_state or "").lower() == "succeeded"

    @property
    def failed(self) -> bool:
        """Installed but provisioning ended ``Failed``."""
        return self.installed and (self.provisioning_state or "").lower() == "failed"

    @property
    def messages(self) -> tuple[str, ...]:
        """The substatus (then status) messages, non-empty ones only."""
        return tuple(s.message for s in (*self.substatuses, *self.statuses) if s.message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "installed": self.installed,
            "provisioning_state": self.provisioning_state,
            "handler_version": self.handler_version,
            "port": self.port,
            "salt": self.salt,
            "auto_upgrade": self.auto_upgrade,
            "statuses": [_status_dict(s) for s in self.statuses],
            "substatuses": [_status_dict(s) for s in self.substatuses],
            "changed": self.changed,
        }

    def summary(self) -> str:
        """One line: name, state, version, port."""
        if not self.installed:
            return f"{self.target.name}: AdminCenter extension not installed"
        return (
            f"{self.target.name}: AdminCenter {self.provisioning_state or 'unknown'}"
            f", version {self.handler_version or 'unknown'}, port {self.port or 'unset'}"
            + (" (changed)" if self.changed else "")
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        for s in self.substatuses:
            lines.append(f"  [{s.level or '-'}] {s.code or ''}: {s.message or ''}".rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{_esc(s.level)}</td><td>{_esc(s.code)}</td><td>{_esc(s.message)}</td></tr>"
            for s in self.substatuses
        )
        details = (
            f"<details><summary>{len(self.substatuses)} substatus(es)</summary>"
            f"<table><tr><th>level</th><th>code</th><th>message</th></tr>{rows}</table></details>"
            if self.substatuses
            else ""
        )
        return f"<div><strong>{_esc(self.summary())}</strong>{details}</div>"


@attrs.frozen
class PortInfo:
    """The port Windows Admin Center listens on, and where that came from.

    ``source`` is ``registry`` when the ``SmePort`` value was read inside the
    VM (through Run Command), ``settings`` when it comes from the extension's
    ``port`` setting, ``default`` (6516) when neither says.
    """

    target: VmTarget
    port: int
    source: PortSource
    settings_port: int | None = None
    registry_port: int | None = None

    @property
    def mismatch(self) -> bool:
        """The registry and the settings disagree (the registry wins: it is what listens)."""
        return (
            self.settings_port is not None
            and self.registry_port is not None
            and self.settings_port != self.registry_port
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "port": self.port,
            "source": self.source.value,
            "settings_port": self.settings_port,
            "registry_port": self.registry_port,
            "mismatch": self.mismatch,
        }

    def __str__(self) -> str:
        text = f"{self.target.name}: port {self.port} (from {self.source.value})"
        if self.mismatch:
            text += (
                f"; the extension settings say {self.settings_port} but the VM's "
                f"SmePort is {self.registry_port}"
            )
        return text

    def _repr_html_(self) -> str:
        return f"<div>{_esc(self)}</div>"


@attrs.frozen
class UninstallResult:
    """What :meth:`ExtensionManager.uninstall` did.

    ``removed`` tells whether the extension was deleted (False: it was not
    there); ``rules`` is the NSG rule removal result when asked for.
    """

    target: VmTarget
    removed: bool
    previous: ExtensionState
    rules: Any = None

    @property
    def changed(self) -> bool:
        """Anything was written."""
        return self.removed or bool(getattr(self.rules, "changed", False))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        rules = self.rules.to_dict() if hasattr(self.rules, "to_dict") else None
        return {
            "target": str(self.target),
            "removed": self.removed,
            "previous": self.previous.to_dict(),
            "rules": rules,
            "changed": self.changed,
        }

    def __str__(self) -> str:
        text = (
            f"{self.target.name}: AdminCenter extension removed"
            if self.removed
            else f"{self.target.name}: AdminCenter extension was not installed (nothing to do)"
        )
        if self.rules is not None:
            text += "\n" + str(self.rules)
        return text

    def _repr_html_(self) -> str:
        first, _, rest = str(self).partition("\n")
        details = f"<details><summary>rules</summary><pre>{_esc(rest)}</pre></details>"
        return f"<div><strong>{_esc(first)}</strong>{details if rest else ''}</div>"


class OperationHandle(Generic[T]):
    """A started operation (``wait=False``): ``await handle`` or ``await handle.result()``.

    ``status()`` is ``"InProgress"``, ``"Succeeded"``, ``"Failed"`` or
    ``"Canceled"``; ``done()`` tells whether it finished; ``cancel()`` stops
    waiting (Azure keeps whatever it started: re-running repairs the state).
    """

    def __init__(self, task: asyncio.Task[T], what: str) -> None:
        self._task = task
        self._what = what

    def done(self) -> bool:
        """Whether the operation finished (successfully or not)."""
        return self._task.done()

    def status(self) -> str:
        """``InProgress``, ``Succeeded``, ``Failed`` or ``Canceled``."""
        if not self._task.done():
            return "InProgress"
        if self._task.cancelled():
            return "Canceled"
        return "Failed" if self._task.exception() is not None else "Succeeded"

    def cancel(self) -> None:
        """Stop waiting (what Azure already accepted goes on; a re-run repairs)."""
        self._task.cancel()

    async def result(self) -> T:
        """Wait for the operation and return its result (or raise its error)."""
        return await self._task

    def __await__(self) -> Generator[Any, None, T]:
        return self._task.__await__()

    def __repr__(self) -> str:
        return f"<OperationHandle {self._what}: {self.status()}>"


def _first_line(exc: BaseException) -> str:
    return (str(exc).partition("\n")[0] or type(exc).__name__)[:300]


async def within(coro: Awaitable[T], timeout: float, what: str) -> T:
    """Await ``coro`` for at most ``timeout`` seconds (asyncio.wait_for, Python 3.10-safe)."""
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        raise OperationTimeoutError(
            f"{what} did not finish within {timeout:g} s; Azure may still be working on it "
            "(re-run the same call: it picks up where Azure is)"
        ) from None


# ----------------------------------------------------------------------------- manager


class ExtensionManager:
    """Install, inspect, locate and uninstall the ``AdminCenter`` extension.

    ``ExtensionManager(session)``; every method takes a :class:`VmTarget` (or
    its resource ID / portal URL) and is safe to re-run.
    """

    def __init__(self, session: AzureSession) -> None:
        self._session = session

    # -- status -----------------------------------------------------------------

    async def _get_extension(self, target: VmTarget) -> ExtensionFacts | None:
        from ._arm import SDK_ERRORS, translate

        compute = self._session.compute(target.subscription_id)
        what = f"reading the AdminCenter extension of {target.name}"
        try:
            ext = await compute.virtual_machine_extensions.get(
                target.resource_group, target.name, EXTENSION_NAME, expand="instanceView"
            )
        except SDK_ERRORS as exc:
            if getattr(exc, "status_code", None) != 404:
                raise translate(exc, what=what, resource_group=target.resource_group) from exc
            await self._vm_exists(target)
            return None
        return extension_from_json(ext.as_dict())

    async def _vm_exists(self, target: VmTarget) -> None:
        from ._arm import SDK_ERRORS, translate

        compute = self._session.compute(target.subscription_id)
        try:
            await compute.virtual_machines.get(target.resource_group, target.name)
        except SDK_ERRORS as exc:
            raise translate(
                exc,
                what=f"reading VM {target.name}",
                vm_id=target.resource_id,
                resource_group=target.resource_group,
            ) from exc

    async def status(self, target: VmTarget | str, *, timeout: float = 120) -> ExtensionState:
        """The extension's state on ``target`` (``installed=False`` when absent)."""
        t = as_target(target)
        limit = check_timeout(timeout)
        ext = await within(self._get_extension(t), limit, f"reading the extension of {t.name}")
        if ext is not None and not ext.is_admin_center:
            raise ExtensionError(
                f"{t.name} has an extension named AdminCenter from {ext.publisher}/{ext.type}, "
                f"not {EXTENSION_PUBLISHER}/{EXTENSION_TYPE}; remove it before using this library"
            )
        return ExtensionState.from_facts(t, ext)

    # -- install ----------------------------------------------------------------

    @overload
    async def install(
        self,
        target: VmTarget | str,
        *,
        port: int = ...,
        salt: str | None = ...,
        proxy: str | Mapping[str, str] | Literal[False] | None = ...,
        wait: Literal[True] = ...,
        timeout: float = ...,
        progress: ProgressCallback | None = ...,
        skip_checks: bool = ...,
        facts: VmFacts | None = ...,
    ) -> ExtensionState: ...

    @overload
    async def install(
        self,
        target: VmTarget | str,
        *,
        port: int = ...,
        salt: str | None = ...,
        proxy: str | Mapping[str, str] | Literal[False] | None = ...,
        wait: Literal[False],
        timeout: float = ...,
        progress: ProgressCallback | None = ...,
        skip_checks: bool = ...,
        facts: VmFacts | None = ...,
    ) -> OperationHandle[ExtensionState]: ...

    async def install(
        self,
        target: VmTarget | str,
        *,
        port: int = DEFAULT_PORT,
        salt: str | None = None,
        proxy: str | Mapping[str, str] | Literal[False] | None = None,
        wait: bool = True,
        timeout: float = 900,
        progress: ProgressCallback | None = None,
        skip_checks: bool = False,
        facts: VmFacts | None = None,
    ) -> ExtensionState | OperationHandle[ExtensionState]:
        """Install (or update) the extension; return its settled state.

        Reads the VM once (or uses ``facts``), runs the requirement checks
        unless ``skip_checks`` (:class:`RequirementsNotMetError` before any
        write), then writes only if something differs. Waits for the
        long-running operation and for the instance view to settle; ``Failed``
        raises :class:`ExtensionInstallError` with the substatus messages,
        hints and log locations. ``wait=False`` returns an
        :class:`OperationHandle` right after the checks.

        ``proxy``: ``None`` (default) keeps the deployed proxy, ``False``
        removes it, ``"http://host:port"`` or ``{"mode": ..., "address": ...}``
        sets it. ``progress`` is called with a :class:`~wac_azure.ProgressEvent`
        per stage (reading → installing → done, or failed).
        """
        t = as_target(target)
        check_port(port)
        limit = check_timeout(timeout)
        if salt is not None and (not isinstance(salt, str) or not salt.strip()):
            raise InvalidInputError("salt must be a non-empty string (or None to reuse/generate)")
        # Only the caller's argument is validated: a deployed proxy is compared as it is.
        proxy_settings: dict[str, str] | Literal[False] | None = (
            False if proxy is False else _normalize_proxy(proxy)
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit

        async def prepare() -> tuple[VmFacts, dict[str, Any] | None]:
            nonlocal facts
            if facts is None:
                from ._facts import read_vm_facts

                say(progress, t, ProgressStage.READING)
                facts = await read_vm_facts(self._session, t)
            if not skip_checks:
                from ._requirements import blocking_checks, evaluate_requirements

                report = evaluate_requirements(facts, port=port)
                blocking = blocking_checks(report, purpose="install")
                if blocking:
                    codes = ", ".join(c.code for c in blocking)
                    raise RequirementsNotMetError(
                        f"{t.name} does not meet Windows Admin Center's requirements "
                        f"({codes}); nothing was written:\n" + str(report),
                        report=report,
                    )
                warn_unknowns(t, report, progress)
            return facts, self._desired(t, facts, port, salt, proxy_settings)

        try:
            vm_facts, body = await within(prepare(), limit, f"checking {t.name}")
        except BaseException as exc:
            say(progress, t, ProgressStage.FAILED, _first_line(exc))
            raise

        async def finish() -> ExtensionState:
            if body is None:
                existing = vm_facts.extension
                state = (existing.provisioning_state or "").lower() if existing else ""
                if state in _TERMINAL:
                    say(progress, t, ProgressStage.DONE, "already installed with these settings")
                    return ExtensionState.from_facts(t, existing)
                say(
                    progress,
                    t,
                    ProgressStage.INSTALLING,
                    "waiting for the running AdminCenter operation to settle",
                )
                settled = await self._settle(t)
                return self._done(t, self._final(t, settled, changed=False), progress)
            port_setting = body["properties"]["settings"]["port"]
            say(progress, t, ProgressStage.INSTALLING, f"AdminCenter on port {port_setting}")
            await self._put(t, body)
            say(progress, t, ProgressStage.INSTALLING, "waiting for the extension to settle")
            settled = await self._settle(t)
            return self._done(t, self._final(t, settled, changed=True), progress)

        async def finish_reported() -> ExtensionState:
            try:
                return await finish()
            except BaseException as exc:
                say(progress, t, ProgressStage.FAILED, _first_line(exc))
                raise

        remaining = max(deadline - loop.time(), 0.001)
        work = within(finish_reported(), remaining, f"installing AdminCenter on {t.name}")
        if wait:
            return await work
        return OperationHandle(asyncio.ensure_future(work), f"install AdminCenter on {t.name}")

    def _desired(
        self,
        t: VmTarget,
        facts: VmFacts,
        port: int,
        salt: str | None,
        proxy: dict[str, str] | Literal[False] | None,
    ) -> dict[str, Any] | None:
        """The PUT body, or ``None`` when the deployed extension already matches.

        ``proxy``: ``None`` keeps whatever proxy is deployed (as it is, never
        re-validated), ``False`` removes it, a dict (already validated) sets it.
        """
        existing = facts.extension
        if existing is not None and not existing.is_admin_center:
            raise ExtensionError(
                f"{t.name} has an extension named AdminCenter from "
                f"{existing.publisher}/{existing.type}; Azure cannot change an extension's "
                "publisher or type: remove it first"
            )
        for other in facts.other_extensions:
            if other.name.lower() != EXTENSION_NAME.lower():
                raise ExtensionError(
                    f"{t.name} already has the Windows Admin Center extension under the name "
                    f"{other.name!r}; remove it first (the portal expects the name AdminCenter)"
                )
        settings: dict[str, Any] = dict(existing.settings) if existing is not None else {}
        chosen_salt = salt or (existing.salt if existing is not None else None)
        if not chosen_salt:
            chosen_salt = secrets.token_hex(16)
        if existing is not None:
            if proxy is None:
                same_proxy = True
            elif proxy is False:
                same_proxy = "proxy" not in settings
            else:
                same_proxy = settings.get("proxy") == proxy
            same = (
                existing.port == port
                and existing.salt == chosen_salt
                and same_proxy
                and (existing.provisioning_state or "").lower() not in ("failed", "canceled")
            )
            if same:
                return None
        settings["port"] = str(port)
        settings["salt"] = chosen_salt
        if proxy is False:
            settings.pop("proxy", None)
        elif proxy is not None:
            settings["proxy"] = proxy
        return {
            "location": facts.location,
            "properties": {
                "publisher": EXTENSION_PUBLISHER,
                "type": EXTENSION_TYPE,
                "typeHandlerVersion": HANDLER_VERSION,
                "autoUpgradeMinorVersion": True,
                "settings": settings,
            },
        }

    async def _put(self, t: VmTarget, body: dict[str, Any]) -> None:
        from ._arm import SDK_ERRORS, lro_failure, translate
        from ._retry import retrying

        compute = self._session.compute(t.subscription_id)
        what = f"installing AdminCenter on {t.name}"

        async def once() -> None:
            wire: Any = body  # a plain dict is sent as raw wire JSON (AZURE_FACTS §7)
            poller = await compute.virtual_machine_extensions.begin_create_or_update(
                t.resource_group, t.name, EXTENSION_NAME, wire
            )
            try:
                await poller.result()
            except SDK_ERRORS as exc:
                raise lro_failure(exc, what=what, target=t.resource_id) from exc

        try:
            await retrying(once, config=self._session.retry, sleep=self._session.sleep, what=what)
        except OperationFailedError as exc:
            if (exc.code or "").lower() in {"vmextensionprovisioningerror", "failed"}:
                _log.info("%s: the operation ended Failed (%s)", what, exc.code)
                return  # the settled instance view explains it (see _final)
            raise
        except SDK_ERRORS as exc:
            raise translate(
                exc,
                what=what,
                vm_id=t.resource_id,
                resource_group=t.resource_group,
                action=_EXTENSION_WRITE,
            ) from exc

    async def _settle(self, t: VmTarget) -> ExtensionFacts | None:
        """GET with the instance view until the provisioning state is terminal."""
        while True:
            ext = await self._get_extension(t)
            state = (ext.provisioning_state or "").lower() if ext else "succeeded"
            if ext is None or state in _TERMINAL:
                return ext
            await self._session.sleep(_SETTLE_INTERVAL)

    @staticmethod
    def _done(
        t: VmTarget, state: ExtensionState, progress: ProgressCallback | None
    ) -> ExtensionState:
        detail = f"AdminCenter {state.provisioning_state}, port {state.port}"
        say(progress, t, ProgressStage.DONE, detail)
        return state

    def _final(self, t: VmTarget, ext: ExtensionFacts | None, *, changed: bool) -> ExtensionState:
        state = ExtensionState.from_facts(t, ext, changed=changed)
        if ext is None:
            raise ExtensionInstallError(
                f"the AdminCenter extension disappeared from {t.name} while installing",
                log_locations=LOG_LOCATIONS,
            )
        if not state.succeeded:
            messages = state.messages
            hints = install_hints(messages)
            raise ExtensionInstallError(
                f"the AdminCenter extension on {t.name} ended {state.provisioning_state}: "
                + ("; ".join(messages) or "no message")
                + "\nWhat to try:\n"
                + "\n".join(f"  - {h}" for h in hints)
                + "\nLogs:\n"
                + "\n".join(f"  - {loc}" for loc in LOG_LOCATIONS),
                substatuses=messages,
                hints=hints,
                log_locations=LOG_LOCATIONS,
            )
        return state

    # -- port -------------------------------------------------------------------

    async def locate_port(
        self, target: VmTarget | str, *, from_guest: bool = True, timeout: float = 300
    ) -> PortInfo:
        """The port WAC listens on: the ``port`` setting, confirmed by ``SmePort`` in the VM.

        ``from_guest`` runs ONE Run Command (the ``port`` guest script) to read
        the registry; otherwise only the extension settings are read.
        :class:`ExtensionNotInstalledError` when the extension is absent.
        """
        t = as_target(target)
        limit = check_timeout(timeout)

        async def go() -> PortInfo:
            state = await self.status(t, timeout=limit)
            if not state.installed:
                raise ExtensionNotInstalledError(
                    f"the AdminCenter extension is not installed on {t.name}; "
                    "install it first (wac-azure enable)"
                )
            registry = None
            if from_guest:
                from ._guest import read_guest_port

                registry = (await read_guest_port(self._session, t)).sme_port
            return port_info(t, state.port, registry)

        return await within(go(), limit, f"locating the WAC port of {t.name}")

    # -- uninstall --------------------------------------------------------------

    @overload
    async def uninstall(
        self,
        target: VmTarget | str,
        *,
        remove_rules: bool = ...,
        wait: Literal[True] = ...,
        timeout: float = ...,
        progress: ProgressCallback | None = ...,
    ) -> UninstallResult: ...

    @overload
    async def uninstall(
        self,
        target: VmTarget | str,
        *,
        remove_rules: bool = ...,
        wait: Literal[False],
        timeout: float = ...,
        progress: ProgressCallback | None = ...,
    ) -> OperationHandle[UninstallResult]: ...

    async def uninstall(
        self,
        target: VmTarget | str,
        *,
        remove_rules: bool = False,
        wait: bool = True,
        timeout: float = 900,
        progress: ProgressCallback | None = None,
    ) -> UninstallResult | OperationHandle[UninstallResult]:
        """Remove the extension (no write when absent); ``remove_rules`` also removes
        the NSG rules this library created (rules described "Managed by wac_azure" only)."""
        t = as_target(target)
        limit = check_timeout(timeout)

        async def go() -> UninstallResult:
            previous = await self.status(t, timeout=limit)
            removed = False
            if previous.installed:
                say(progress, t, ProgressStage.REMOVING, "the AdminCenter extension")
                await self._delete(t)
                removed = True
            else:
                say(progress, t, ProgressStage.REMOVING, "AdminCenter extension not installed")
            rules = None
            if remove_rules:
                from ._planner import NetworkRulePlanner

                say(progress, t, ProgressStage.REMOVING, "the NSG rules wac_azure created")
                rules = await NetworkRulePlanner(self._session).remove(t)
                say(progress, t, ProgressStage.RULES_REMOVED)
            result = UninstallResult(t, removed, previous, rules)
            say(progress, t, ProgressStage.DONE, "removed" if result.changed else "nothing to do")
            return result

        async def reported() -> UninstallResult:
            try:
                return await go()
            except BaseException as exc:
                say(progress, t, ProgressStage.FAILED, _first_line(exc))
                raise

        work = within(reported(), limit, f"uninstalling AdminCenter from {t.name}")
        if wait:
            return await work
        return OperationHandle(asyncio.ensure_future(work), f"uninstall AdminCenter from {t.name}")

    async def _delete(self, t: VmTarget) -> None:
        from ._arm import SDK_ERRORS, lro_failure, translate
        from ._retry import retrying

        compute = self._session.compute(t.subscription_id)
        what = f"removing AdminCenter from {t.name}"

        async def once() -> None:
            poller = await compute.virtual_machine_extensions.begin_delete(
                t.resource_group, t.name, EXTENSION_NAME
            )
            try:
                await poller.result()
            except SDK_ERRORS as exc:
                raise lro_failure(exc, what=what, target=t.resource_id) from exc

        try:
            await retrying(once, config=self._session.retry, sleep=self._session.sleep, what=what)
        except SDK_ERRORS as exc:
            if getattr(exc, "status_code", None) == 404:
                return  # already gone: the goal is reached
            raise translate(
                exc,
                what=what,
                vm_id=None,
                resource_group=t.resource_group,
                action=_EXTENSION_DELETE,
            ) from exc

    # -- URL --------------------------------------------------------------------

    async def connection_url(
        self,
        target: VmTarget | str,
        *,
        via: Literal["private", "public"] = "private",
        port: int | None = None,
        facts: VmFacts | None = None,
        timeout: float = 120,
    ) -> str:
        """``https://<ip>:<port>`` of Windows Admin Center on ``target``.

        ``via="private"`` uses the primary NIC's private IP, ``via="public"``
        its public IP (:class:`NoPublicIpError` without one). The port is
        ``port`` when given, else the extension's ``port`` setting
        (:class:`ExtensionNotInstalledError` when the extension is absent).
        """
        t = as_target(target)
        if via not in ("private", "public"):
            raise InvalidInputError(f"via must be 'private' or 'public', got {via!r}")
        if port is not None:
            check_port(port)
        limit = check_timeout(timeout)

        async def go() -> str:
            nonlocal facts
            if facts is None:
                from ._facts import read_vm_facts

                facts = await read_vm_facts(self._session, t)
            chosen = port
            if chosen is None:
                if facts.extension is None:
                    raise ExtensionNotInstalledError(
                        f"the AdminCenter extension is not installed on {t.name}; "
                        "install it first (wac-azure enable) or pass port="
                    )
                chosen = facts.extension.port or DEFAULT_PORT
            return url_for(facts, chosen, via=via)

        return await within(go(), limit, f"building the WAC URL of {t.name}")


def port_info(target: VmTarget, settings_port: int | None, registry_port: int | None) -> PortInfo:
    """Combine the settings and registry ports into a :class:`PortInfo`."""
    if registry_port is not None:
        return PortInfo(target, registry_port, PortSource.REGISTRY, settings_port, registry_port)
    if settings_port is not None:
        return PortInfo(target, settings_port, PortSource.SETTINGS, settings_port, None)
    return PortInfo(target, DEFAULT_PORT, PortSource.DEFAULT, None, None)


def url_for(facts: VmFacts, port: int, *, via: str = "private") -> str:
    """The connection URL from facts (pure)."""
    nic = facts.primary_nic
    name = facts.target.name
    if via == "public":
        for n in ([nic] if nic else []) + [x for x in facts.nics if x is not nic]:
            for pip in n.public_ips:
                if pip.address:
                    return format_url(pip.address, port)
        raise NoPublicIpError(
            f"{name} has no public IP address with an assigned address; connect over the "
            "private IP (via='private') from the virtual network, or attach a public IP"
        )
    if nic is None or not nic.private_ips:
        raise NotFoundError(f"{name} has no NIC with a private IP address")
    return format_url(nic.private_ips[0], port)
