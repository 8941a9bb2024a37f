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
  (``_core.decide.blocking_checks(report, purpose="install")``: every
  failure except ``network.inbound_path`` and ``network.exposure``) refuses
  the install before any write (:class:`~wac_azure.RequirementsNotMetError`);
  an *unknown* check (a custom image whose OS cannot be told...) is reported
  (log and progress) and the install goes on: Azure is the final judge.
  ``skip_checks=True`` skips them.
* **Retries.** azure-core retries 408/429/5xx; the library's policy
  (``_azure.retry.retrying``) retries 409 "in progress" answers and
  operations that ended ``Failed`` with a transient code
  (``OperationPreempted``...). Everything else fails at once.
* **Timeouts.** Every public call takes ``timeout=`` (seconds) bounding all of
  its waits; past it, :class:`~wac_azure.OperationTimeoutError`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Generator, Mapping
from typing import Any, Generic, Literal, TypeVar, overload

from wac_azure._azure.deadline import within
from wac_azure._azure.errors import SDK_ERRORS, azure_message, lro_failure, translate
from wac_azure._azure.guest import read_guest_port
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.retry import retrying
from wac_azure._azure.rules import NetworkRulePlanner
from wac_azure._azure.session import AzureSession
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.decide import RequirementsNotMetError, blocking_checks
from wac_azure._core.errors import (
    ExtensionError,
    ExtensionInstallError,
    ExtensionNotInstalledError,
    InvalidInputError,
    OperationFailedError,
)
from wac_azure._core.extension import (
    LOG_LOCATIONS,
    TERMINAL_STATES,
    ExtensionState,
    PortInfo,
    UninstallResult,
    desired_extension,
    extension_from_json,
    first_line,
    guest_port_info,
    install_hints,
    normalize_proxy,
    port_info,
    url_for,
)
from wac_azure._core.facts import (
    DEFAULT_PORT,
    EXTENSION_NAME,
    EXTENSION_PUBLISHER,
    EXTENSION_TYPE,
    ExtensionFacts,
    VmFacts,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.progress import (
    ProgressCallback,
    ProgressStage,
    guarded,
    say,
    warn_unknowns,
)
from wac_azure._core.validate import as_target, check_port, check_timeout

_log = logging.getLogger(__name__)
T = TypeVar("T")
_SETTLE_INTERVAL = 5.0
_EXTENSION_WRITE = "Microsoft.Compute/virtualMachines/extensions/write"
_EXTENSION_DELETE = "Microsoft.Compute/virtualMachines/extensions/delete"
#: Extension failures no retry can mend (AZURE_FACTS §6): reported at once.
_HANDLER_FAILURES = frozenset(
    {"vmextensionhandlernontransienterror", "vmextensionprovisioningtimeout"}
)


def handler_failure(exc: OperationFailedError, vm_name: str) -> ExtensionInstallError | None:
    """The :class:`ExtensionInstallError` for an extension operation that no retry can
    mend (``VMExtensionHandlerNonTransientError``, ``VMExtensionProvisioningTimeout``),
    with Azure's own message; ``None`` for any other failure. Raise it ``from exc``."""
    if (exc.code or "").lower() not in _HANDLER_FAILURES:
        return None
    said = azure_message(getattr(exc.__cause__, "error", None)) or str(exc)
    return ExtensionInstallError(
        f"the AdminCenter extension on {vm_name} failed ({exc.code}): {said}",
        substatuses=(said,),
        hints=install_hints((said,)),
        log_locations=LOG_LOCATIONS,
    )


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


# ----------------------------------------------------------------------------- manager


def new_salt() -> str:
    """A fresh salt for a VM that has none: 32 random hex characters."""
    return secrets.token_hex(16)


class ExtensionManager:
    """Install, inspect, locate and uninstall the ``AdminCenter`` extension.

    ``ExtensionManager(session)``; every method takes a :class:`VmTarget` (or
    its resource ID / portal URL) and is safe to re-run.
    """

    def __init__(self, session: AzureSession) -> None:
        self._session = session

    # -- status -----------------------------------------------------------------

    async def _get_extension(self, target: VmTarget) -> ExtensionFacts | None:

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
        allow_well_known_port: bool = ...,
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
        allow_well_known_port: bool = ...,
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
        allow_well_known_port: bool = False,
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
        per stage (reading → installing → done, or failed). A well-known ``port``
        (below 1024, or 3389, 5985, 5986) raises :class:`~wac_azure.ConfigurationError`
        unless ``allow_well_known_port=True``.
        """
        t = as_target(target)
        check_port(port, allow_well_known_port=allow_well_known_port)
        limit = check_timeout(timeout)
        if salt is not None and (not isinstance(salt, str) or not salt.strip()):
            raise InvalidInputError("salt must be a non-empty string (or None to reuse/generate)")
        # Only the caller's argument is validated: a deployed proxy is compared as it is.
        proxy_settings: dict[str, str] | Literal[False] | None = (
            False if proxy is False else normalize_proxy(proxy)
        )
        progress = guarded(progress)  # a failing callback is logged once per install
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit

        async def prepare() -> tuple[VmFacts, dict[str, Any] | None]:
            nonlocal facts
            if facts is None:
                say(progress, t, ProgressStage.READING)
                facts = await read_vm_facts(self._session, t)
            if not skip_checks:
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
            return facts, desired_extension(
                facts, port=port, salt=salt, proxy=proxy_settings, new_salt=new_salt
            )

        try:
            vm_facts, body = await within(prepare(), limit, f"checking {t.name}")
        except BaseException as exc:
            say(progress, t, ProgressStage.FAILED, first_line(exc))
            raise

        async def finish() -> ExtensionState:
            if body is None:
                existing = vm_facts.extension
                state = (existing.provisioning_state or "").lower() if existing else ""
                if state in TERMINAL_STATES:
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
            failed_op = await self._put(t, body)
            say(progress, t, ProgressStage.INSTALLING, "waiting for the extension to settle")
            settled = await self._settle(t)
            final = self._final(t, settled, changed=True, cause=failed_op)
            return self._done(t, final, progress)

        async def finish_reported() -> ExtensionState:
            try:
                return await finish()
            except BaseException as exc:
                say(progress, t, ProgressStage.FAILED, first_line(exc))
                raise

        remaining = max(deadline - loop.time(), 0.001)
        work = within(finish_reported(), remaining, f"installing AdminCenter on {t.name}")
        if wait:
            return await work
        return OperationHandle(asyncio.ensure_future(work), f"install AdminCenter on {t.name}")

    async def _put(self, t: VmTarget, body: dict[str, Any]) -> OperationFailedError | None:
        """Send the extension PUT; the failed operation when it ended Failed.

        An operation that ended ``VMExtensionProvisioningError`` or ``Failed`` is not
        raised here: the settled instance view explains it better (see :meth:`_final`),
        which chains the returned operation error so Azure's message is never lost.
        """

        compute = self._session.compute(t.subscription_id)
        what = f"installing AdminCenter on {t.name}"

        async def once() -> None:
            wire: Any = body  # a plain dict is sent as raw wire JSON (AZURE_FACTS §7)
            _log.info("writing extension AdminCenter on %s (PUT)", t.name)  # no settings
            poller = await compute.virtual_machine_extensions.begin_create_or_update(
                t.resource_group, t.name, EXTENSION_NAME, wire
            )
            try:
                await poller.result()
            except SDK_ERRORS as exc:
                raise lro_failure(exc, what=what, target=t.resource_id) from exc

        try:
            await retrying(once, config=self._session.retry, sleep=self._session.sleep, what=what)
            return None
        except OperationFailedError as exc:
            code = (exc.code or "").lower()
            handler = handler_failure(exc, t.name)
            if handler is not None:
                raise handler from exc
            if code in {"vmextensionprovisioningerror", "failed"}:
                _log.info("%s: the operation ended Failed (%s)", what, exc.code)
                return exc  # the settled instance view explains it (see _final)
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
            if ext is None or state in TERMINAL_STATES:
                return ext
            await self._session.sleep(_SETTLE_INTERVAL)

    @staticmethod
    def _done(
        t: VmTarget, state: ExtensionState, progress: ProgressCallback | None
    ) -> ExtensionState:
        detail = f"AdminCenter {state.provisioning_state}, port {state.port}"
        say(progress, t, ProgressStage.DONE, detail)
        return state

    def _final(
        self,
        t: VmTarget,
        ext: ExtensionFacts | None,
        *,
        changed: bool,
        cause: OperationFailedError | None = None,
    ) -> ExtensionState:
        state = ExtensionState.from_facts(t, ext, changed=changed)
        if ext is None:
            raise ExtensionInstallError(
                f"the AdminCenter extension disappeared from {t.name} while installing",
                log_locations=LOG_LOCATIONS,
            ) from cause
        if not state.succeeded:
            messages = state.messages
            if cause is not None and not messages:
                messages = (str(cause).splitlines()[0] or cause.code or "operation failed",)
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
            ) from cause
        return state

    # -- port -------------------------------------------------------------------

    async def locate_port(
        self, target: VmTarget | str, *, from_guest: bool = True, timeout: float = 300
    ) -> PortInfo:
        """The port WAC listens on: the ``port`` setting, confirmed inside the VM.

        ``from_guest`` runs ONE Run Command (the ``port`` guest script), which
        reads the modernized gateway's appsettings.json and the legacy
        gateway's ``SmePort``; otherwise only the extension settings are read.
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
            if not from_guest:
                return port_info(t, state.port, None)
            return guest_port_info(t, state.port, await read_guest_port(self._session, t))

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
        progress = guarded(progress)  # a failing callback is logged once per uninstall

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
                say(progress, t, ProgressStage.REMOVING, "the NSG rules wac_azure created")
                # the extension's port (read before it was deleted): rules of earlier
                # wac_azure versions for that port are adopted and removed too
                ports = (previous.port,) if previous.port is not None else ()
                rules = await NetworkRulePlanner(self._session).remove(t, ports=ports)
                say(progress, t, ProgressStage.RULES_REMOVED)
            result = UninstallResult(t, removed, previous, rules)
            say(progress, t, ProgressStage.DONE, "removed" if result.changed else "nothing to do")
            return result

        async def reported() -> UninstallResult:
            try:
                return await go()
            except BaseException as exc:
                say(progress, t, ProgressStage.FAILED, first_line(exc))
                raise

        work = within(reported(), limit, f"uninstalling AdminCenter from {t.name}")
        if wait:
            return await work
        return OperationHandle(asyncio.ensure_future(work), f"uninstall AdminCenter from {t.name}")

    async def _delete(self, t: VmTarget) -> None:

        compute = self._session.compute(t.subscription_id)
        what = f"removing AdminCenter from {t.name}"

        async def once() -> None:
            _log.info("deleting extension AdminCenter from %s", t.name)
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
