"""``enable`` and ``disable``: the whole lifecycle of Windows Admin Center on one VM.

``enable`` = read the VM once → check the requirements → plan the NSG rules →
apply them → install the extension → locate the port → build the URL.

Decisions:

* A Run Command (``POST .../runCommand``) runs code in the VM: it counts as a
  write. ``enable`` confirms the port inside the VM (appsettings.json or
  ``SmePort``, whichever gateway is installed) only when it changed
  something; on an unchanged VM the port comes from the extension settings,
  so a second ``enable`` performs zero writes.
* ``dry_run=True`` reads, checks and plans, and writes nothing (no rule, no
  extension, no Run Command); the result shows the plan and the URL the VM
  would get.
* A VM that fails a requirement raises :class:`RequirementsNotMetError`
  (carrying the report) before any write — except the network checks the
  plan repairs (``network.outbound_wac``, ``network.outbound_entra``,
  ``network.inbound_path`` denied by a rule the planner routes around): those
  pass when, once the plan is applied, no needed flow is denied. Checks that
  are only *unknown* are reported (log and progress) and do not stop it.
"""

from __future__ import annotations

import asyncio
import html
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs

from wac_azure._azure.deadline import finish_before_cancel, within
from wac_azure._azure.extension import ExtensionManager, new_salt
from wac_azure._azure.guest import read_guest_port
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.rules import NetworkRulePlanner
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import service_tags_for
from wac_azure._core.access import AccessMode, PrivateAccess, check_access
from wac_azure._core.decide import decide_enable
from wac_azure._core.errors import (
    InvalidInputError,
    NoPublicIpError,
)
from wac_azure._core.extension import (
    ExtensionState,
    PortInfo,
    UninstallResult,
    guest_port_info,
    normalize_proxy,
    port_info,
    url_for,
)
from wac_azure._core.facts import DEFAULT_PORT
from wac_azure._core.findings import RequirementReport
from wac_azure._core.ids import VmTarget
from wac_azure._core.plan import ApplyResult, NetworkPlan
from wac_azure._core.progress import (
    ProgressCallback,
    ProgressStage,
    guarded,
    non_terminal,
    say,
    warn_unknowns,
)
from wac_azure._core.validate import as_target, check_flag, check_port, check_timeout
from wac_azure._workflows.locks import vm_lock
from wac_azure._workflows.tracing import traced_vm

if TYPE_CHECKING:
    from collections.abc import Mapping


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _to_dict(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else None


def _line(value: Any) -> str:
    summary = getattr(value, "summary", None)
    if callable(summary):
        return str(summary())
    return str(value).partition("\n")[0]


def _changed(value: Any) -> bool:
    return bool(getattr(value, "changed", False))


def _report_line(report: RequirementReport) -> str:
    line = _line(report)
    repaired = [c.code for c in report.failures]
    if repaired:
        line += f"; repaired by the network plan: {', '.join(repaired)}"
    return line


def _text(head: str, sections: tuple[tuple[str, object], ...]) -> str:
    parts = [head]
    for title, value in sections:
        if value is not None:
            body = str(value).replace("\n", "\n    ")
            parts.append(f"  {title}:\n    {body}")
    return "\n".join(parts)


def _html(head: str, url: str | None, sections: tuple[tuple[str, object], ...]) -> str:
    parts = []
    for title, value in sections:
        if value is None:
            continue
        html_of = getattr(value, "_repr_html_", None)
        inner = html_of() if callable(html_of) else f"<pre>{_esc(value)}</pre>"
        parts.append(f"<details><summary>{_esc(title)}</summary>{inner}</details>")
    link = f' <a href="{_esc(url)}">{_esc(url)}</a>' if url else ""
    return f"<div><strong>{_esc(head)}</strong>{link}{''.join(parts)}</div>"


@attrs.frozen
class EnableResult:
    """What :func:`enable` found and did on a real run (``dry_run=False``).

    Every field is present: ``report`` is the requirement report, ``plan``
    the network plan, ``apply`` the result of applying it, ``extension`` the
    extension state, ``port`` where WAC listens, ``url`` the connection URL.
    ``changed`` tells whether anything was written. A dry run returns an
    :class:`EnablePreview` instead.
    """

    target: VmTarget
    report: RequirementReport
    plan: NetworkPlan
    apply: ApplyResult
    extension: ExtensionState
    port: PortInfo
    url: str
    changed: bool

    @property
    def dry_run(self) -> Literal[False]:
        """``False``: this result comes from a real run (see :class:`EnablePreview`)."""
        return False

    def summary(self) -> str:
        """One line."""
        state = "enabled" if not self.changed else "enabled (changed)"
        return f"{self.target.name}: Windows Admin Center {state} at {self.url}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "dry_run": False,
            "changed": self.changed,
            "url": self.url,
            "port": self.port.to_dict(),
            "extension": self.extension.to_dict(),
            "report": self.report.to_dict(),
            "plan": self.plan.to_dict(),
            "apply": self.apply.to_dict(),
        }

    def _sections(self) -> tuple[tuple[str, object], ...]:
        return (
            ("requirements", self.report),
            ("network plan", self.plan),
            ("network changes", self.apply),
            ("extension", self.extension),
            ("port", self.port),
        )

    def __str__(self) -> str:
        return _text(
            self.summary(),
            (
                ("requirements", _report_line(self.report)),
                ("network plan", self.plan),
                ("network changes", _line(self.apply)),
                ("extension", _line(self.extension)),
                ("port", self.port),
            ),
        )

    def _repr_html_(self) -> str:
        return _html(self.summary(), self.url, self._sections())


@attrs.frozen
class EnablePreview:
    """What :func:`enable` would do: the result of ``enable(..., dry_run=True)``.

    Nothing was written, so there is no ``apply``, no ``port`` read inside
    the VM and ``changed`` is always ``False``. ``report`` is the requirement
    report, ``plan`` the network plan that a real run would apply,
    ``extension`` the extension as it is now, ``url`` the URL the VM would
    get (``None`` when public access is asked of a VM without a public IP).
    """

    target: VmTarget
    report: RequirementReport
    plan: NetworkPlan
    extension: ExtensionState
    url: str | None

    @property
    def dry_run(self) -> Literal[True]:
        """``True``: nothing was written."""
        return True

    @property
    def changed(self) -> Literal[False]:
        """``False``: a dry run writes nothing."""
        return False

    def summary(self) -> str:
        """One line."""
        name = self.target.name
        return f"{name}: dry run, nothing written; would be reachable at {self.url or '?'}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the same keys as :meth:`EnableResult.to_dict`; ``port`` and
        ``apply`` are ``None``)."""
        return {
            "target": str(self.target),
            "dry_run": True,
            "changed": False,
            "url": self.url,
            "port": None,
            "extension": self.extension.to_dict(),
            "report": self.report.to_dict(),
            "plan": self.plan.to_dict(),
            "apply": None,
        }

    def __str__(self) -> str:
        return _text(
            self.summary(),
            (
                ("requirements", _report_line(self.report)),
                ("network plan", self.plan),
                ("extension", _line(self.extension)),
            ),
        )

    def _repr_html_(self) -> str:
        return _html(
            self.summary(),
            None,
            (
                ("requirements", self.report),
                ("network plan", self.plan),
                ("extension", self.extension),
            ),
        )


@attrs.frozen
class DisableResult:
    """What :func:`disable` did: the extension removal and the NSG rules removed."""

    target: VmTarget
    uninstall: UninstallResult

    @property
    def extension_removed(self) -> bool:
        return self.uninstall.removed

    @property
    def rules(self) -> ApplyResult | None:
        """The NSG rule removals (``None`` when rules were not asked to be removed)."""
        return self.uninstall.rules

    @property
    def changed(self) -> bool:
        return self.uninstall.changed

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "extension_removed": self.extension_removed,
            "rules": _to_dict(self.rules),
            "changed": self.changed,
        }

    def __str__(self) -> str:
        return str(self.uninstall)

    def _repr_html_(self) -> str:
        return self.uninstall._repr_html_()


@overload
async def enable(
    session: AzureSession,
    target: VmTarget | str,
    *,
    access: AccessMode = PrivateAccess(),
    port: int = DEFAULT_PORT,
    dry_run: Literal[False] = False,
    timeout: float = 900,
    progress: ProgressCallback | None = None,
    salt: str | None = None,
    proxy: str | Mapping[str, str] | Literal[False] | None = None,
    allow_well_known_port: bool = False,
) -> EnableResult: ...


@overload
async def enable(
    session: AzureSession,
    target: VmTarget | str,
    *,
    access: AccessMode = PrivateAccess(),
    port: int = DEFAULT_PORT,
    dry_run: Literal[True],
    timeout: float = 900,
    progress: ProgressCallback | None = None,
    salt: str | None = None,
    proxy: str | Mapping[str, str] | Literal[False] | None = None,
    allow_well_known_port: bool = False,
) -> EnablePreview: ...


@overload
async def enable(
    session: AzureSession,
    target: VmTarget | str,
    *,
    access: AccessMode = PrivateAccess(),
    port: int = DEFAULT_PORT,
    dry_run: bool,
    timeout: float = 900,
    progress: ProgressCallback | None = None,
    salt: str | None = None,
    proxy: str | Mapping[str, str] | Literal[False] | None = None,
    allow_well_known_port: bool = False,
) -> EnableResult | EnablePreview: ...


@traced_vm("enable")  # one span per call, following its progress (_workflows/tracing.py)
async def enable(
    session: AzureSession,
    target: VmTarget | str,
    *,
    access: AccessMode = PrivateAccess(),  # frozen: a safe default
    port: int = DEFAULT_PORT,
    dry_run: bool = False,
    timeout: float = 900,
    progress: ProgressCallback | None = None,
    salt: str | None = None,
    proxy: str | Mapping[str, str] | Literal[False] | None = None,
    allow_well_known_port: bool = False,
) -> EnableResult | EnablePreview:
    """Put Windows Admin Center on ``target``: check, plan, apply, install, port, URL.

    ``access`` is :class:`~wac_azure.PrivateAccess` (default: from the virtual
    network) or :class:`~wac_azure.PublicAccess` (over the public IP, from
    the given sources). Safe to re-run: a second run writes nothing.
    ``progress`` is called with a :class:`~wac_azure.ProgressEvent` per stage
    (reading → planned → rules applied → installing → done, or failed), as
    for fleets. ``proxy`` as for :meth:`~wac_azure.ExtensionManager.install`
    (``None`` keeps a deployed proxy, ``False`` removes it).

    Returns an :class:`EnableResult`, or with ``dry_run=True`` an
    :class:`EnablePreview` (nothing written: no ``apply``, no ``port``).
    A well-known ``port`` (below 1024, or 3389, 5985, 5986) raises
    :class:`~wac_azure.ConfigurationError` unless ``allow_well_known_port=True``.
    """

    t = as_target(target)
    check_port(port, allow_well_known_port=allow_well_known_port)
    check_flag(dry_run, "dry_run")
    limit = check_timeout(timeout)
    access = check_access(access)  # None: the old default
    via = access.via
    if salt is not None and (not isinstance(salt, str) or not salt.strip()):
        raise InvalidInputError("salt must be a non-empty string (or None to reuse/generate)")
    proxy_settings: dict[str, str] | Literal[False] | None = (
        False if proxy is False else normalize_proxy(proxy)
    )
    progress = guarded(progress)  # a failing callback is logged once per run
    planner = NetworkRulePlanner(session)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit

    async def go() -> EnableResult | EnablePreview:
        say(progress, t, ProgressStage.READING)
        facts = await read_vm_facts(session, t)
        tags, tag_warnings = await service_tags_for(session, [facts])
        # The one decision enable_many makes too (wac_azure._core.decide).
        decision = decide_enable(
            [facts],
            access=access,
            port=port,
            service_tags=tags,
            salt=salt,
            proxy=proxy_settings,
            new_salt=new_salt,
            warnings=tag_warnings,
        )
        vm = decision.vms[0]
        if vm.report is not None and vm.stage != "requirements":
            warn_unknowns(t, vm.report, progress)
        if vm.plan is not None:
            n = len(vm.plan.changes)
            say(
                progress,
                t,
                ProgressStage.PLANNED,
                f"{n} rule change(s) on its NSGs" if n else "no rule change",
            )
        if vm.error is not None:
            raise vm.error
        assert vm.report is not None
        assert vm.plan is not None
        report, plan = vm.report, vm.plan
        current = ExtensionState.from_facts(t, facts.extension)
        if dry_run:
            try:
                would_be: str | None = url_for(facts, port, via=via)
            except NoPublicIpError:
                would_be = None
            say(progress, t, ProgressStage.DONE, "dry run: nothing written")
            return EnablePreview(t, report, plan, current, would_be)

        async def write_rules() -> ApplyResult:
            written = await planner.apply(plan)
            # which addresses the rules now name: a later change of the VM's address is
            # found there, and the next enable or disable takes the old one out of them
            await planner.record_after(facts, written, plan)
            return written

        # Cancelled while the rules are written: the plan's writes finish first, so the
        # NSGs are left as before or as planned, never half-written.
        applied = await finish_before_cancel(write_rules())
        say(progress, t, ProgressStage.RULES_APPLIED, "changed" if _changed(applied) else None)
        state = await ExtensionManager(session).install(
            t,
            port=port,
            salt=salt,
            proxy=proxy,
            facts=facts,
            skip_checks=True,
            allow_well_known_port=allow_well_known_port,
            timeout=max(deadline - loop.time(), 0.001),
            progress=non_terminal(progress),
        )
        if state.changed:
            say(progress, t, ProgressStage.INSTALLING, "reading the port inside the VM")
            where = guest_port_info(t, state.port, await read_guest_port(session, t))
        else:
            where = port_info(t, state.port, None)
        url = url_for(facts, where.port, via=via)
        changed = state.changed or _changed(applied)
        say(progress, t, ProgressStage.DONE, f"ready at {url}")
        return EnableResult(t, report, plan, applied, state, where, url, changed)

    async def reported() -> EnableResult | EnablePreview:
        try:
            # one enable per VM at a time in this process: a second one waits, then reads
            # what the first wrote (its salt, its extension) and writes nothing again
            async with vm_lock(t):
                return await go()
        except BaseException as exc:
            message = (str(exc).partition("\n")[0] or type(exc).__name__)[:300]
            say(progress, t, ProgressStage.FAILED, message)
            raise

    return await within(reported(), limit, f"enabling Windows Admin Center on {t.name}")


@traced_vm("disable")
async def disable(
    session: AzureSession,
    target: VmTarget | str,
    *,
    remove_rules: bool = True,
    timeout: float = 900,
    progress: ProgressCallback | None = None,
) -> DisableResult:
    """Take Windows Admin Center off ``target``: uninstall the extension and, with
    ``remove_rules`` (default), remove the NSG rules this library created."""
    t = as_target(target)
    check_flag(remove_rules, "remove_rules")
    result = await ExtensionManager(session).uninstall(
        t, remove_rules=remove_rules, timeout=timeout, progress=progress
    )
    return DisableResult(t, result)
