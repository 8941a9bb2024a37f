"""Fleets: :func:`enable_many`, :func:`disable_many` and :func:`discover`.

What bounds a fleet run is Azure Resource Manager's throttling (AZURE_FACTS
§6: per subscription, writes 200 + 10/s, reads 250 + 25/s) and the
extension's install time, not this machine. The run is shaped around that:

* **Reads: one GET per VM, the network per resource group.** Each VM is
  one GET with ``$expand=instanceView`` (a VM *list* may not expand it,
  AZURE_FACTS §7; power state, agent and OS name are only in the instance
  view); per resource group one list of network interfaces, virtual
  networks, NSGs and — only when a NIC has one — public IPs, each
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
  one: the run lists each subscription's extensions (or each group's, when
  that is fewer pages) through ARM's generic resources list
  (``$expand=provisioningState``); an install that list showed running and
  then ``Succeeded`` is settled from the list alone, any other settled or
  missing one by the extension's GET (see :class:`ExtensionWaiter`).
* **Pacing.** The session's :class:`~wac_azure.Pacer` keeps each
  subscription below ARM's buckets (from the
  ``x-ms-ratelimit-remaining-subscription-*`` headers) and below Compute's
  "Update VM" buckets per VM and subscription; subscriptions run in
  parallel, each at its own pace; 429s that still come are retried by
  azure-core and counted in the result (Network's "resource busy" 429s are
  not throttling: they hold back nothing else).
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
from typing import Any, Literal, overload

from wac_azure._azure.deadline import within
from wac_azure._azure.errors import HttpResponseError, translate
from wac_azure._azure.extension import new_salt
from wac_azure._azure.inventory import gather_all, pages
from wac_azure._azure.pacing import pacing_priority
from wac_azure._azure.retry import retrying
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import service_tags_for
from wac_azure._core.access import AccessMode, PrivateAccess, check_access
from wac_azure._core.decide import (
    VmDecision,
    blocking_checks,
    decide_enable,
)
from wac_azure._core.errors import (
    ConfigurationError,
    ExtensionInstallError,
    InvalidInputError,
    NoPublicIpError,
    NotFoundError,
    OperationTimeoutError,
)
from wac_azure._core.extension import LOG_LOCATIONS, install_hints, url_for
from wac_azure._core.facts import DEFAULT_PORT as _DEFAULT_PORT
from wac_azure._core.facts import EXTENSION_NAME as _EXTENSION_NAME
from wac_azure._core.facts import (
    VmFacts,
    dig,
    parse_extension_resource,
    parse_os,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.plan import removal_plan
from wac_azure._core.progress import ProgressCallback, ProgressStage, log_unknowns
from wac_azure._core.validate import check_count, check_flag, check_port, check_timeout
from wac_azure._workflows.fleet.dryrun import DryRun, FleetPlan
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus
from wac_azure._workflows.fleet.rules import RuleWriter
from wac_azure._workflows.fleet.run import Run, counters, ext_state
from wac_azure._workflows.fleet.shards import (
    SessionFactory,
    check_processes,
    run_sharded,
    shard,
)
from wac_azure._workflows.fleet.state import Decision, FleetVm
from wac_azure._workflows.locks import vm_locks
from wac_azure._workflows.tracing import traced_fleet

_log = logging.getLogger(__name__)


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
    check_port(port)
    if concurrency is not None:
        check_count(concurrency, "concurrency (or None)")
    check_timeout(timeout)
    check_timeout(poll, "poll_interval")  # 0 would list the VMs in a busy loop


# ============================================================================ the run


def _skip_reason(d: VmDecision) -> str:
    """Why a VM that does not meet the requirements is skipped: the checks that stop it."""
    if d.stage == "requirements" and d.report is not None:
        problems = blocking_checks(d.report, purpose="enable")
        return "; ".join(f"{c.code}: {c.message}" for c in problems) or d.report.summary()
    return str(d.error).partition("\n")[0]


# ============================================================================ enable / disable


class _Fleet(RuleWriter):
    """One subscription's run: ``enable`` and ``disable`` on top of the rule writer
    (extension writes and install watching)."""

    #: Groups of this subscription that started reading so far.
    _groups_read = 0

    async def read_rg(self, vms: list[FleetVm]) -> None:
        """Read a group's VMs at a read priority after the groups started before it.

        ARM's read bucket (25 a second after the burst) is the pace of reading: groups
        read side by side at one priority would all finish late together, and the write
        bucket would stay idle meanwhile. In the order they started, the first group is
        read (and its installs sent) within seconds; later ones follow one by one, ahead
        of the write bucket, which is the slower. Reads the run makes at the default
        priority (install watching, NSG re-reads) go before them.
        """
        self._groups_read += 1
        with pacing_priority(1 + self._groups_read):
            await super().read_rg(vms)

    # -- enable ---------------------------------------------------------------------

    async def enable(self) -> None:
        await self.run_batches(self._decide_enable)

    async def _decide_enable(self, batch: list[FleetVm]) -> Decision:
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
                log_unknowns(vm.target, d.report)
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
        for rule in decision.plan.unowned:
            _log.warning("%s", rule)
        return decision.plan.changes, eligible, self._install

    async def _install(self, vm: FleetVm) -> None:
        if vm.outcome is not None:
            return
        facts = vm.facts
        assert facts is not None
        if vm.body is None:
            if ext_state(facts.extension) == "succeeded":
                self.enabled(vm, facts.extension)
            else:  # an install still running (an earlier, interrupted run): wait for it
                self._installing(vm, "waiting for the running install")
                self.waiter(self._check_enabled).add(vm)
            return
        await self._put_extension(vm)

    def _installing(self, vm: FleetVm, message: str) -> None:
        """ARM accepted the VM's extension write; the event waits for its rules, so
        the events keep their order (``rules applied`` before ``installing``)."""
        vm.installing = message
        self.run.written(vm)  # its extension write is done: room for the next group's read
        if vm.rules_done:
            self.run.stage(vm, ProgressStage.INSTALLING, message)
            self.slim(vm)

    async def _put_extension(self, vm: FleetVm) -> None:

        run = self.run
        compute: Any = self.session.compute(vm.target.subscription_id)
        body = vm.body

        async def put() -> None:
            _log.info("writing extension AdminCenter on %s (PUT)", vm.target.name)
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
        self.waiter(self._check_enabled).add(vm)

    def enabled(self, vm: FleetVm, ext: Any) -> None:
        if not vm.rules_done:  # installed before its inbound rules are in: finish with them
            vm.ext_done = ext
            self.run.written(vm)
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

    def slim(self, vm: FleetVm) -> None:
        """Its install is under way and its rules are in: of its facts only its URL is
        still needed (ten thousand snapshots held through minutes-long installs add up)."""
        if vm.outcome is None and vm.facts is not None and vm.rules_done and vm.installing:
            vm.url = self._url_of(vm, self.run.port)
            self.run.drop_facts(vm)  # and it no longer counts against the read-ahead

    def _check_enabled(self, vm: FleetVm, doc: dict[str, Any] | None) -> bool:
        """Settle an install from the extension's own GET (``None``: it is not there)."""
        ext = parse_extension_resource(doc) if doc is not None else None
        if ext is None and vm.body is not None and vm.reputs < self.session.retry.attempts - 1:
            # The accepted PUT's operation ended Failed and ARM rolled the new extension back
            # (OperationPreempted, InternalExecutionError...): send it again, as retrying() does.
            # (A VM that is gone answers the PUT 404, and fails with VmNotFoundError.)
            vm.reputs += 1
            self.waiter(self._check_enabled).discard(vm)
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
                    "it was being installed, or the VM is gone?); run the batch again"
                ),
            )
            return True
        state = ext_state(ext)
        if state == "succeeded":
            self.enabled(vm, ext)
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

    async def _decide_disable(self, batch: list[FleetVm]) -> Decision:
        run = self.run
        changes: Sequence[Any] = ()
        if run.remove_rules:
            try:
                plan = removal_plan([vm.facts for vm in batch if vm.facts is not None])
                changes = plan.changes
                for rule in plan.unowned:
                    _log.warning("%s", rule)
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
        if ext_state(ext) != "deleting":
            await self._delete_extension(vm, ext.name)
            return
        self._removing(vm)
        self.waiter(self._check_disabled).add(vm)

    def _removing(self, vm: FleetVm) -> None:
        """Its removal is under way and its rule writes are over (they go first): nothing
        of its facts is needed while the removal is watched."""
        self.run.written(vm)
        if vm.outcome is None and vm.rules_done:
            self.run.drop_facts(vm)

    async def _delete_extension(self, vm: FleetVm, name: str) -> None:

        run = self.run
        compute: Any = self.session.compute(vm.target.subscription_id)

        async def delete() -> None:
            _log.info("deleting extension %s from %s", name, vm.target.name)
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
        self._removing(vm)
        self.waiter(self._check_disabled).add(vm)

    def _check_disabled(self, vm: FleetVm, doc: dict[str, Any] | None) -> bool:
        """Settle a removal from the extension's own GET (``None``: it, or its VM, is gone)."""
        if doc is None:
            self.run.finish(vm, OutcomeStatus.DISABLED)
            return True
        ext = parse_extension_resource(doc)
        state = ext_state(ext)
        if state in ("succeeded", "canceled", "failed"):
            # Settled and still there: the accepted DELETE's operation ended Failed (ARM
            # undid it, or the extension shows Failed, as one whose install failed does).
            # Send it again, as retrying() does, within the session's attempts.
            if vm.reputs < self.session.retry.attempts - 1:
                vm.reputs += 1
                self.waiter(self._check_disabled).discard(vm)
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
    run: Run, work: Callable[[_Fleet], Awaitable[None]], timeout: float
) -> FleetResult:
    started = time.monotonic()
    before = counters(run.session)
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

    async def locked() -> None:
        # one operation per VM in this process: an enable() of one of these VMs running
        # now finishes first (the fleet then reads what it wrote), one started during the
        # run waits for it (and then finds the VM done)
        async with vm_locks(vm.target for vm in run.vms.values()):
            await gather_all(guarded(f) for f in fleets)

    main = asyncio.ensure_future(locked())
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


async def _maybe_sharded(
    work: Callable[..., Awaitable[FleetResult]],
    session: AzureSession,
    targets: list[VmTarget],
    operation: str,
    processes: int | None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None,
    progress: ProgressCallback | None,
    timeout: float,
    kwargs: dict[str, Any],
) -> FleetResult | None:
    """The sharded run's result, or None when the run stays in this process (processes
    1, or a single subscription)."""
    n = check_processes(processes)
    if n == 1 or len(shard(targets, n)) < 2:
        return None
    factory = session_factory if session_factory is not None else SessionFactory.of(session)
    return await run_sharded(
        work,
        targets,
        operation=operation,
        processes=n,
        factory=factory,
        progress=progress,
        timeout=timeout,
        kwargs=kwargs,
    )


@overload
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
    dry_run: Literal[False] = False,
    allow_well_known_port: bool = False,
    processes: int | None = None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None = None,
) -> FleetResult: ...


@overload
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
    dry_run: Literal[True],
    allow_well_known_port: bool = False,
    processes: int | None = None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None = None,
) -> FleetPlan: ...


@overload
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
    dry_run: bool,
    allow_well_known_port: bool = False,
    processes: int | None = None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None = None,
) -> FleetResult: ...


@traced_fleet("enable_many")  # a span for the run, one per VM below it
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
    dry_run: bool = False,
    allow_well_known_port: bool = False,
    processes: int | None = None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None = None,
) -> FleetResult:
    """Put Windows Admin Center on many VMs, at ARM's pace; one VM's failure never stops the rest.

    ``access`` is :class:`~wac_azure.PrivateAccess` (default) or
    :class:`~wac_azure.PublicAccess`, as for :func:`~wac_azure.enable`.
    ``concurrency`` bounds the extension writes in flight per subscription.
    By default (``None``) it follows the measured latency: Little's law, the
    write bucket's refill rate times the round trip, doubled, at least 8
    (``session.pacer.subscription(sub).write_window()``), so that slow answers do
    not slow the run below ARM's pace; every request in flight holds a TLS
    connection of a few hundred kilobytes, and the session caps them all
    (``AzureSession(connection_limit=...)``). Rule writes have a quarter of it on
    top (and as much again for those installs wait for). ``progress`` is called with a
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
    extension's setting. Returns a :class:`FleetResult`. A well-known ``port``
    raises :class:`~wac_azure.ConfigurationError` unless ``allow_well_known_port=True``
    (as for :func:`~wac_azure.enable`).

    ``dry_run=True`` reads and decides exactly as a real run and writes nothing:
    it returns a :class:`~wac_azure.FleetPlan` whose :class:`~wac_azure.VmPlan`
    per VM says what a real run would write (rules, extension body). A dry run
    stays in this process (it only reads), whatever ``processes`` says.

    ``processes=N`` runs the subscriptions in up to N worker processes (whole
    subscriptions per process, balanced by VM count; one process per
    subscription at most), each with its own session built by
    ``session_factory`` (a :class:`~wac_azure.SessionFactory`, or any picklable
    callable taking the shard's subscription ids and returning an
    :class:`~wac_azure.AzureSession`; by default ``SessionFactory.of(session)``,
    which needs a credential that pickles). Progress events from every worker
    reach ``progress`` in this process, in order per VM; the workers' results
    are merged into one (outcomes in the order of ``targets``). A worker that
    fails as a whole fails its own VMs with :class:`~wac_azure.ShardError`; the
    others carry on. See docs/performance.md for when one process stops being
    enough.
    """
    access = check_access(access, error=ConfigurationError)  # None: the old default
    _check_options(port, concurrency, timeout, poll_interval)
    check_port(port, allow_well_known_port=allow_well_known_port)
    check_flag(dry_run, "dry_run")
    parsed = _targets(targets)
    check_processes(processes)
    sharded = (
        None
        if dry_run
        else await _maybe_sharded(
            enable_many,
            session,
            parsed,
            "enable",
            processes,
            session_factory,
            progress,
            timeout,
            {
                "access": access,
                "port": port,
                "concurrency": concurrency,
                "timeout": timeout,
                "poll_interval": poll_interval,
                "allow_well_known_port": allow_well_known_port,
            },
        )
    )
    if sharded is not None:
        return sharded
    run = Run(
        session,
        parsed,
        operation="enable",
        access=access,
        port=port,
        progress=progress,
        concurrency=concurrency,
        poll_interval=poll_interval,
    )
    if dry_run:  # reads and the decision only: see fleet/dryrun.py
        dry = DryRun(run)
        return dry.result(await _execute(run, dry, timeout))
    return await _execute(run, lambda fleet: fleet.enable(), timeout)


@traced_fleet("disable_many")
async def disable_many(
    session: AzureSession,
    targets: Iterable[VmTarget | str],
    *,
    remove_rules: bool = True,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 15.0,
    processes: int | None = None,
    session_factory: SessionFactory | Callable[[Sequence[str]], AzureSession] | None = None,
) -> FleetResult:
    """Take Windows Admin Center off many VMs: delete the extension and, with
    ``remove_rules`` (default), their addresses from the NSG rules ``Managed by
    wac_azure`` (as :meth:`~wac_azure.NetworkRulePlanner.remove` does: a rule is
    deleted only when no enabled VM is left in it, so other VMs behind a shared
    NSG keep their access). Options as for :func:`enable_many` (``processes`` and
    ``session_factory`` too).
    """
    _check_options(_DEFAULT_PORT, concurrency, timeout, poll_interval)
    check_flag(remove_rules, "remove_rules")
    parsed = _targets(targets)
    sharded = await _maybe_sharded(
        disable_many,
        session,
        parsed,
        "disable",
        processes,
        session_factory,
        progress,
        timeout,
        {
            "remove_rules": remove_rules,
            "concurrency": concurrency,
            "timeout": timeout,
            "poll_interval": poll_interval,
        },
    )
    if sharded is not None:
        return sharded
    run = Run(
        session,
        parsed,
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
