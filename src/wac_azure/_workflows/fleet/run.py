"""A fleet run and one subscription's part of it: events, outcomes, and the reads
(resource groups listed page by page, facts assembled from the lists)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from wac_azure._azure.errors import HttpResponseError, translate
from wac_azure._azure.inventory import Inventory, gather_all, get_vm, read_vm_sizes
from wac_azure._azure.pacing import WindowGate
from wac_azure._azure.reader import check_recorded_addresses
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import service_tags_for
from wac_azure._core.errors import VmNotFoundError
from wac_azure._core.facts import (
    VmFacts,
    dig,
    facts_from_arm,
    id_of,
    mappings,
    normalize_location,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg.evaluate import ServiceTags
from wac_azure._core.progress import (
    ProgressCallback,
    ProgressEvent,
    ProgressStage,
    emit,
    guarded,
)
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome
from wac_azure._workflows.fleet.state import FleetVm, NsgQueue, ReadAhead
from wac_azure._workflows.fleet.watcher import ExtensionWaiter

#: Extension writes in flight per subscription when ``concurrency`` is None (rule
#: writes have a quarter of it on top, and as much again for those installs wait for).
_log = logging.getLogger(__name__)


DEFAULT_CONCURRENCY = 16


#: Resource groups read at once per subscription, and over all subscriptions (each
#: group's VM documents are held until its facts are built: 8, not 16, took the
#: client's peak at N = 4,000 over ten subscriptions from 242 to 227 MB).
RG_PARALLEL = 8


READ_PARALLEL = 8

#: VM GETs in flight per resource group being read.
VM_GET_PARALLEL = 16


#: Reads a VM costs while its group is read (its GET, and its share of the group's
#: network lists; 1.1 to 1.2 measured, see docs/performance.md).
READS_PER_VM = 1.2


def read_ahead_bound(
    *, burst: int, write_rate: float, window: int, read_rate: float, group: int
) -> int:
    """VMs of a subscription that may be read but not yet written (their facts held).

    Reading must stay ahead of the write bucket, never so far that every VM's facts
    are held at once. What the writes need ready: the bucket's ``burst`` (it can let
    that many out at once), the ``window`` of extension writes in flight, and what the
    bucket lets out at ``write_rate`` while the next two groups are read at ARM's
    ``read_rate`` (``2 × group × READS_PER_VM / read_rate`` seconds). Never less than
    two groups, so that one is read while the one before it is written.

    >>> read_ahead_bound(burst=200, write_rate=10.0, window=16, read_rate=25.0, group=100)
    312
    """
    lead = 2 * group * READS_PER_VM / read_rate
    return max(2 * group, burst + window + math.ceil(write_rate * lead))


def error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


class Run:
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
        self.progress = guarded(progress)  # a failing callback is logged once per run
        #: Extension writes in flight per subscription (None: sized from the measured
        #: latency and the write bucket's refill, ``SubscriptionPacer.write_window``).
        self.concurrency = concurrency
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
        self.read_gate = asyncio.Semaphore(READ_PARALLEL)
        #: Security-rule writes in flight (shielded from cancellation).
        self.inflight: set[asyncio.Future[Any]] = set()
        #: Per subscription (lower id): how far its reading runs ahead of its writes
        #: (see :func:`read_ahead_bound`; :attr:`ReadAhead.peak` the most VMs whose
        #: facts it held at once).
        self.ahead: dict[str, ReadAhead] = {}
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
        self.drop_facts(vm)  # free the snapshot: ten thousand of them add up
        vm.body = None
        detail = vm.outcome.reason or vm.outcome.url or None
        emit(self.progress, ProgressEvent(vm.target, stage, self.total, detail))

    def written(self, vm: FleetVm) -> None:
        """Its extension write (or delete) is done: it no longer counts against its
        subscription's read-ahead (its facts stay until its rule writes are in too)."""
        if vm.ahead is not None:
            vm.ahead.release(vm)

    def drop_facts(self, vm: FleetVm) -> None:
        """Let go of the VM's facts (and of its place in the read-ahead, if it held one)."""
        vm.facts = None
        vm.nic_doc = None
        self.written(vm)

    def fail(self, vm: FleetVm, exc: BaseException, *, what: str | None = None) -> None:
        err = exc
        if isinstance(exc, HttpResponseError):
            err = translate(
                exc,
                what=what or f"working on {vm.target.name}",
                vm_id=vm.target.resource_id,
                resource_group=vm.target.resource_group,
            )
            err.__cause__ = exc  # as `raise ... from exc` would
        _log.info("%s failed: %s", vm.target.name, err)
        self.finish(vm, OutcomeStatus.FAILED, message=error_message(err), error=err)

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


def counters(session: AzureSession) -> tuple[int, int, int, int]:
    p = session.pacer
    return (p.requests("reads"), p.requests("writes"), p.requests("deletes"), p.throttled)


def ext_state(ext: Any) -> str:
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


class Subscription:
    """One subscription's part of a run: read, decide, write, wait."""

    def __init__(self, run: Run, sub: str, vms: list[FleetVm]) -> None:
        self.run = run
        self.session = run.session
        self.sub = sub
        self.vms = vms
        fixed = run.concurrency
        pacer = run.session.pacer.subscription(sub)
        window: Callable[[], int] = (lambda: fixed) if fixed else pacer.write_window
        self.limit = WindowGate(window)
        #: The install (or removal) watch: one per subscription (see watcher.py).
        self.watch: ExtensionWaiter | None = None
        self.tasks: set[asyncio.Future[Any]] = set()
        #: Rule writes in flight, apart from ``limit``: a rule write nothing waits for
        #: queues behind the extension writes in the pacer and must not hold their slots.
        self.rule_limit = WindowGate(lambda: max(1, window() // 4))
        #: The same for the rule writes an install waits for, so that they never queue
        #: behind rule writes that wait in the pacer for every extension write to leave.
        self.urgent_rule_limit = WindowGate(lambda: max(1, window() // 4))
        #: Per NSG (lower id): the batches waiting for their rule writes to that NSG.
        self.nsg_queues: dict[str, NsgQueue] = {}
        groups: dict[str, int] = {}
        for vm in vms:
            key = vm.target.resource_group.lower()
            groups[key] = groups.get(key, 0) + 1
        burst, write_rate = pacer.config.bucket("writes")
        _, read_rate = pacer.config.bucket("reads")
        scale = pacer.config.refill_scale
        self.ahead = run.ahead[sub.lower()] = ReadAhead(
            read_ahead_bound(
                burst=burst,
                write_rate=write_rate * scale,
                window=window(),
                read_rate=read_rate * scale,
                group=max(groups.values(), default=1),
            )
        )

    async def reserve(self, vms: list[FleetVm]) -> None:
        """Wait until the group's VMs fit in the subscription's read-ahead (a run that
        writes calls it before reading a group; a dry run, which writes nothing and
        decides once every group is read, does not)."""
        await self.ahead.reserve(vms)

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
        docs: dict[str, dict[str, Any] | None] = {}
        gate = asyncio.Semaphore(VM_GET_PARALLEL)

        async def read_vm(vm: FleetVm) -> None:
            # One GET per VM with its instance view (power state, agent, OS name, the
            # extension's statuses): a VM *list* may not expand it (AZURE_FACTS §7).
            async with gate:
                docs[vm.target.name.lower()] = await get_vm(
                    self.session, self.sub, rg, vm.target.name
                )

        try:
            await gather_all([run.inv.list("nic", self.sub, rg), *(read_vm(vm) for vm in vms)])
        except Exception as exc:
            for vm in vms:
                run.fail(vm, self._translate(exc, f"reading the VMs of resource group {rg}", rg))
            return
        found: list[tuple[FleetVm, dict[str, Any]]] = []
        for vm in vms:
            doc = docs.get(vm.target.name.lower())
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
        del docs
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
        await self._check_recorded_addresses([vm for vm, _ in found])
        # The batch's NIC JSON has served its purpose and parsed NSGs stand in for
        # their JSON: drop both (a ten-thousand-VM run would otherwise keep it all),
        # except each VM's primary NIC, which it keeps until its address record is
        # written (that PUT then needs no GET: docs/fleets.md).
        docs = run.inv.docs
        for vm, _ in found:
            primary = vm.facts.primary_nic if vm.facts is not None else None
            for nic in vm.facts.nics if vm.facts is not None else ():
                doc = docs.pop(nic.id.lower(), None)
                if doc is not None and primary is not None and nic.id.lower() == primary.id.lower():
                    vm.nic_doc = json.dumps(doc, separators=(",", ":"))
        for key in run.inv.parsed_nsgs:
            docs.pop(key, None)

    async def _check_recorded_addresses(self, vms: list[FleetVm]) -> None:
        """Ask Network whether another NIC holds an address a VM's rules were recorded
        naming that the VM has given up (one read per such address, none if there is
        none): such an address is then kept in the rules, not dropped as stale."""
        ready = [(vm, vm.facts) for vm in vms if vm.facts is not None]
        checked = await check_recorded_addresses(self.session, [f for _, f in ready])
        for (vm, _), facts in zip(ready, checked, strict=True):
            vm.facts = facts

    def _translate(self, exc: BaseException, what: str, rg: str) -> BaseException:
        if not isinstance(exc, HttpResponseError):
            return exc

        err = translate(exc, what=what, resource_group=rg)
        err.__cause__ = exc  # as `raise ... from exc` would
        return err

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
                return await read_vm_sizes(self.session, self.sub, location)
            except HttpResponseError as exc:
                _log.info("VM sizes of %s could not be read: %s", location, exc)
                return None

        return await self.run.inv.once(("sizes", self.sub.lower(), location), go)

    async def service_tags(self, facts: Sequence[VmFacts]) -> ServiceTags:
        """The service tags of the VMs' locations (one read per location and session)."""
        tags, _warnings = await service_tags_for(self.session, facts)
        return tags

    # -- waiting ------------------------------------------------------------------

    def waiter(self, check: Callable[[FleetVm, dict[str, Any] | None], bool]) -> ExtensionWaiter:
        """The subscription's watch (made on first use; a run enables or disables, so
        one ``check`` serves it)."""
        if self.watch is None:
            self.watch = ExtensionWaiter(self, check)
        return self.watch
