"""The one decision that ``enable`` and ``enable_many`` share.

:func:`decide_enable` takes the facts of one VM or of many and the caller's
choices, and says for each VM whether to go on, and if not why, with the
typed error a single ``enable`` raises. Its steps, in order:

1. **Requirements.** :func:`~wac_azure._core.checks.evaluate_requirements`;
   a failed check stops the VM unless the network plan repairs it
   (:data:`PLANNABLE_CHECKS`, see :func:`blocking_checks`). Unknown and warn
   checks never stop it. → :class:`~wac_azure.RequirementsNotMetError`;
   but sources of an IP version the VM has no address of (the
   ``network.source_family`` check) are the access mode's fault.
   → :class:`~wac_azure.InvalidAccessError`.
2. **Public address.** With :class:`~wac_azure.PublicAccess` the VM needs a
   public IP to be reached at. → :class:`~wac_azure.NoPublicIpError`.
3. **Extension.** The extension PUT body (``None`` when the deployed one
   already matches); a foreign ``AdminCenter`` extension stops the VM.
   → :class:`~wac_azure.ExtensionError`.
4. **Network plan.** One :func:`~wac_azure._core.plan.plan_many` over the VMs
   still going: a blocking conflict on a VM's path stops it
   (:class:`~wac_azure.PlanBlockedError`), and so does a failed network
   check that the plan leaves failing (a needed flow still denied once the
   plan is applied: :class:`~wac_azure.RequirementsNotMetError`).
   The plan is made again without the VMs it stopped, until it stops none,
   so that a stopped VM gets no rule written for it.

A fleet of one and a single ``enable`` thus decide alike on the same world:
the same VMs go on, the same rules are planned, the same errors stop the rest.
Pure: no I/O, no clock, no randomness (``new_salt`` is the caller's).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from wac_azure._core.access import AccessMode, PrivateAccess
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.errors import InvalidAccessError, InvalidInputError, WacAzureError
from wac_azure._core.extension import desired_extension, url_for
from wac_azure._core.facts import DEFAULT_PORT, VmFacts
from wac_azure._core.findings import Check, RequirementReport
from wac_azure._core.nsg import Access, ServiceTags
from wac_azure._core.plan import BlockingConflict, NetworkPlan, plan_many

__all__ = [
    "ACCESS_CHECK",
    "CONNECT_ONLY_CHECKS",
    "PLANNABLE_CHECKS",
    "EnableDecision",
    "PlanBlockedError",
    "RequirementsNotMetError",
    "VmDecision",
    "blocking_checks",
    "conflict_blocks",
    "decide_enable",
    "first_blocking_conflict",
]

# The two refusals of the decision live here, with the types they carry (the
# errors module is below findings and plans); docs: the tree in errors.py.


class RequirementsNotMetError(WacAzureError):
    """The VM does not meet Windows Admin Center's requirements.

    ``report`` is the :class:`~wac_azure.RequirementReport` that failed (``None``
    only when the error was made without one).
    """

    def __init__(self, message: str, *, report: RequirementReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class PlanBlockedError(WacAzureError):
    """A network plan cannot be applied: it has blocking conflicts.

    ``plan`` is the :class:`~wac_azure.NetworkPlan` (``None`` only when the error
    was made without one).
    """

    def __init__(self, message: str, *, plan: NetworkPlan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


#: Failed checks that the network plan repairs (a deny rule the planner routes
#: around): ``enable`` / ``enable_many`` apply the plan instead of refusing.
PLANNABLE_CHECKS = frozenset(
    {"network.outbound_wac", "network.outbound_entra", "network.inbound_path"}
)
#: Checks about *connecting* to Windows Admin Center, not about installing it:
#: a failure there does not stop ``ExtensionManager.install``.
CONNECT_ONLY_CHECKS = frozenset(
    {"network.inbound_path", "network.exposure", "network.source_family"}
)
#: A failure of this check is the access mode's, not the VM's: the VM stops with an
#: :class:`~wac_azure.InvalidAccessError` (sources of an IP version it has no address of).
ACCESS_CHECK = "network.source_family"


def blocking_checks(report: RequirementReport, *, purpose: str) -> tuple[Check, ...]:
    """The failed checks that stop an operation, in report order (empty: go on).

    ``purpose="install"`` (:meth:`~wac_azure.ExtensionManager.install`): every
    failure except the connect-only ones (``network.inbound_path``,
    ``network.exposure``: they do not affect installing). ``purpose="enable"``
    (:func:`~wac_azure.enable`, :func:`~wac_azure.enable_many`): every failure
    except those the network plan repairs (:data:`PLANNABLE_CHECKS`).
    *Unknown* and *warn* checks never block: the caller reports them and goes
    on (Azure is the final judge), and an unknown is never shown as a pass.
    """
    if purpose == "install":
        exempt = CONNECT_ONLY_CHECKS
    elif purpose == "enable":
        exempt = PLANNABLE_CHECKS
    else:
        raise InvalidInputError(f"purpose must be 'install' or 'enable', got {purpose!r}")
    return tuple(c for c in report.failures if c.code not in exempt)


def _denied_vms(plan: NetworkPlan) -> set[str]:
    """The keys (lower case) of the VMs a needed flow stays denied for once ``plan`` is applied."""
    return {chk.vm.lower() for chk in plan.checks if chk.after.access is Access.DENY}


def _unfixed(report: RequirementReport, still_denied: bool) -> list[str]:
    if not still_denied:
        return []
    return [c.code for c in report.failures if c.code in PLANNABLE_CHECKS]


@attrs.frozen
class VmDecision:
    """What the decision says of one VM.

    ``error`` is ``None`` when the VM goes on; otherwise the typed error a
    single :func:`~wac_azure.enable` raises for it (``stage`` says which step
    stopped it: ``"requirements"``, ``"address"``, ``"extension"`` or
    ``"network"``). ``report`` is ``None`` only when the checks themselves
    could not run. ``extension`` is the extension PUT body (``None``: nothing
    to write, or the VM stopped). ``plan`` is the plan the VM was last judged
    on (``None`` when it stopped before planning).
    """

    facts: VmFacts
    report: RequirementReport | None
    error: Exception | None = None
    stage: Literal["requirements", "address", "extension", "network"] | None = None
    extension: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)
    plan: NetworkPlan | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def key(self) -> str:
        """The VM's key in a plan: its resource ID as Azure spells it."""
        return self.facts.vm_resource_id or str(self.facts.target)

    @property
    def go(self) -> bool:
        """True when nothing stops the VM."""
        return self.error is None

    @property
    def skipped(self) -> bool:
        """True when the VM does not meet the requirements (a fleet reports it ``skipped``)."""
        return isinstance(self.error, RequirementsNotMetError)


@attrs.frozen
class EnableDecision:
    """The decision over a batch of VMs: one :class:`VmDecision` each, in input
    order, and the network plan of the VMs that go on."""

    plan: NetworkPlan
    vms: tuple[VmDecision, ...]
    #: How many of the plan's changes each NSG gets (lower-case NSG id).
    changes_per_nsg: Mapping[str, int] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def going(self) -> tuple[VmDecision, ...]:
        """The VMs that go on."""
        return tuple(vm for vm in self.vms if vm.go)

    def changes_for(self, vm: VmDecision) -> int:
        """How many of the plan's changes are on an NSG on ``vm``'s path."""
        return sum(self.changes_per_nsg.get(key, 0) for key in vm.facts.nsgs)


def decide_enable(
    facts: Sequence[VmFacts],
    *,
    access: AccessMode | None = None,
    port: int = DEFAULT_PORT,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
    salt: str | None = None,
    proxy: dict[str, str] | Literal[False] | None = None,
    new_salt: Callable[[], str],
    warnings: Sequence[str] = (),
) -> EnableDecision:
    """Decide, for each VM of ``facts``, whether ``enable`` goes on (see the module doc).

    ``access`` defaults to :class:`~wac_azure.PrivateAccess`; ``salt`` and
    ``proxy`` are those of :meth:`~wac_azure.ExtensionManager.install` (proxy
    already validated); ``warnings`` are added to the plan (service tags that
    could not be read...). A configuration error (a bad port or access mode)
    raises at once: it is the caller's, not a VM's.
    """
    chosen: AccessMode = PrivateAccess() if access is None else access
    decisions: list[VmDecision] = []
    for f in facts:
        decisions.append(_precheck(f, chosen, port, service_tags, salt, proxy, new_salt))

    going = [d for d in decisions if d.go]
    plan = _plan(going, chosen, port, service_tags, warnings)
    while going:
        stopped = _stopped_by(plan, going)
        if not stopped:
            break
        for i, d in enumerate(decisions):
            if d.key in stopped:
                decisions[i] = stopped[d.key]
        going = [d for d in going if d.key not in stopped]
        plan = _plan(going, chosen, port, service_tags, warnings)
    final = [attrs.evolve(d, plan=plan) if d.go else d for d in decisions]
    per_nsg = collections.Counter(c.nsg_id.lower() for c in plan.changes)
    return EnableDecision(plan=plan, vms=tuple(final), changes_per_nsg=dict(per_nsg))


def _precheck(
    facts: VmFacts,
    access: AccessMode,
    port: int,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None,
    salt: str | None,
    proxy: dict[str, str] | Literal[False] | None,
    new_salt: Callable[[], str],
) -> VmDecision:
    """Steps 1-3 of one VM."""
    t = facts.target
    try:
        report = evaluate_requirements(facts, access=access, port=port, service_tags=service_tags)
    except InvalidInputError:
        raise  # the caller's options (port, access): not this VM's fault
    except Exception as exc:
        return VmDecision(facts, None, exc, "requirements")
    wrong = next((c for c in report.failures if c.code == ACCESS_CHECK), None)
    if wrong is not None:
        error: Exception = InvalidAccessError(
            f"{t.name}: {wrong.message}; nothing was written. {wrong.remedy or ''}".strip()
        )
        return VmDecision(facts, report, error, "requirements")
    hard = blocking_checks(report, purpose="enable")
    if hard:
        error = RequirementsNotMetError(
            f"{t.name} does not meet Windows Admin Center's requirements "
            f"({', '.join(c.code for c in hard)}); nothing was written:\n" + str(report),
            report=report,
        )
        return VmDecision(facts, report, error, "requirements")
    try:
        if access.via == "public":
            url_for(facts, port, via="public")  # NoPublicIpError before any plan or write
    except Exception as exc:
        return VmDecision(facts, report, exc, "address")
    try:
        body = desired_extension(facts, port=port, salt=salt, proxy=proxy, new_salt=new_salt)
    except Exception as exc:
        return VmDecision(facts, report, exc, "extension")
    return VmDecision(facts, report, extension=body)


def _plan(
    going: Sequence[VmDecision],
    access: AccessMode,
    port: int,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None,
    warnings: Sequence[str],
) -> NetworkPlan:
    plan = plan_many([d.facts for d in going], access=access, port=port, service_tags=service_tags)
    if warnings:
        plan = attrs.evolve(plan, warnings=(*plan.warnings, *warnings))
    return plan


def conflict_blocks(conflict: BlockingConflict, facts: VmFacts) -> bool:
    """Whether a blocking conflict stands on the VM's way: it names the VM, or it
    names no VM and is about an NSG on the VM's path."""
    key = (conflict.vm or "").lower()
    if key:
        t = facts.target
        return key in {t.resource_id.lower(), t.name.lower(), facts.vm_resource_id.lower()}
    return bool(conflict.nsg_id) and (conflict.nsg_id or "").lower() in facts.nsgs


def first_blocking_conflict(plan: NetworkPlan, facts: VmFacts) -> BlockingConflict | None:
    """The first of ``plan``'s blocking conflicts that stands on the VM's way, if any."""
    return next((c for c in plan.blocking if conflict_blocks(c, facts)), None)


def _stopped_by(plan: NetworkPlan, going: Sequence[VmDecision]) -> dict[str, VmDecision]:
    """Step 4: the VMs ``plan`` stops, each with its error (keyed by VM key)."""
    stopped: dict[str, VmDecision] = {}
    denied = _denied_vms(plan)
    for d in going:
        name = d.facts.target.name
        conflicts = [c for c in plan.blocking if conflict_blocks(c, d.facts)]
        if conflicts:
            if len(going) == 1:
                message = (
                    f"{name}: the network plan has blocking conflicts; nothing was written:\n"
                    + str(plan)
                )
            else:
                message = f"{name}: the network plan is blocked: {conflicts[0].reason}"
            error: Exception = PlanBlockedError(message, plan=plan)
            stopped[d.key] = attrs.evolve(d, error=error, stage="network", plan=plan)
            continue
        assert d.report is not None  # a VM without a report never reaches the plan
        unfixed = _unfixed(d.report, d.key.lower() in denied)
        if unfixed:
            error = RequirementsNotMetError(
                f"{name}: the network plan does not fix {', '.join(unfixed)}; "
                "nothing was written:\n" + str(d.report) + "\n" + str(plan),
                report=d.report,
            )
            stopped[d.key] = attrs.evolve(d, error=error, stage="network", plan=plan)
    return stopped
