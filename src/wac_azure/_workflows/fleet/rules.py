"""A fleet's rule writes: per NSG, queued while a write is in flight, re-planned
against the NSG as read under its lock, written one rule per request and waited for."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import attrs

from wac_azure._azure.errors import HttpResponseError, translate
from wac_azure._azure.inventory import pages
from wac_azure._azure.pacing import pacing_priority
from wac_azure._azure.retry import retrying
from wac_azure._azure.rules import NetworkRulePlanner, settle_rule_write
from wac_azure._core.decide import PlanBlockedError, first_blocking_conflict
from wac_azure._core.errors import ConfigurationError, NetworkVerificationError
from wac_azure._core.facts import NicFacts, VmFacts
from wac_azure._core.nsg import NetworkSecurityGroup
from wac_azure._core.nsg.model import Access, Direction
from wac_azure._core.plan import ChangeAction, NetworkPlan, address_record, unmet_intent
from wac_azure._core.progress import ProgressStage
from wac_azure._workflows.fleet.run import RG_PARALLEL, Subscription
from wac_azure._workflows.fleet.state import Decide, FleetVm, NsgJob, NsgQueue, Then

#: ARM codes that mean another writer took a rule's name or priority in between.
_log = logging.getLogger(__name__)


#: Another writer got in between: a taken priority or name, or a 412 on our conditions.
RULE_CONFLICTS = frozenset(
    {"SecurityRuleConflict", "SecurityRulePriorityConflict", "PreconditionFailed"}
)


#: How old a resource group's NSG list may be and still stand for the read of an NSG
#: right before its write cycle (seconds), besides having started after the cycle's
#: changes were queued and the NSG's last write cycle ended (:class:`GroupNsgReads`).
FRESH_LIST_SECONDS = 5.0

#: Orders batches queued, write cycles ended and group lists started (one event loop:
#: strictly increasing).
_ORDER = itertools.count()


def _group_of(nsg_id: str) -> str:
    parts = [p for p in nsg_id.lower().split("/") if p]
    return "/".join(parts[:4])  # subscriptions/{sub}/resourcegroups/{rg}


@attrs.define(eq=False)
class GroupList:
    """One list of a resource group's NSGs (lower id → wire JSON), shared by the write
    cycles it is fresh for."""

    order: int
    started: float
    task: asyncio.Future[dict[str, dict[str, Any]]]


@attrs.define(eq=False)
class CycleRead:
    """A write cycle's claim on its NSG's fresh read (given up once, read or not): a list
    of the group counts for it when it started after ``since``."""

    group: str
    since: int
    open: bool = True


class GroupNsgReads:
    """The reads of NSGs right before their write cycles, shared per resource group.

    Each write cycle re-reads its NSG under the NSG's lock (a rule someone else wrote
    meanwhile is never overwritten). When cycles of several NSGs of one resource group
    need that read at once (a group's batch writes one rule to each of its VMs' NSGs),
    one list of the group's NSGs serves them all: ARM's list of a resource group's NSGs
    returns each NSG whole, rules and etags included (REC test_network_security_groups,
    "list by RG"; the same document as its GET), so one read stands for ~20 GETs.

    A cycle uses a list only if the list started after its changes were planned (the
    last batch queued for the NSG) and after this run's last write cycle to that NSG
    ended (the cycle holds the NSG's lock, so no write of ours to it is in flight), and
    not more than :data:`FRESH_LIST_SECONDS` ago: the list then shows the NSG at least
    as fresh as a GET right before the cycle would, the run's own writes included. A
    cycle alone in its group, one whose NSG the list does not hold, and one whose list
    failed read their NSG by a GET. Writes of others after the list are caught as after
    a GET: each write is conditional (``If-None-Match``/``If-Match`` on the etags read).
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        #: per group: the write cycles queued or started that have not read yet
        self.waiting: dict[str, int] = {}
        self.lists: dict[str, GroupList] = {}
        #: per NSG (lower id): when its last batch was queued, its last write cycle ended
        self.planned: dict[str, int] = {}
        self.written: dict[str, int] = {}

    def expect(self, nsg_id: str, *, cycle: bool) -> None:
        """A batch planned for ``nsg_id`` is queued (``cycle``: it starts a write cycle
        more, which will read the NSG first)."""
        self.planned[nsg_id.lower()] = next(_ORDER)
        if cycle:
            group = _group_of(nsg_id)
            self.waiting[group] = self.waiting.get(group, 0) + 1

    def claim(self, nsg_id: str) -> CycleRead:
        """The cycle holds the NSG's lock: which reads are fresh for it."""
        key = nsg_id.lower()
        since = max(self.planned.get(key, 0), self.written.get(key, 0))
        return CycleRead(_group_of(nsg_id), since)

    def ended(self, nsg_id: str) -> None:
        """A write cycle of ``nsg_id`` ended: lists started before now do not show it."""
        self.written[nsg_id.lower()] = next(_ORDER)

    def release(self, claim: CycleRead) -> None:
        """The cycle has its read (or will not read): it no longer waits."""
        if not claim.open:
            return
        claim.open = False
        left = self.waiting.get(claim.group, 0) - 1
        if left > 0:
            self.waiting[claim.group] = left
            return
        self.waiting.pop(claim.group, None)
        shared = self.lists.get(claim.group)
        if shared is not None and shared.task.done():
            del self.lists[claim.group]  # nobody waits: let the documents go

    async def read(
        self, planner: NetworkRulePlanner, nsg_id: str, claim: CycleRead
    ) -> NetworkSecurityGroup | None:
        """The NSG as it is now (``None`` when gone): from a shared list of its group when
        one is fresh for ``claim`` or others wait too, else by a GET."""
        group = claim.group
        shared = self.lists.get(group)
        fresh = (
            shared is not None
            and shared.order > claim.since
            and time.monotonic() - shared.started <= FRESH_LIST_SECONDS
        )
        if not fresh and self.waiting.get(group, 0) >= 2:
            shared = self.lists[group] = self._start(nsg_id)
            fresh = True
        self.release(claim)
        if fresh and shared is not None:
            try:
                docs = await asyncio.shield(shared.task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the GET below answers (or fails) for this NSG
                _log.info("listing the NSGs of %s failed (%s); reading %s", group, exc, nsg_id)
            else:
                doc = docs.get(nsg_id.lower())
                if not self.waiting.get(group) and self.lists.get(group) is shared:
                    del self.lists[group]  # nobody else waits: let the documents go
                if doc is not None:
                    return planner.nsg_as_read(nsg_id, doc)
        return await planner.read_nsg(nsg_id)

    def _start(self, nsg_id: str) -> GroupList:
        parts = [p for p in nsg_id.split("/") if p]
        sub = parts[1]
        path = f"/subscriptions/{sub}/resourceGroups/{parts[3]}"
        path += "/providers/Microsoft.Network/networkSecurityGroups"

        async def listing() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            async for doc in pages(self.session, "network", sub, path, {}):
                rid = doc.get("id")
                if isinstance(rid, str):
                    found[rid.lower()] = doc
            return found

        task = asyncio.ensure_future(listing())
        # a list nobody awaits any more (its cycles were cancelled) must not warn
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return GroupList(next(_ORDER), time.monotonic(), task)


#: Address records (NIC tag writes) a subscription writes at once; the rest wait in its
#: queue as plain data (see :meth:`RuleWriter._record`).
RECORD_PARALLEL = 4


def is_outbound(change: Any) -> bool:
    """Whether an install must wait for ``change``: anything but an inbound rule."""

    return bool(change.direction is not Direction.INBOUND)


class RuleWriter(Subscription):
    """The rule side of one subscription's run: batches read and decided per resource
    group, rule writes queued and coalesced per NSG, each waited for until in force."""

    #: The run is being cancelled: queued rule writes finish, nothing new starts.
    stopping: bool = False
    _nsg_reads: GroupNsgReads | None = None
    _records: collections.deque[tuple[NicFacts, tuple[str, ...], str | None]] | None = None
    #: Tasks writing address records (at most :data:`RECORD_PARALLEL`).
    record_writers: int = 0

    @property
    def records(self) -> collections.deque[tuple[NicFacts, tuple[str, ...], str | None]]:
        """Address records decided and not yet written: (NIC, addresses, its listed JSON)."""
        if self._records is None:
            self._records = collections.deque()
        return self._records

    @property
    def nsg_reads(self) -> GroupNsgReads:
        """The subscription's fresh NSG reads before write cycles, shared per group."""
        if self._nsg_reads is None:
            self._nsg_reads = GroupNsgReads(self.session)
        return self._nsg_reads

    def enabled(self, vm: FleetVm, ext: Any) -> None:
        """Hook: the VM's install ended (``ext`` its extension); finish it once its rules
        are in. The engine implements it."""
        raise NotImplementedError

    def slim(self, vm: FleetVm) -> None:
        """Hook: the VM's install is under way and its rules are in; let go of what it no
        longer needs. The engine implements it."""
        raise NotImplementedError

    async def drain(self) -> None:
        """Wait until every spawned task (and what they spawn) is done."""
        try:
            while self.tasks:
                await asyncio.gather(*list(self.tasks))
        except BaseException:
            self.stopping = True  # the NSG queues finish (see schedule_rules); nothing new
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
            raise

    async def run_batches(self, decide: Decide) -> None:
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
        gate = asyncio.Semaphore(RG_PARALLEL)

        async def one(vms: list[FleetVm]) -> None:
            await self.reserve(vms)  # the bounded read-ahead (run.py)
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

    def schedule_rules(self, changes: Sequence[Any], vms: list[FleetVm], then: Then) -> None:
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
            key for key, group in by_nsg.items() if gate_all or any(is_outbound(c) for c in group)
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
                queue = self.nsg_queues[key] = NsgQueue()
            # no batch waiting yet: a write cycle more, which will read its NSG first
            self.nsg_reads.expect(group[0].nsg_id, cycle=not queue.jobs)
            queue.jobs.append(NsgJob(group, self.served(key, vms), then))
            if not queue.running:
                queue.running = True
                # A cancelled run still writes each NSG's queue to its end (the engine
                # waits for run.inflight): a batch's changes, queued together on every
                # NSG they touch, are all written or none, never half.
                writer = asyncio.ensure_future(self._drain_nsg(key, queue))
                self.run.inflight.add(writer)
                writer.add_done_callback(self.run.inflight.discard)
                self.spawn(asyncio.shield(writer))

    def _rules_done(self, vm: FleetVm) -> None:
        """Every rule write on the VM's path is done: report it; finish the VM if its
        install already ended."""
        run = self.run
        vm.rules_done = True
        if vm.outcome is not None:
            return
        if run.operation == "enable" or run.remove_rules:
            self._record(vm)
        if run.operation == "enable":
            run.stage(
                vm,
                ProgressStage.RULES_APPLIED,
                f"{len(vm.rules)} rule(s) written" if vm.rules else None,
            )
            if vm.installing is not None:
                run.stage(vm, ProgressStage.INSTALLING, vm.installing)
            if vm.ext_done is not None:
                self.enabled(vm, vm.ext_done)
            else:
                self.slim(vm)
        elif run.remove_rules:
            done = f"{len(vm.rules)} rule(s) deleted" if vm.rules else None
            run.stage(vm, ProgressStage.RULES_REMOVED, done)

    def _record(self, vm: FleetVm) -> None:
        """Keep the VM's NIC tag saying which of its addresses our rules now name (see
        :meth:`NetworkRulePlanner.record_addresses`); a write only when it changed.

        Decided now, written later: the record joins the subscription's queue as plain
        data (the NIC, the addresses, the NIC's listed JSON text) and at most
        :data:`RECORD_PARALLEL` are written at once. These writes wait behind every
        other write in the bucket; sent at once, each would hold a whole request and its
        pipeline while it waits (thousands at ten thousand VMs: most of the run's memory).
        """
        facts = vm.facts
        text, vm.nic_doc = vm.nic_doc, None  # the NIC as listed (not needed after this)
        if facts is None:
            return
        models = self.run.inv.parsed_nsgs
        nsgs = [models.get(key) or nsg for key, nsg in facts.nsgs.items()]
        nic = facts.primary_nic
        wrote = bool(vm.rules)  # a VM found in place gets no write, not even this one
        wanted = address_record(facts, nsgs, wrote=wrote) if nic is not None else None
        if nic is None or wanted is None:
            return
        self.records.append((nic, wanted, text))
        while self.record_writers < RECORD_PARALLEL and self.records:
            self.record_writers += 1
            self.spawn(self._write_records())

    async def _write_records(self) -> None:
        """Write queued address records, one after another, until none is left."""
        planner = NetworkRulePlanner(self.session)
        try:
            while self.records:
                nic, wanted, text = self.records.popleft()
                doc = json.loads(text) if text is not None else None
                with pacing_priority(1):  # bookkeeping: after the writes a VM waits for
                    await planner.write_address_record(nic, wanted, nic_doc=doc, wait=False)
        finally:
            self.record_writers -= 1

    def _nsg_written(self, vm: FleetVm, key: str, then: Then) -> None:
        """The writes to NSG ``key`` on the VM's path are over (written or failed)."""
        vm.waiting_nsgs -= 1
        gated = key in vm.gating
        vm.gating.discard(key)
        if vm.outcome is not None:
            return
        if vm.waiting_nsgs == 0:
            self._rules_done(vm)
        if gated and not vm.gating and not self.stopping:  # the last write it waited for
            self.spawn(then(vm))

    async def _drain_nsg(self, key: str, queue: NsgQueue) -> None:
        """Write the queued batches' changes to one NSG, one write cycle at a time.

        A cycle takes every batch queued so far: one batch's changes are written as
        planned (unless the NSG changed since it was listed); several batches are
        re-planned together against the NSG as read under its lock.
        """
        try:
            while queue.jobs:
                jobs, queue.jobs = queue.jobs, []
                served = [vm for job in jobs for vm in job.served]
                claim: list[CycleRead] = []
                try:
                    await self._write_nsg(
                        key, jobs[0].changes, served, merged=len(jobs) > 1, claim=claim
                    )
                except asyncio.CancelledError:
                    raise  # the run is being cancelled: start nothing more
                except Exception as exc:  # a bug: fail the VMs it concerns, keep the rest
                    _log.exception("writing the rules of NSG %s failed", key)
                    for vm in served:
                        self.run.fail(vm, exc)
                finally:
                    reads = self.nsg_reads
                    nsg_id = jobs[0].changes[0].nsg_id
                    reads.ended(nsg_id)
                    reads.release(claim[0] if claim else reads.claim(nsg_id))  # read or not
                for job in jobs:
                    for vm in job.served:
                        self._nsg_written(vm, key, job.then)
        finally:
            queue.running = False

    async def _write_nsg(
        self,
        key: str,
        changes: list[Any],
        served: list[FleetVm],
        *,
        merged: bool = False,
        claim: list[CycleRead] | None = None,
    ) -> None:

        planner = NetworkRulePlanner(self.session)
        lock = planner.nsg_lock(changes[0].nsg_id)
        models = self.run.inv.parsed_nsgs
        async with lock:
            # The changes were planned from the resource group's lists, read a while
            # ago: read the NSG once more now and re-plan it if its rules changed, so a
            # rule someone else wrote meanwhile (the portal's "PortForWAC", say) is never
            # overwritten. The read is one list of the group's NSGs shared with the other
            # cycles of the group starting now, or a GET (GroupNsgReads). Batches merged
            # into one write are always re-planned together.
            read = self.nsg_reads.claim(changes[0].nsg_id)
            if claim is not None:
                claim.append(read)
            pending = await self._fresh_changes(
                planner, key, changes, served, force=merged, claim=read
            )
            replanned = False
            narrowed = False
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
                    await self._write_rule(
                        change, urgent=urgent, conditions=planner.write_conditions(change)
                    )
                except Exception as exc:
                    if not replanned and getattr(exc, "code", None) in RULE_CONFLICTS:
                        # another writer took the name or priority in between: re-plan once
                        replanned = True
                        _log.info("%s writing %s; re-planning", exc, change.rule_name)
                        pending = await self._fresh_changes(
                            planner, key, [change, *pending], served, force=True
                        )
                        continue
                    for vm in served:
                        self.run.fail(vm, exc, what=f"writing {change.rule_name}")
                    # Stop this NSG's queue here, as the single-VM apply does by raising:
                    # the changes after it may take reach away (make-before-break's
                    # "break"), which must never be written when the "make" failed.
                    if pending:
                        _log.warning(
                            "not writing %d more change(s) to NSG %s after %s failed: %s",
                            len(pending),
                            key,
                            change.rule_name,
                            ", ".join(c.rule_name for c in pending),
                        )
                    break
                nsg = models.get(key)
                if nsg is not None and change.rule is not None:
                    name = change.rule.name.lower()
                    kept = tuple(r for r in nsg.rules if r.name.lower() != name)
                    extra = () if deleting else (change.rule,)
                    models[key] = attrs.evolve(nsg, rules=kept + extra)
                narrowed = narrowed or change.narrows
                rid = f"{change.nsg_id}/securityRules/{change.rule_name}"
                for vm in served:
                    vm.rules.append(rid)
                    vm.changed = True
            if narrowed:
                await self._verify(planner, key, changes[0].nsg_id, served)

    async def _replan(self, planner: Any, facts: list[VmFacts], nsg: Any) -> NetworkPlan:
        """The plan of ``facts``' VMs on ``nsg`` as it is now, for this run's operation,
        access and port (the service tags read again when enabling)."""
        enabling = self.run.operation == "enable"
        tags = await self.service_tags(facts) if enabling else None
        plan: NetworkPlan = planner.replan_nsg(
            facts,
            nsg,
            kind="enable" if enabling else "remove",
            access=self.run.access,
            port=self.run.port,
            service_tags=tags,
        )
        return plan

    async def _verify(self, planner: Any, key: str, nsg_id: str, served: list[FleetVm]) -> None:
        """After a write that took reach away (make-before-break's "break"): read the NSG
        again and check it shows what was intended for the served VMs (planning them again
        finds nothing to write on it); fail them with NetworkVerificationError if not."""
        live = [vm for vm in served if vm.outcome is None and vm.facts is not None]
        if not live:
            return
        try:
            now = await planner.read_nsg(nsg_id)
        except Exception as exc:
            for vm in live:
                self.run.fail(vm, exc, what="reading the NSG back")
            return
        problems: tuple[str, ...]
        if now is None:
            problems = (f"the NSG {nsg_id} is gone",)
        else:
            self.run.inv.parsed_nsgs[key] = now
            facts = [vm.facts for vm in live if vm.facts is not None]
            fresh = await self._replan(planner, facts, now)
            # only what this NSG decides: the VMs' other NSGs are judged by their own queue
            mine = attrs.evolve(
                fresh,
                blocking=tuple(b for b in fresh.blocking if (b.nsg_id or "").lower() == key),
                checks=tuple(
                    c
                    for c in fresh.checks
                    if any(
                        st.nsg.lower() == key and st.access is Access.DENY for st in c.after.steps
                    )
                ),
            )
            problems = unmet_intent(mine)
        if problems:
            error = NetworkVerificationError(
                "the NSG rules were written, but a read afterwards does not show the intended "
                "flows (another writer may have changed them meanwhile); run again to "
                "converge:\n  " + "\n  ".join(problems),
                problems=problems,
            )
            for vm in live:
                self.run.fail(vm, error)

    async def _fresh_changes(
        self,
        planner: Any,
        key: str,
        changes: list[Any],
        served: list[FleetVm],
        *,
        force: bool = False,
        claim: CycleRead | None = None,
    ) -> list[Any]:
        """Read the NSG (the caller holds its lock) and return the changes still to write:
        ``changes`` when the NSG is as planned, else a re-plan of the served VMs against it.

        With ``claim`` (the cycle's first read) the read may be its group's shared list
        (:class:`GroupNsgReads`); without, a GET (after another writer got in between).
        The served VMs fail when the NSG cannot be read or the re-plan is blocked.
        """
        nsg_id = changes[0].nsg_id
        live = [vm for vm in served if vm.outcome is None and vm.facts is not None]
        planned = next(
            (vm.facts.nsgs[key] for vm in live if vm.facts and key in vm.facts.nsgs), None
        )
        try:
            if claim is not None:
                now = await self.nsg_reads.read(planner, nsg_id, claim)
            else:
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
        # a VM can have ended (and let its facts go) while the read was awaited
        live = [vm for vm in live if vm.outcome is None and vm.facts is not None]
        same = planned is not None and not planner.nsg_changed(now, planned)
        if not live or (same and not force):
            return list(changes)
        _log.info("NSG %s changed since it was listed; re-planning it", changes[0].nsg_name)
        self.run.inv.parsed_nsgs[key] = now
        for vm in live:
            assert vm.facts is not None
            vm.facts = attrs.evolve(vm.facts, nsgs={**vm.facts.nsgs, key: now})
        facts = [vm.facts for vm in live if vm.facts is not None]
        try:
            plan = await self._replan(planner, facts, now)
        except Exception as exc:
            for vm in live:
                self.run.fail(vm, exc)
            return []
        for vm in live:
            if vm.outcome is not None or vm.facts is None:
                continue  # it ended while the service tags were read
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

    async def _write_rule(
        self, change: Any, *, urgent: bool, conditions: dict[str, str] | None = None
    ) -> None:
        """One security-rule PUT or DELETE, waited for until its operation ends; shielded
        so cancelling never cuts it in half.

        A write that is not ``urgent`` (no install waits for it) leaves the
        subscription's write bucket to the extension writes first (pacing priority 1).
        ``conditions`` are the ``If-Match``/``If-None-Match`` headers to send
        (:meth:`NetworkRulePlanner.write_conditions`): a 412 means another writer
        changed the rule, and the caller re-plans instead of overwriting.
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
                    _log.info(
                        "%s security rule %s in NSG %s",
                        "deleting" if deleting else "writing",
                        name,
                        nsg_name,
                    )
                    if deleting:
                        await client.begin_delete(
                            rg,
                            nsg_name,
                            name,
                            polling=False,
                            raw_response_hook=answer.append,
                            headers=dict(conditions or {}),
                        )
                    else:
                        await client.begin_create_or_update(
                            rg,
                            nsg_name,
                            name,
                            change.body,
                            polling=False,
                            raw_response_hook=answer.append,
                            headers=dict(conditions or {}),
                        )
            finally:
                release()
            headers = answer[-1].http_response.headers if answer else {}
            # Written only when its operation succeeded AND a read shows it: a write
            # superseded by another one to the NSG is sent again (retrying()). The rule's
            # own GET answers both while its operation runs (settle_rule_write): one read
            # per write, where an operation poll and a GET of the rule took two.
            await settle_rule_write(
                self.session,
                headers,
                f"{change.nsg_id}/securityRules/{name}",
                None if deleting else change.body,
                what=what,
            )

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
