"""A fleet dry run: ``enable_many(..., dry_run=True)`` reads and decides, and writes nothing.

Kept apart from the engine on purpose: it shares the run's reads
(:meth:`Subscription.read_rg`, the same lists and GETs a real run makes) and the
one decision (``_core.decide.decide_enable``), and replaces everything after the
decision (rule queues, extension PUTs, install watching) by a record of what a
real run would write: :class:`FleetPlan`, one :class:`VmPlan` per VM.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from wac_azure._azure.tags import service_tags_for
from wac_azure._core.decide import VmDecision, blocking_checks, decide_enable
from wac_azure._core.errors import NoPublicIpError, NotFoundError
from wac_azure._core.extension import url_for
from wac_azure._core.facts import VmFacts
from wac_azure._core.ids import VmTarget
from wac_azure._core.plan import RuleChange
from wac_azure._core.progress import ProgressStage
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome
from wac_azure._workflows.fleet.run import RG_PARALLEL, Run, Subscription
from wac_azure._workflows.fleet.state import FleetVm

#: What a dry run shows as the salt of an extension a real run would PUT with a new
#: one (a real run draws it at random: ``secrets.token_hex(16)``).
NEW_SALT = "(new random salt)"


def rule_id(change: RuleChange) -> str:
    """The security rule's resource ID, as a fleet run lists it in ``VmOutcome.rules``."""
    return f"{change.nsg_id}/securityRules/{change.rule_name}"


@attrs.frozen
class VmPlan(VmOutcome):
    """One VM of a fleet dry run: what a real :func:`~wac_azure.enable_many` would do.

    ``status`` is what the run would end with: ``enabled`` (it would go on),
    ``skipped`` (``report`` says why) or ``failed`` (``error``). For a VM that would
    go on, ``changes`` are the security-rule writes on the NSGs on its path (a rule
    on a shared NSG is listed for every VM it serves, written once), ``rules`` their
    resource IDs (as a real run's :attr:`VmOutcome.rules`), ``extension`` the
    ``AdminCenter`` PUT body (``None``: the deployed extension already matches; a
    new salt shows as :data:`NEW_SALT`), ``changed`` whether anything would be
    written, and ``url`` the URL the VM would get. Nothing was written.
    """

    changes: tuple[RuleChange, ...] = attrs.field(default=(), eq=False, repr=False)
    extension: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: :meth:`VmOutcome.to_dict` plus ``changes`` and ``extension``."""
        out = super().to_dict()
        out["changes"] = [c.to_dict() for c in self.changes]
        out["extension"] = self.extension
        return out

    def __str__(self) -> str:
        if self.status is not OutcomeStatus.ENABLED:
            return super().__str__()
        writes = [f"{len(self.changes)} rule(s)"] if self.changes else []
        if self.extension is not None:
            writes.append("the AdminCenter extension")
        would = "would write " + " and ".join(writes) if writes else "nothing to write"
        return f"{self.target.name}: would be enabled ({would}) {self.url or ''}".rstrip()


@attrs.frozen
class FleetPlan(FleetResult):
    """What ``enable_many(..., dry_run=True)`` found: one :class:`VmPlan` per VM.

    A :class:`FleetResult` whose outcomes say what a real run would do;
    ``changes`` are the rule writes over the whole fleet, each once. ``writes``
    and ``deletes`` are zero: a dry run only reads.
    """

    changes: tuple[RuleChange, ...] = attrs.field(default=(), eq=False, repr=False)

    @property
    def dry_run(self) -> bool:
        """Always True: nothing was written."""
        return True

    @property
    def plans(self) -> tuple[VmPlan, ...]:
        """The outcomes, typed as :class:`VmPlan`."""
        return tuple(o for o in self.outcomes if isinstance(o, VmPlan))

    def summary(self) -> str:
        """One line: what a real run would do, and what the dry run read."""
        c = self.counts
        extensions = sum(1 for o in self.plans if o.extension is not None)
        return (
            f"enable dry run on {c['total']} VMs: {c['enabled']} would be enabled "
            f"({c['changed']} with writes), {c['skipped']} skipped, {c['failed']} failed; "
            f"would write {len(self.changes)} rule(s) and {extensions} extension(s); "
            f"nothing written; ARM reads {self.reads} in {self.elapsed:.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: :meth:`FleetResult.to_dict` plus ``dry_run`` and ``changes``."""
        out = super().to_dict()
        out["dry_run"] = True
        out["changes"] = [c.to_dict() for c in self.changes]
        return out

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {o}" for o in self.outcomes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        note = (
            "<p><em>Dry run: nothing was written; <q>enabled</q> means a real run would "
            "enable the VM, <q>changed</q> that it would write.</em></p>"
        )
        return note + super()._repr_html_()


def _skip_reason(d: VmDecision) -> str:
    if d.stage == "requirements" and d.report is not None:
        problems = blocking_checks(d.report, purpose="enable")
        return "; ".join(f"{c.code}: {c.message}" for c in problems) or d.report.summary()
    return str(d.error).partition("\n")[0]


class DryRun:
    """The work of a dry run per subscription (called by the engine's ``_execute`` in
    place of ``fleet.enable()``), then :meth:`result` turns the run's result into a
    :class:`FleetPlan`."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.planned: dict[VmTarget, tuple[tuple[RuleChange, ...], dict[str, Any] | None]] = {}
        self.changes: list[RuleChange] = []

    async def __call__(self, fleet: Subscription) -> None:
        run = self.run
        groups: dict[str, list[FleetVm]] = {}
        for vm in fleet.vms:
            groups.setdefault(vm.target.resource_group.lower(), []).append(vm)
        gate = asyncio.Semaphore(RG_PARALLEL)

        async def read(vms: list[FleetVm]) -> None:
            async with gate, run.read_gate:
                await fleet.read_rg(vms)

        await asyncio.gather(*(read(vms) for vms in groups.values()))
        batch = [vm for vm in fleet.vms if vm.facts is not None and vm.outcome is None]
        if not batch:
            return
        facts: list[VmFacts] = [vm.facts for vm in batch if vm.facts is not None]
        tags, tag_warnings = await service_tags_for(run.session, facts)
        try:
            # The one decision a real run (and a single enable()) makes, over the whole
            # subscription at once: a rule on an NSG that groups share is planned once,
            # as a real run's queued writes to it are re-planned together.
            decision = decide_enable(
                facts,
                access=run.access,
                port=run.port,
                service_tags=tags,
                new_salt=lambda: NEW_SALT,
                warnings=tag_warnings,
            )
        except Exception as exc:
            for vm in batch:
                run.fail(vm, exc)
            return
        self.changes.extend(decision.plan.changes)
        for vm, d in zip(batch, decision.vms, strict=True):
            if d.skipped:
                run.finish(vm, OutcomeStatus.SKIPPED, message=_skip_reason(d), report=d.report)
                continue
            if d.error is not None:
                run.fail(vm, d.error)
                continue
            mine = tuple(c for c in decision.plan.changes if c.nsg_id.lower() in d.facts.nsgs)
            self.planned[vm.target] = (mine, d.extension)
            run.stage(
                vm,
                ProgressStage.PLANNED,
                f"{len(mine)} rule change(s) on its NSGs" if mine else "no change",
            )
            try:
                url: str | None = url_for(d.facts, run.port, via=run.access.via)
            except (NoPublicIpError, NotFoundError):
                url = None
            run.finish(
                vm,
                OutcomeStatus.ENABLED,
                changed=bool(mine) or d.extension is not None,
                rules=tuple(rule_id(c) for c in mine),
                port=run.port,
                url=url,
                message="dry run: nothing written",
                report=d.report,
            )

    def result(self, result: FleetResult) -> FleetPlan:
        """``result`` (the run's) as a :class:`FleetPlan`."""
        outcomes = []
        for o in result.outcomes:
            fields = {f.name: getattr(o, f.name) for f in attrs.fields(VmOutcome)}
            changes, extension = self.planned.get(o.target, ((), None))
            outcomes.append(VmPlan(**fields, changes=changes, extension=extension))
        return FleetPlan(
            operation=result.operation,
            outcomes=tuple(outcomes),
            elapsed=result.elapsed,
            subscriptions=result.subscriptions,
            reads=result.reads,
            writes=result.writes,
            deletes=result.deletes,
            throttled=result.throttled,
            changes=tuple(self.changes),
        )
