"""Fleets: :func:`enable_many`, :func:`disable_many` and :func:`discover`.

What bounds a fleet run is Azure Resource Manager's throttling (AZURE_FACTS
§6: per subscription, writes 200 + 10/s, reads 250 + 25/s) and the
extension's install time, not this machine. The run is shaped around that:

* **Reads scale with resource groups and pages, not VMs.** Per resource
  group: one list of VMs (``$expand=instanceView``), network interfaces,
  virtual networks, NSGs and — only when a NIC has one — public IPs, each
  following ``nextLink``; VM sizes once per location; resources outside the
  listed groups (an NSG in a shared networking group) read once each. Each
  VM's :class:`~wac_azure.VmFacts` is assembled from those lists
  (``_core.facts.facts_from_arm``).
* **Act per resource group, as soon as it is read.** Its VMs are checked and
  decided purely by the one decision :func:`wac_azure.enable` makes too
  (``_core.decide.decide_enable``: the checks, then one plan for the group,
  where an NSG shared by many VMs gets each rule once); groups that share
  an NSG do not wait for each other: their writes to it queue, and what
  queued during one write is re-planned together against the NSG as read
  under its lock and written once.
* **Writes are the unavoidable ones.** Rules are PUT one by one, serialized
  per NSG (NSGs in parallel), each waited for through its operation-status
  resource; the extension is PUT once per VM that needs it as soon as its
  outbound path is in place (the install needs no inbound rule), ahead of the
  rule writes no install waits for in the write bucket. A VM is done when its
  install and its rules are both in force.
* **Waiting costs pages, not polls.** Extension PUTs are not polled one by
  one: the run lists each resource group's VMs with ``$expand=instanceView``
  and reads every pending install's state from that one list (see
  :class:`RgWaiter` for when).
* **Pacing.** The session's :class:`~wac_azure.Pacer` keeps each
  subscription below ARM's buckets (from the
  ``x-ms-ratelimit-remaining-subscription-*`` headers); subscriptions run in
  parallel, each at its own pace; 429s that still come are retried by
  azure-core and counted in the result.
* **Failures stay local.** A VM that fails the requirements is *skipped*
  (with its report), one whose write or install fails is *failed* (with the
  error); the rest of the batch carries on.
* **Cancellation.** Cancelling the run never leaves half a rule: each
  security-rule PUT is shielded and finishes. Running the same batch again
  writes only what is still missing and waits for installs still running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs

from wac_azure._azure.deadline import within
from wac_azure._azure.errors import HttpResponseError, translate
from wac_azure._azure.extension import new_salt
from wac_azure._azure.inventory import Inventory, gather_all, list_vms, pages
from wac_azure._azure.operations import wait_for_operation
from wac_azure._azure.pacing import pacing_priority
from wac_azure._azure.retry import retrying
from wac_azure._azure.rules import NetworkRulePlanner
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import service_tags_for
from wac_azure._core.access import AccessMode, PrivateAccess, check_access
from wac_azure._core.decide import (
    PlanBlockedError,
    VmDecision,
    blocking_checks,
    decide_enable,
    first_blocking_conflict,
)
from wac_azure._core.errors import (
    ConfigurationError,
    ExtensionInstallError,
    InvalidInputError,
    NoPublicIpError,
    NotFoundError,
    OperationTimeoutError,
    VmNotFoundError,
)
from wac_azure._core.extension import LOG_LOCATIONS, install_hints, url_for
from wac_azure._core.facts import DEFAULT_PORT as _DEFAULT_PORT
from wac_azure._core.facts import EXTENSION_NAME as _EXTENSION_NAME
from wac_azure._core.facts import (
    VmFacts,
    dig,
    facts_from_arm,
    id_of,
    mappings,
    normalize_location,
    parse_extensions,
    parse_os,
    parse_vm_sizes,
)
from wac_azure._core.facts import as_json as _json
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg import Direction
from wac_azure._core.nsg.evaluate import ServiceTags
from wac_azure._core.plan import ChangeAction, removal_plan
from wac_azure._core.progress import ProgressCallback, ProgressEvent, ProgressStage, emit
from wac_azure._core.validate import check_timeout
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome
from wac_azure._workflows.fleet.state import FleetVm
from wac_azure._workflows.fleet.watcher import RgWaiter

_log = logging.getLogger(__name__)

#: Extension writes in flight per subscription when ``concurrency`` is None (rule
#: writes have a quarter of it on top, and as much again for those installs wait for).
DEFAULT_CONCURRENCY = 16
#: Resource groups read at once per subscription, and over all subscriptions.
_RG_PARALLEL = 8
#: ARM codes that mean another writer took a rule's name or priority in between.
_RULE_CONFLICTS = frozenset({"SecurityRuleConflict", "SecurityRulePriorityConflict"})
_READ_PARALLEL = 16


# ============================================================================ helpers


def _targets(targets: Iterable[VmTarget | str]) -> list[VmTarget]:
    if isinstance(targets, (str, VmTarget)):
        raise InvalidInputError(
            "targets must be a list of VmTarget or resource IDs, not a single one; "
            "wrap it in a list"
        )
    out: dict[str, VmTarget] = {}
    for t in targets:
        parsed = t if isinstance(t, VmTarget) else VmTarget.parse(t)
        out.setdefault(parsed.resource_id.lower(), parsed)
    return list(out.values())


def _check_options(port: int, concurrency: int | None, timeout: float, poll: float) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInputError(f"port must be an integer 1-65535, got {port!r}")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ConfigurationError(
            f"concurrency must be a positive integer or None, got {concurrency!r}"
        )
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
    if not isinstance(poll, (int, float)) or poll < 0:
        raise ConfigurationError(f"poll_interval must be >= 0 seconds, got {poll!r}")


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


# ============================================================================ the run


_Then = Callable[[FleetVm], Awaitable[None]]
#: What a batch decided: rule changes to write, the VMs to go on with, what to do next.
_Decision = tuple[Sequence[Any], list[FleetVm], _Then]
_Decide = Callable[[list[FleetVm]], Awaitable[_Decision]]


def _skip_reason(d: VmDecision) -> str:
    """Why a VM that does not meet the requirements is skipped: the checks that stop it."""
    if d.stage == "requirements" and d.report is not None:
        problems = blocking_checks(d.report, purpose="enable")
        return "; ".join(f"{c.code}: {c.message}" for c in problems) or d.report.summary()
    return str(d.error).partition("\n")[0]


class _Run:
    """One fleet run over every subscription."""

    def __init__(
        self,
        session: AzureSession,
        targets: Sequence[VmTarget],
        *,
        operation: str,
        access: Any,
        port: int,
        progress: ProgressCallback | None,
        concurrency: int | None,
        poll_interval: float,
        remove_rules: bool = True,
    ) -> None:
        self.session = session
        self.operation = operation
        self.access = access
        self.port = port
        self.progress = progress
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.poll_interval = poll_interval
        self.remove_rules = remove_rules
        now = time.monotonic()
        self.vms = {t: FleetVm(t, now) for t in targets}
        self.total = len(targets)
        self.inv = Inventory(
            session,
            {(t.subscription_id.lower(), t.resource_group.lower()) for t in targets},
        )
        #: Resource groups being read at once, over every subscription (each read
        #: group's JSON is in memory until its facts are built).
        self.read_gate = asyncio.Semaphore(_READ_PARALLEL)
        #: Security-rule writes in flight (shielded from cancellation).
        self.inflight: set[asyncio.Future[Any]] = set()
        #: The shortest time an extension operation of this run is known to have
        #: needed at least (None until one has been seen to end).
        self.op_floor: float | None = None

    # -- events and outcomes ------------------------------------------------------

    def stage(self, vm: FleetVm, stage: ProgressStage, message: str | None = None) -> None:
        if vm.outcome is not None:
            return
        vm.stage = stage
        emit(self.progress, ProgressEvent(vm.target, stage, self.total, message))

    def finish(self, vm: FleetVm, status: OutcomeStatus, **kwargs: Any) -> None:
        """Record the VM's outcome and emit its terminal event (once)."""
        if vm.outcome is not None:
            return
        kwargs.setdefault("rules", tuple(vm.rules))
        kwargs.setdefault("changed", vm.changed)
        vm.outcome = VmOutcome(vm.target, status, elapsed=time.monotonic() - vm.started, **kwargs)
        stage = {
            OutcomeStatus.SKIPPED: ProgressStage.SKIPPED,
            OutcomeStatus.FAILED: ProgressStage.FAILED,
        }.get(status, ProgressStage.DONE)
        vm.stage = stage
        vm.facts = None  # free the snapshot: ten thousand of them add up
        vm.body = None
        detail = vm.outcome.reason or vm.outcome.url or None
        emit(self.progress, ProgressEvent(vm.target, stage, self.total, detail))

    def fail(self, vm: FleetVm, exc: BaseException, *, what: str | None = None) -> None:
        err = exc
        if isinstance(exc, HttpResponseError):
            err = translate(
                exc,
                what=what or f"working on {vm.target.name}",
                vm_id=vm.target.resource_id,
                resource_group=vm.target.resource_group,
            )
        _log.info("%s failed: %s", vm.target.name, err)
        self.finish(vm, OutcomeStatus.FAILED, message=_error_message(err), error=err)

    def result(self, started: float, before: tuple[int, int, int, int]) -> FleetResult:
        pacer = self.session.pacer
        outcomes: list[VmOutcome] = []
        for vm in self.vms.values():
            if vm.outcome is None:
                self.finish(vm, OutcomeStatus.FAILED, message="the run ended before this VM")
            assert vm.outcome is not None
            outcomes.append(vm.outcome)
        return FleetResult(
            operation=self.operation,
            outcomes=tuple(outcomes),
            elapsed=time.monotonic() - started,
            subscriptions=len({t.subscription_id.lower() for t in self.vms}),
            reads=pacer.requests("reads") - before[0],
            writes=pacer.requests("writes") - before[1],
            deletes=pacer.requests("deletes") - before[2],
            throttled=pacer.throttled - before[3],
        )


def _counters(session: AzureSession) -> tuple[int, int, int, int]:
    p = session.pacer
    return (p.requests("reads"), p.requests("writes"), p.requests("deletes"), p.throttled)


def _ext_state(ext: Any) -> str:
    """The extension's provisioning state, lower-cased ("" when unknown)."""
    if ext is None:
        return ""
    state = (ext.provisioning_state or "").lower()
    if state:
        return state
    for status in ext.statuses:
        code = (status.code or "").lower()
        if code.startswith("provisioningstate/"):
            return code.split("/", 2)[1]
    return ""


class _Subscription:
    """One subscription's part of a run: read, decide, write, wait."""

    def __init__(self, run: _Run, sub: str, vms: list[FleetVm]) -> None:
        self.run = run
        self.session = run.session
        self.sub = sub
        self.vms = vms
        self.limit = asyncio.Semaphore(run.concurrency)
        self.waiters: dict[str, RgWaiter] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        #: Rule writes in flight, apart from ``limit``: a rule write nothing waits for
        #: queues behind the extension writes in the pacer and must not hold their slots.
        self.rule_limit = asyncio.Semaphore(max(1, run.concurrency // 4))
        #: The same for the rule writes an install waits for, so that they never queue
        #: behind rule writes that wait in the pacer for every extension write to leave.
        self.urgent_rule_limit = asyncio.Semaphore(max(1, run.concurrency // 4))
        #: Per NSG (lower id): the batches waiting for their rule writes to that NSG.
        self.nsg_queues: dict[str, _NsgQueue] = {}

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a task that :meth:`drain` waits for."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- reading ------------------------------------------------------------------

    async def read_rg(self, vms: list[FleetVm]) -> None:
        """List the group's resources and build each VM's facts (failures are per VM)."""
        run = self.run
        for vm in vms:
            run.stage(vm, ProgressStage.READING)
        rg = vms[0].target.resource_group
        try:
            vm_docs, _ = await asyncio.gather(
                list_vms(self.session, self.sub, rg), run.inv.list("nic", self.sub, rg)
            )
        except Exception as exc:
            for vm in vms:
                run.fail(vm, self._translate(exc, f"listing the VMs of resource group {rg}", rg))
            return
        by_name = {str(d.get("name") or "").lower(): d for d in vm_docs}
        found: list[tuple[FleetVm, dict[str, Any]]] = []
        for vm in vms:
            doc = by_name.get(vm.target.name.lower())
            if doc is None:
                run.fail(
                    vm,
                    VmNotFoundError(
                        f"virtual machine {vm.target.resource_id} was not found (check its "
                        "name, resource group and subscription)",
                        status=404,
                        code="ResourceNotFound",
                        target=vm.target.resource_id,
                    ),
                )
            else:
                found.append((vm, doc))
        del by_name, vm_docs
        if not found:
            return
        try:
            await self._read_network([d for _, d in found])
        except Exception as exc:
            err = self._translate(exc, f"reading the network of resource group {rg}", rg)
            for vm, _ in found:
                run.fail(vm, err)
            return

        for vm, doc in found:
            try:
                location = normalize_location(doc.get("location"))
                sizes = await self.sizes(location) if location else None
                vm.facts = facts_from_arm(
                    vm.target,
                    doc,
                    resources=run.inv.docs,
                    sizes=sizes,
                    session_cloud=getattr(self.session, "cloud", None),
                    parsed_nsgs=run.inv.parsed_nsgs,
                )
            except Exception as exc:
                run.fail(vm, exc)
        # The batch's NIC JSON has served its purpose and parsed NSGs stand in for
        # their JSON: drop both (a ten-thousand-VM run would otherwise keep it all).
        docs = run.inv.docs
        for vm, _ in found:
            for nic in vm.facts.nics if vm.facts is not None else ():
                docs.pop(nic.id.lower(), None)
        for key in run.inv.parsed_nsgs:
            docs.pop(key, None)

    def _translate(self, exc: BaseException, what: str, rg: str) -> BaseException:
        if not isinstance(exc, HttpResponseError):
            return exc

        return translate(exc, what=what, resource_group=rg)

    async def _read_network(self, vm_docs: list[dict[str, Any]]) -> None:
        """Read what the VMs' NICs reference, in dependency order, by lists."""

        inv = self.run.inv
        nic_ids = [
            i
            for d in vm_docs
            for i in (
                id_of(r)
                for r in mappings(dig(d, "properties", "networkProfile", "networkInterfaces"))
            )
            if i
        ]
        await inv.ensure("nic", nic_ids)
        pip_ids: set[str] = set()
        subnet_ids: set[str] = set()
        nsg_ids: set[str] = set()
        for nid in nic_ids:
            nic = inv.docs.get(nid.lower())
            if nic is None:
                continue
            nsg = id_of(dig(nic, "properties", "networkSecurityGroup"))
            if nsg:
                nsg_ids.add(nsg)
            for cfg in mappings(dig(nic, "properties", "ipConfigurations")):
                pip = id_of(dig(cfg, "properties", "publicIPAddress"))
                if pip:
                    pip_ids.add(pip)
                sn = id_of(dig(cfg, "properties", "subnet"))
                if sn and "/subnets/" in sn.lower():
                    subnet_ids.add(sn)
        vnet_ids = {s[: s.lower().rfind("/subnets/")] for s in subnet_ids}
        await asyncio.gather(inv.ensure("pip", pip_ids), inv.ensure("vnet", vnet_ids))
        wanted = {s.lower() for s in subnet_ids}
        for vid in vnet_ids:
            vnet = inv.docs.get(vid.lower())
            for subnet in mappings(dig(vnet, "properties", "subnets")) if vnet else []:
                if str(subnet.get("id") or "").lower() in wanted:
                    nsg = id_of(dig(subnet, "properties", "networkSecurityGroup"))
                    if nsg:
                        nsg_ids.add(nsg)
        await inv.ensure("nsg", nsg_ids)

    async def sizes(self, location: str) -> Any:

        async def go() -> Any:
            try:
                pager = self.session.compute(self.sub).virtual_machine_sizes.list(location)
                return parse_vm_sizes([_json(item) async for item in pager])
            except HttpResponseError as exc:
                _log.info("VM sizes of %s could not be read: %s", location, exc)
                return None

        return await self.run.inv._shared(("sizes", self.sub.lower(), location), go)

    async def service_tags(self, facts: Sequence[VmFacts]) -> ServiceTags:
        """The service tags of the VMs' locations (one read per location and session)."""
        tags, _warnings = await service_tags_for(self.session, facts)
        return tags

    # -- waiting ------------------------------------------------------------------

    def waiter(
        self, vm: FleetVm, check: Callable[[FleetVm, dict[str, Any] | None], bool]
    ) -> RgWaiter:
        key = vm.target.resource_group.lower()
        w = self.waiters.get(key)
        if w is None:
            w = self.waiters[key] = RgWaiter(self, vm.target.resource_group, check)
        return w


@attrs.define(eq=False)
class _NsgJob:
    """One batch's planned changes to one NSG and the VMs they serve."""

    changes: list[Any]
    served: list[FleetVm]
    then: _Then


@attrs.define(eq=False)
class _NsgQueue:
    """The batches waiting to write one NSG (a write cycle takes them all)."""

    jobs: list[_NsgJob] = attrs.field(factory=list)
    running: bool = False


def _outbound(change: Any) -> bool:
    """Whether an install must wait for ``change``: anything but an inbound rule."""

    return bool(change.direction is not Direction.INBOUND)


# ============================================================================ enable / disable


class _Fleet(_Subscription):
    """The write side of one subscription's run: rules, extension writes, waits."""

    async def drain(self) -> None:
        """Wait until every spawned task (and what they spawn) is done."""
        try:
            while self.tasks:
                await asyncio.gather(*list(self.tasks))
        except BaseException:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
            raise

    async def run_batches(self, decide: _Decide) -> None:
        """Read each resource group and act on it as soon as it is read.

        A batch (one resource group's VMs) is decided, planned and written
        while other groups are still being read. Batches that share an NSG
        never wait for each other to plan: their rule writes to that NSG are
        queued, and whatever queued up while one write was in progress is
        re-planned together against the NSG as read under its lock, so a
        shared NSG still gets each rule once and a hub NSG shared by a hundred
        groups is not written a hundred times in a row.
        """
        groups: dict[str, list[FleetVm]] = {}
        for vm in self.vms:
            groups.setdefault(vm.target.resource_group.lower(), []).append(vm)
        gate = asyncio.Semaphore(_RG_PARALLEL)

        async def one(vms: list[FleetVm]) -> None:
            async with gate, self.run.read_gate:
                await self.read_rg(vms)
            batch = [vm for vm in vms if vm.facts is not None and vm.outcome is None]
            if batch:
                changes, eligible, then = await decide(batch)
                self.schedule_rules(changes, eligible, then)

        for vms in groups.values():
            self.spawn(one(vms))
        await self.drain()

    def served(self, nsg_key: str, vms: Sequence[FleetVm]) -> list[FleetVm]:
        return [vm for vm in vms if vm.facts is not None and nsg_key in vm.facts.nsgs]

    # -- rules ----------------------------------------------------------------------

    def schedule_rules(self, changes: Sequence[Any], vms: list[FleetVm], then: _Then) -> None:
        """Queue ``changes`` (serialized per NSG, NSGs in parallel) and start ``then(vm)``
        for each VM once the writes it must wait for are done (see :attr:`FleetVm.gating`).

        ``enable`` installs as soon as the VM's outbound path is in place: the install
        needs no inbound rule, so extension writes leave while inbound rules are still
        being written. A VM is reported done only when both are.
        """
        by_nsg: dict[str, list[Any]] = {}
        for change in changes:
            by_nsg.setdefault(change.nsg_id.lower(), []).append(change)
        gate_all = self.run.operation != "enable"
        gating = {
            key for key, group in by_nsg.items() if gate_all or any(_outbound(c) for c in group)
        }
        for vm in vms:
            keys = {key for key in by_nsg if vm.facts is not None and key in vm.facts.nsgs}
            vm.waiting_nsgs = len(keys)
            vm.gating = keys & gating
        for vm in vms:
            if vm.waiting_nsgs == 0:
                self._rules_done(vm)
            if not vm.gating:
                self.spawn(then(vm))
        for key, group in by_nsg.items():
            queue = self.nsg_queues.get(key)
            if queue is None:
                queue = self.nsg_queues[key] = _NsgQueue()
            queue.jobs.append(_NsgJob(group, self.served(key, vms), then))
            if not queue.running:
                queue.running = True
                self.spawn(self._drain_nsg(key, queue))

    def _rules_done(self, vm: FleetVm) -> None:
        """Every rule write on the VM's path is done: report it; finish the VM if its
        install already ended."""
        run = self.run
        vm.rules_done = True
        if vm.outcome is not None:
            return
        if run.operation == "enable":
            run.stage(
                vm,
                ProgressStage.RULES_APPLIED,
                f"{len(vm.rules)} rule(s) written" if vm.rules else None,
            )
            if vm.installing is not None:
                run.stage(vm, ProgressStage.INSTALLING, vm.installing)
            if vm.ext_done is not None:
                self._enabled(vm, vm.ext_done)
            else:
                self._slim(vm)
        elif run.remove_rules:
            done = f"{len(vm.rules)} rule(s) deleted" if vm.rules else None
            run.stage(vm, ProgressStage.RULES_REMOVED, done)

    def _nsg_written(self, vm: FleetVm, key: str, then: _Then) -> None:
        """The writes to NSG ``key`` on the VM's path are over (written or failed)."""
        vm.waiting_nsgs -= 1
        gated = key in vm.gating
        vm.gating.discard(key)
        if vm.outcome is not None:
            return
        if vm.waiting_nsgs == 0:
            self._rules_done(vm)
        if gated and not vm.gating:  # the last write it waited for: start it
            self.spawn(then(vm))

    async def _drain_nsg(self, key: str, queue: _NsgQueue) -> None:
        """Write the queued batches' changes to one NSG, one write cycle at a time.

        A cycle takes every batch queued so far: one batch's changes are written as
        planned (unless the NSG changed since it was listed); several batches are
        re-planned together against the NSG as read under its lock.
        """
        try:
            while queue.jobs:
                jobs, queue.jobs = queue.jobs, []
                served = [vm for job in jobs for vm in job.served]
                try:
                    await self._write_nsg(key, jobs[0].changes, served, merged=len(jobs) > 1)
                except asyncio.CancelledError:
                    raise  # the run is being cancelled: start nothing more
                except Exception as exc:  # a bug: fail the VMs it concerns, keep the rest
                    _log.exception("writing the rules of NSG %s failed", key)
                    for vm in served:
                        self.run.fail(vm, exc)
                for job in jobs:
                    for vm in job.served:
                        self._nsg_written(vm, key, job.then)
        finally:
            queue.running = False

    async def _write_nsg(
        self, key: str, changes: list[Any], served: list[FleetVm], *, merged: bool = False
    ) -> None:

        planner = NetworkRulePlanner(self.session)
        lock = planner.nsg_lock(changes[0].nsg_id)
        models = self.run.inv.parsed_nsgs
        async with lock:
            # The changes were planned from the resource group's lists, read a while
            # ago: read the NSG once more now (one GET per NSG written) and re-plan it
            # if its rules changed, so a rule someone else wrote meanwhile (the
            # portal's "PortForWAC", say) is never overwritten. Batches merged into one
            # write are always re-planned together.
            pending = await self._fresh_changes(planner, key, changes, served, force=merged)
            replanned = False
            while pending:
                change = pending.pop(0)
                # Every write is waited for, the last one too: ARM accepting a rule PUT
                # (201, "Updating") is not the rule in force; its operation can still
                # end Failed (OperationPreempted) and roll the rule back, and a VM must
                # not be reported enabled behind a rule that is not there.
                deleting = change.action is ChangeAction.DELETE
                # An install waiting for this NSG goes first; otherwise the write queues
                # behind the extension writes in the subscription's write bucket.
                urgent = any(key in vm.gating for vm in served if vm.outcome is None)
                try:
                    await self._write_rule(change, urgent=urgent)
                except Exception as exc:
                    if not replanned and getattr(exc, "code", None) in _RULE_CONFLICTS:
                        # another writer took the name or priority in between: re-plan once
                        replanned = True
                        _log.info("%s writing %s; re-planning", exc, change.rule_name)
                        pending = await self._fresh_changes(
                            planner, key, [change, *pending], served, force=True
                        )
                        continue
                    for vm in served:
                        self.run.fail(vm, exc, what=f"writing {change.rule_name}")
                    continue
                nsg = models.get(key)
                if nsg is not None and change.rule is not None:
                    name = change.rule.name.lower()
                    kept = tuple(r for r in nsg.rules if r.name.lower() != name)
                    extra = () if deleting else (change.rule,)
                    models[key] = attrs.evolve(nsg, rules=kept + extra)
                rid = f"{change.nsg_id}/securityRules/{change.rule_name}"
                for vm in served:
                    vm.rules.append(rid)
                    vm.changed = True

    async def _fresh_changes(
        self,
        planner: Any,
        key: str,
        changes: list[Any],
        served: list[FleetVm],
        *,
        force: bool = False,
    ) -> list[Any]:
        """GET the NSG (the caller holds its lock) and return the changes still to write:
        ``changes`` when the NSG is as planned, else a re-plan of the served VMs against it.

        The served VMs fail when the NSG cannot be read or the re-plan is blocked.
        """
        nsg_id = changes[0].nsg_id
        live = [vm for vm in served if vm.outcome is None and vm.facts is not None]
        planned = next(
            (vm.facts.nsgs[key] for vm in live if vm.facts and key in vm.facts.nsgs), None
        )
        try:
            now = await planner.read_nsg(nsg_id)
        except Exception as exc:
            for vm in served:
                self.run.fail(vm, exc, what=f"reading the NSG {changes[0].nsg_name}")
            return []
        if now is None:
            for vm in served:
                self.run.fail(
                    vm,
                    ConfigurationError(
                        f"the NSG {nsg_id} was deleted while the run was planning its rules; "
                        "run the batch again"
                    ),
                )
            return []
        same = planned is not None and not planner.nsg_changed(now, planned)
        if not live or (same and not force):
            return list(changes)
        _log.info("NSG %s changed since it was listed; re-planning it", changes[0].nsg_name)
        self.run.inv.parsed_nsgs[key] = now
        for vm in live:
            assert vm.facts is not None
            vm.facts = attrs.evolve(vm.facts, nsgs={**vm.facts.nsgs, key: now})
        facts = [vm.facts for vm in live if vm.facts is not None]
        enabling = self.run.operation == "enable"
        try:
            tags = await self.service_tags(facts) if enabling else None
            plan = planner.replan_nsg(
                facts,
                now,
                kind="enable" if enabling else "remove",
                access=self.run.access,
                port=self.run.port,
                service_tags=tags,
            )
        except Exception as exc:
            for vm in live:
                self.run.fail(vm, exc)
            return []
        for vm in live:
            assert vm.facts is not None
            conflict = first_blocking_conflict(plan, vm.facts)
            if conflict is not None:
                self.run.fail(
                    vm,
                    PlanBlockedError(
                        f"{vm.target.name}: the network plan is blocked: {conflict.reason}",
                        plan=plan,
                    ),
                )
        return list(plan.changes)

    async def _write_rule(self, change: Any, *, urgent: bool) -> None:
        """One security-rule PUT or DELETE, waited for until its operation ends; shielded
        so cancelling never cuts it in half.

        A write that is not ``urgent`` (no install waits for it) leaves the
        subscription's write bucket to the extension writes first (pacing priority 1).
        """

        if change.action is ChangeAction.CREATE_NSG:
            raise ConfigurationError("fleets do not create NSGs (create_nsg is not supported)")
        parts = [p for p in change.nsg_id.split("/") if p]
        sub, rg, nsg_name = parts[1], parts[3], parts[-1]
        client: Any = self.session.network(sub).security_rules
        name = change.rule_name or ""
        deleting = change.action is ChangeAction.DELETE

        # A rule-write slot is held for the request only, not while the operation
        # runs: rule operations must not starve the other rule writes.
        held = True

        def release(*_: object) -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def once() -> None:
            answer: list[Any] = []  # ARM's answer to the PUT (azure-core's response hook)
            try:
                with pacing_priority(0 if urgent else 1):
                    if deleting:
                        poller = await client.begin_delete(rg, nsg_name, name)
                    else:
                        poller = await client.begin_create_or_update(
                            rg,
                            nsg_name,
                            name,
                            change.body,
                            polling=False,
                            raw_response_hook=answer.append,
                        )
            finally:
                release()
            if deleting:
                await poller.result()
            else:
                headers = answer[-1].http_response.headers if answer else {}
                await wait_for_operation(self.session.network(sub), headers, self.session)

        verb = {ChangeAction.DELETE: "deleting", ChangeAction.UPDATE: "updating"}.get(
            change.action, "creating"
        )
        what = f"{verb} the security rule {name} in NSG {nsg_name}"
        slots = self.urgent_rule_limit if urgent else self.rule_limit
        await slots.acquire()  # cancelled here: nothing was sent
        task = asyncio.ensure_future(
            retrying(once, config=self.session.retry, sleep=self.session.sleep, what=what)
        )
        task.add_done_callback(release)
        self.run.inflight.add(task)
        task.add_done_callback(self.run.inflight.discard)
        try:
            await asyncio.shield(task)
        except HttpResponseError as exc:
            action = "Microsoft.Network/networkSecurityGroups/securityRules/" + (
                "delete" if deleting else "write"
            )
            raise translate(exc, what=what, action=action) from exc

    # -- enable ---------------------------------------------------------------------

    async def enable(self) -> None:
        await self.run_batches(self._decide_enable)

    async def _decide_enable(self, batch: list[FleetVm]) -> _Decision:
        run = self.run
        facts: list[VmFacts] = []
        for vm in batch:
            assert vm.facts is not None
            facts.append(vm.facts)
        tags, tag_warnings = await service_tags_for(self.session, facts)
        try:
            # The one decision a single enable() makes too (wac_azure._core.decide).
            decision = decide_enable(
                facts,
                access=run.access,
                port=run.port,
                service_tags=tags,
                new_salt=new_salt,
                warnings=tag_warnings,
            )
        except Exception as exc:
            for vm in batch:
                run.fail(vm, exc)
            return (), [], self._install
        eligible: list[FleetVm] = []
        for vm, d in zip(batch, decision.vms, strict=True):
            if d.error is None:
                vm.body = d.extension
                eligible.append(vm)
            elif d.skipped:
                run.finish(vm, OutcomeStatus.SKIPPED, message=_skip_reason(d), report=d.report)
            else:
                run.fail(vm, d.error)
        for vm, d in zip(batch, decision.vms, strict=True):
            if d.go:
                n = decision.changes_for(d)
                run.stage(
                    vm,
                    ProgressStage.PLANNED,
                    f"{n} rule change(s) on its NSGs" if n else "no change",
                )
        return decision.plan.changes, eligible, self._install

    async def _install(self, vm: FleetVm) -> None:
        if vm.outcome is not None:
            return
        facts = vm.facts
        assert facts is not None
        if vm.body is None:
            if _ext_state(facts.extension) == "succeeded":
                self._enabled(vm, facts.extension)
            else:  # an install still running (an earlier, interrupted run): wait for it
                self._installing(vm, "waiting for the running install")
                self.waiter(vm, self._check_enabled).add(vm)
            return
        await self._put_extension(vm)

    def _installing(self, vm: FleetVm, message: str) -> None:
        """ARM accepted the VM's extension write; the event waits for its rules, so
        the events keep their order (``rules applied`` before ``installing``)."""
        vm.installing = message
        if vm.rules_done:
            self.run.stage(vm, ProgressStage.INSTALLING, message)
            self._slim(vm)

    async def _put_extension(self, vm: FleetVm) -> None:

        run = self.run
        compute: Any = self.session.compute(vm.target.subscription_id)
        body = vm.body

        async def put() -> None:
            await compute.virtual_machine_extensions.begin_create_or_update(
                vm.target.resource_group, vm.target.name, _EXTENSION_NAME, body, polling=False
            )

        what = f"installing AdminCenter on {vm.target.name}"
        try:
            async with self.limit:
                if vm.outcome is not None:  # its rules failed while it queued: write nothing
                    return
                await retrying(put, config=self.session.retry, sleep=self.session.sleep, what=what)
        except Exception as exc:
            run.fail(vm, exc, what=what)
            return
        vm.changed = True
        self._installing(vm, f"port {run.port}")  # ARM accepted the PUT
        self.waiter(vm, self._check_enabled).add(vm)

    def _enabled(self, vm: FleetVm, ext: Any) -> None:
        if not vm.rules_done:  # installed before its inbound rules are in: finish with them
            vm.ext_done = ext
            return
        port = (ext.port if ext is not None else None) or self.run.port
        self.run.finish(vm, OutcomeStatus.ENABLED, port=port, url=self._url_of(vm, port))

    def _url_of(self, vm: FleetVm, port: int) -> str | None:

        if vm.facts is None:
            return vm.url if port == self.run.port else None
        via = self.run.access.via
        try:
            return url_for(vm.facts, port, via=via)
        except (NoPublicIpError, NotFoundError):
            return None

    def _slim(self, vm: FleetVm) -> None:
        """Its install is under way and its rules are in: of its facts only its URL is
        still needed (ten thousand snapshots held through minutes-long installs add up)."""
        if vm.outcome is None and vm.facts is not None and vm.rules_done and vm.installing:
            vm.url = self._url_of(vm, self.run.port)
            vm.facts = None

    def _check_enabled(self, vm: FleetVm, doc: dict[str, Any] | None) -> bool:

        if doc is None:
            self.run.fail(
                vm,
                VmNotFoundError(
                    f"virtual machine {vm.target.resource_id} disappeared while installing",
                    status=404,
                    target=vm.target.resource_id,
                ),
            )
            return True
        ext = next(
            (e for e in parse_extensions(doc) if e.name.lower() == _EXTENSION_NAME.lower()), None
        )
        if ext is None and vm.body is not None and vm.reputs < self.session.retry.attempts - 1:
            # The accepted PUT's operation ended Failed and ARM rolled the new extension back
            # (OperationPreempted, InternalExecutionError...): send it again, as retrying() does.
            vm.reputs += 1
            self.waiter(vm, self._check_enabled).pending.pop(vm.target.name.lower(), None)
            _log.info(
                "%s: AdminCenter vanished after an accepted PUT; sending it again", vm.target.name
            )
            self.spawn(self._put_extension(vm))
            return True
        if ext is None:
            self.run.fail(
                vm,
                ExtensionInstallError(
                    f"the AdminCenter extension is no longer on {vm.target.name} (removed while "
                    "it was being installed?); run the batch again to install it"
                ),
            )
            return True
        state = _ext_state(ext)
        if state == "succeeded":
            self._enabled(vm, ext)
            return True
        if state in ("failed", "canceled"):
            messages = tuple(
                s.message or s.display_status or s.code or ""
                for s in (*ext.substatuses, *ext.statuses)
                if (s.level or "").lower() == "error" or "fail" in (s.code or "").lower()
            ) or tuple(s.message or "" for s in ext.substatuses if s.message)
            messages = tuple(dict.fromkeys(m for m in messages if m))
            hints = install_hints(messages)
            self.run.fail(
                vm,
                ExtensionInstallError(
                    f"the AdminCenter extension on {vm.target.name} ended {state}: "
                    + ("; ".join(m for m in messages if m) or "no message"),
                    substatuses=messages,
                    hints=hints,
                    log_locations=LOG_LOCATIONS,
                ),
            )
            return True
        return False

    # -- disable --------------------------------------------------------------------

    async def disable(self) -> None:
        await self.run_batches(self._decide_disable)

    async def _decide_disable(self, batch: list[FleetVm]) -> _Decision:
        run = self.run
        changes: Sequence[Any] = ()
        if run.remove_rules:
            try:
                changes = removal_plan([vm.facts for vm in batch if vm.facts is not None]).changes
            except Exception as exc:
                for vm in batch:
                    run.fail(vm, exc)
                return (), [], self._uninstall
        for vm in batch:
            run.stage(vm, ProgressStage.REMOVING)
        return changes, batch, self._uninstall

    async def _uninstall(self, vm: FleetVm) -> None:
        run = self.run
        if vm.outcome is not None:
            return
        facts = vm.facts
        assert facts is not None
        ext = facts.extension
        if ext is None:
            run.finish(vm, OutcomeStatus.DISABLED)
            return
        if _ext_state(ext) != "deleting":
            await self._delete_extension(vm, ext.name)
            return
        self.waiter(vm, self._check_disabled).add(vm)

    async def _delete_extension(self, vm: FleetVm, name: str) -> None:

        run = self.run
        compute: Any = self.session.compute(vm.target.subscription_id)

        async def delete() -> None:
            await compute.virtual_machine_extensions.begin_delete(
                vm.target.resource_group, vm.target.name, name, polling=False
            )

        what = f"removing AdminCenter from {vm.target.name}"
        try:
            async with self.limit:
                await retrying(
                    delete, config=self.session.retry, sleep=self.session.sleep, what=what
                )
        except Exception as exc:
            if isinstance(exc, HttpResponseError) and getattr(exc, "status_code", None) == 404:
                run.finish(vm, OutcomeStatus.DISABLED)
                return
            run.fail(vm, exc, what=what)
            return
        vm.changed = True
        self.waiter(vm, self._check_disabled).add(vm)

    def _check_disabled(self, vm: FleetVm, doc: dict[str, Any] | None) -> bool:

        if doc is None:  # the VM is gone, and its extension with it
            self.run.finish(vm, OutcomeStatus.DISABLED)
            return True
        ext = next(
            (e for e in parse_extensions(doc) if e.name.lower() == _EXTENSION_NAME.lower()), None
        )
        if ext is None:
            self.run.finish(vm, OutcomeStatus.DISABLED)
            return True
        state = _ext_state(ext)
        if state in ("succeeded", "canceled", "failed"):
            # Settled and still there: the accepted DELETE's operation ended Failed (ARM
            # undid it, or the extension shows Failed, as one whose install failed does).
            # Send it again, as retrying() does, within the session's attempts.
            if vm.reputs < self.session.retry.attempts - 1:
                vm.reputs += 1
                self.waiter(vm, self._check_disabled).pending.pop(vm.target.name.lower(), None)
                self.spawn(self._delete_extension(vm, ext.name))
                return True
            self.run.fail(
                vm,
                ExtensionInstallError(
                    f"removing the AdminCenter extension from {vm.target.name} failed "
                    f"{vm.reputs + 1} times (it is {state}); see the extension's status in "
                    "the portal, then run the batch again"
                ),
            )
            return True
        return False


# ============================================================================ public API


async def _execute(
    run: _Run, work: Callable[[_Fleet], Awaitable[None]], timeout: float
) -> FleetResult:
    started = time.monotonic()
    before = _counters(run.session)
    subs: dict[str, list[FleetVm]] = {}
    for vm in run.vms.values():
        subs.setdefault(vm.target.subscription_id.lower(), []).append(vm)
    fleets = [_Fleet(run, sub, vms) for sub, vms in subs.items()]

    async def guarded(fleet: _Fleet) -> None:
        try:
            await work(fleet)
        except Exception as exc:  # a bug or an unexpected failure: keep the others going
            _log.exception("fleet run in subscription %s failed", fleet.sub)
            for vm in fleet.vms:
                if vm.outcome is None:
                    run.fail(vm, exc)

    main = asyncio.ensure_future(gather_all(guarded(f) for f in fleets))
    try:
        done, _ = await asyncio.wait({main}, timeout=timeout)
    except BaseException:
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        # Let the security-rule writes already sent finish: no half-written rule.
        await asyncio.gather(*list(run.inflight), return_exceptions=True)
        raise
    if main not in done:
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        await asyncio.gather(*list(run.inflight), return_exceptions=True)
        for vm in run.vms.values():
            if vm.outcome is None:
                run.fail(
                    vm,
                    OperationTimeoutError(
                        f"{vm.target.name}: the fleet run's timeout of {timeout:g}s passed at "
                        f"stage {vm.stage.value if vm.stage else 'queued'}; run it again to "
                        "finish (finished work is not redone)"
                    ),
                )
    elif main.exception() is not None:  # pragma: no cover - guarded() keeps this empty
        raise main.exception()  # type: ignore[misc]
    return run.result(started, before)


async def enable_many(
    session: AzureSession,
    targets: Iterable[VmTarget | str],
    *,
    access: AccessMode = PrivateAccess(),  # frozen: a safe default
    port: int = _DEFAULT_PORT,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 15.0,
) -> FleetResult:
    """Put Windows Admin Center on many VMs, at ARM's pace; one VM's failure never stops the rest.

    ``access`` is :class:`~wac_azure.PrivateAccess` (default) or
    :class:`~wac_azure.PublicAccess`, as for :func:`~wac_azure.enable`.
    ``concurrency`` bounds the extension writes in flight per subscription
    (default 16: the session's pacer sets the rate, and every request in
    flight holds a TLS connection of a few hundred kilobytes); rule writes
    have a quarter of it on top (and as much again for those installs wait
    for). ``progress`` is called with a
    :class:`~wac_azure.ProgressEvent` per stage and VM (see
    :class:`~wac_azure.TqdmProgress`). ``timeout`` (seconds) bounds the whole
    run: VMs not finished by then are *failed* with
    :class:`~wac_azure.OperationTimeoutError` and a re-run picks them up.
    ``poll_interval`` is the time between two lists of a resource group's VMs
    while installs run.

    A VM's install starts once its outbound path is in place; its inbound
    rules are written meanwhile (the install needs none), and it is reported
    done when both are in force. Extension writes go ahead of rule writes
    nothing waits for in the subscription's write bucket.

    Unlike :func:`~wac_azure.enable`, no Run Command confirms the port inside
    each VM (that would be one more write per VM): the port is the
    extension's setting. Returns a :class:`FleetResult`.
    """
    access = check_access(access, error=ConfigurationError)  # None: the old default
    _check_options(port, concurrency, timeout, poll_interval)
    run = _Run(
        session,
        _targets(targets),
        operation="enable",
        access=access,
        port=port,
        progress=progress,
        concurrency=concurrency,
        poll_interval=poll_interval,
    )
    return await _execute(run, lambda fleet: fleet.enable(), timeout)


async def disable_many(
    session: AzureSession,
    targets: Iterable[VmTarget | str],
    *,
    remove_rules: bool = True,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 15.0,
) -> FleetResult:
    """Take Windows Admin Center off many VMs: delete the extension and, with
    ``remove_rules`` (default), their addresses from the NSG rules ``Managed by
    wac_azure`` (as :meth:`~wac_azure.NetworkRulePlanner.remove` does: a rule is
    deleted only when no enabled VM is left in it, so other VMs behind a shared
    NSG keep their access). Options as for :func:`enable_many`.
    """
    _check_options(_DEFAULT_PORT, concurrency, timeout, poll_interval)
    run = _Run(
        session,
        _targets(targets),
        operation="disable",
        access=None,
        port=_DEFAULT_PORT,
        progress=progress,
        concurrency=concurrency,
        poll_interval=poll_interval,
        remove_rules=remove_rules,
    )
    return await _execute(run, lambda fleet: fleet.disable(), timeout)


async def discover(
    session: AzureSession,
    subscription_id: str,
    *,
    resource_group: str | None = None,
    windows_only: bool = True,
    timeout: float | None = None,
) -> list[VmTarget]:
    """The VMs of a subscription (or one resource group), Windows ones only by default.

    One list (following ``nextLink``), no per-VM read. The OS comes from the
    VM model (``osDisk.osType`` and the image reference); targets come back
    sorted by resource group and name. ``timeout`` (seconds) bounds the whole
    listing: past it, :class:`~wac_azure.OperationTimeoutError`.
    """
    if timeout is not None:
        limit = check_timeout(timeout)
        return await within(
            discover(
                session, subscription_id, resource_group=resource_group, windows_only=windows_only
            ),
            limit,
            f"listing the VMs of {resource_group or subscription_id}",
        )

    if not isinstance(subscription_id, str) or not subscription_id.strip():
        raise InvalidInputError("subscription_id must be a subscription GUID string")
    sub = subscription_id.strip()
    path = f"/subscriptions/{sub}"
    if resource_group:
        path += f"/resourceGroups/{resource_group}"
    path += "/providers/Microsoft.Compute/virtualMachines"
    out: list[VmTarget] = []
    try:
        async for doc in pages(session, "compute", sub, path, {}):
            rid = str(doc.get("id") or "")
            if not rid:
                continue
            if windows_only:
                os_type = str(
                    dig(doc, "properties", "storageProfile", "osDisk", "osType") or ""
                ).lower()
                family = parse_os(doc).family
                if not (os_type == "windows" or family == "windows"):
                    continue
            try:
                out.append(VmTarget.parse(rid))
            except InvalidInputError:
                _log.info("skipping a VM with an unexpected id: %s", rid)
    except HttpResponseError as exc:
        raise translate(
            exc,
            what=f"listing the VMs of {resource_group or subscription_id}",
            resource_group=resource_group,
            action="Microsoft.Compute/virtualMachines/read",
        ) from exc
    return sorted(out, key=lambda t: (t.resource_group.lower(), t.name.lower()))
