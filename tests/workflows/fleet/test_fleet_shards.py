"""Fleets past one process: subscription shards in worker processes, one progress stream,
merged results, a failing shard isolated (against the emulator over HTTPS: worker
processes cannot share an in-process emulator)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

import pytest

from wac_azure import (
    AzureSession,
    ConfigurationError,
    FleetResult,
    InvalidInputError,
    OutcomeStatus,
    ProgressEvent,
    ProgressStage,
    SessionFactory,
    ShardError,
    VmOutcome,
    VmTarget,
    enable_many,
)
from wac_azure._core.access import PrivateAccess
from wac_azure._workflows.fleet.shards import shard
from wac_azure.testing import ArmEmulator, StaticTokenCredential

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
SUBS = [f"00000000-0000-0000-0000-00000000001{i}" for i in range(3)]
EXPECTED = [
    ProgressStage.READING,
    ProgressStage.PLANNED,
    ProgressStage.RULES_APPLIED,
    ProgressStage.INSTALLING,
    ProgressStage.DONE,
]


def _world() -> tuple[ArmEmulator, list[VmTarget]]:
    emu = ArmEmulator(seed=0)
    targets = []
    # interleave subscriptions: the merged result must follow this order
    for i in range(4):
        for sub in SUBS:
            targets.append(emu.add_windows_vm(f"vm{i}", subscription_id=sub, nsg="subnet"))
    return emu, targets


class FailingFor:
    """A session factory (picklable: module level) whose worker cannot get a credential
    for one subscription, as a worker on a machine without that tenant's secret."""

    def __init__(self, inner: SessionFactory, bad: str) -> None:
        self.inner = inner
        self.bad = bad

    def __call__(self, subscriptions: Sequence[str]) -> AzureSession:
        if self.bad in subscriptions:
            raise PermissionError(f"no credential for subscription {self.bad} on this worker")
        return self.inner(subscriptions)


# -- the merge format ----------------------------------------------------------------------


def _outcome(sub: str, name: str, status: OutcomeStatus, message: str = "") -> VmOutcome:
    return VmOutcome(
        VmTarget.from_parts(sub, "rg", name),
        status,
        changed=True,
        port=6516 if status is OutcomeStatus.ENABLED else None,
        url="https://10.0.0.4:6516" if status is OutcomeStatus.ENABLED else None,
        rules=("/subscriptions/x/rule",),
        message=message,
        elapsed=1.5,
    )


def test_to_dict_and_from_dict_round_trip() -> None:
    result = FleetResult(
        "enable",
        (
            _outcome(SUBS[0], "a", OutcomeStatus.ENABLED),
            _outcome(SUBS[0], "b", OutcomeStatus.FAILED, "a: it broke\nmore"),
        ),
        elapsed=12.5,
        subscriptions=1,
        reads=40,
        writes=3,
        deletes=0,
        throttled=2,
    )
    again = FleetResult.from_dict(result.to_dict())
    assert again == result
    assert again.failed[0].reason == "a: it broke"
    with pytest.raises(InvalidInputError, match="operation"):
        FleetResult.from_dict({"outcomes": []})
    with pytest.raises(InvalidInputError, match="status"):
        VmOutcome.from_dict({"target": str(result.outcomes[0].target), "status": "bogus"})


def test_merge_keeps_the_run_order_and_adds_the_counts() -> None:
    a = FleetResult("enable", (_outcome(SUBS[0], "a", OutcomeStatus.ENABLED),), 5.0, 1, 10, 2)
    b = FleetResult(
        "enable",
        (
            _outcome(SUBS[1], "b", OutcomeStatus.SKIPPED),
            _outcome(SUBS[1], "c", OutcomeStatus.ENABLED),
        ),
        7.0,
        1,
        20,
        3,
        0,
        1,
    )
    order = [b.outcomes[1].target, a.outcomes[0].target, b.outcomes[0].target]
    merged = FleetResult.merge([a, b], order=order)
    assert [o.target for o in merged.outcomes] == order
    assert (merged.reads, merged.writes, merged.throttled, merged.subscriptions) == (30, 5, 1, 2)
    assert merged.elapsed == 7.0
    with pytest.raises(InvalidInputError, match="two shards"):
        FleetResult.merge([a, a])
    with pytest.raises(InvalidInputError, match="operations"):
        FleetResult.merge([a, FleetResult("disable", ())])


def test_shards_are_whole_subscriptions_balanced_by_vms() -> None:
    targets = [VmTarget.from_parts(SUBS[0], "rg", f"a{i}") for i in range(6)]
    targets += [VmTarget.from_parts(SUBS[1], "rg", f"b{i}") for i in range(3)]
    targets += [VmTarget.from_parts(SUBS[2], "rg", f"c{i}") for i in range(3)]
    parts = shard(targets, 2)
    assert sorted(len(p) for p in parts) == [6, 6]
    for p in parts:
        assert len({t.subscription_id for t in p}) in (1, 2)
    assert len(shard(targets, 8)) == 3  # never more shards than subscriptions
    assert shard(targets, 1) == [targets]


# -- worker processes against the HTTPS emulator -------------------------------------------


async def test_shards_run_in_worker_processes_with_one_progress_stream() -> None:
    emu, targets = _world()
    events: list[ProgressEvent] = []
    threads: set[int] = set()

    def progress(event: ProgressEvent) -> None:
        threads.add(threading.get_ident())
        events.append(event)

    async with emu.serve() as srv, srv.session() as session:
        result = await enable_many(
            session, targets, access=ONPREM, progress=progress, processes=3, poll_interval=0.2
        )
    assert result.ok, str(result)
    assert [o.target for o in result.outcomes] == targets  # merged in the order given
    assert all(o.status is OutcomeStatus.ENABLED and o.url for o in result.outcomes)
    assert result.subscriptions == 3
    # the workers' requests are counted: every VM read and written once at least
    assert result.reads >= len(targets)
    assert result.writes >= len(targets)
    # every request came from a worker: the parent's own session sent none
    assert session.pacer.requests() == 0
    # one stream, delivered on the caller's thread, in order per VM, totals of the run
    assert threads == {threading.get_ident()}
    per_vm: dict[str, list[ProgressStage]] = collections.defaultdict(list)
    for e in events:
        assert e.total == len(targets)
        per_vm[e.target.resource_id].append(e.stage)
    assert set(per_vm) == {t.resource_id for t in targets}
    for stages in per_vm.values():
        assert stages == EXPECTED


async def test_a_failing_shard_fails_its_own_vms_only() -> None:
    emu, targets = _world()
    events: list[ProgressEvent] = []
    async with emu.serve() as srv, srv.session() as session:
        factory = FailingFor(SessionFactory.of(session), SUBS[1])
        result = await enable_many(
            session,
            targets,
            access=ONPREM,
            progress=events.append,
            processes=3,
            session_factory=factory,
            poll_interval=0.2,
        )
    bad = [o for o in result.outcomes if o.target.subscription_id == SUBS[1]]
    good = [o for o in result.outcomes if o.target.subscription_id != SUBS[1]]
    assert len(bad) == 4
    assert all(o.status is OutcomeStatus.ENABLED for o in good)
    for o in bad:
        assert o.status is OutcomeStatus.FAILED
        assert isinstance(o.error, ShardError)
        assert f"no credential for subscription {SUBS[1]}" in o.message
        assert isinstance(o.error.__cause__, PermissionError)
    # each VM of the failed shard gets its terminal event, once
    terminal = collections.Counter(e.target for e in events if e.stage.terminal)
    assert all(n == 1 for n in terminal.values())
    assert {t for t, _ in terminal.items()} == set(targets)
    # nothing was written in the failed shard's subscription
    assert not [r for r in emu.writes() if r.subscription_id == SUBS[1]]


async def test_processes_needs_a_session_that_can_cross_processes() -> None:
    emu, targets = _world()
    async with emu.session() as session:  # an in-process transport: cannot cross
        with pytest.raises(ConfigurationError, match="transport"):
            await enable_many(session, targets, access=ONPREM, processes=2)
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ConfigurationError, match="processes"):
                await enable_many(session, targets, access=ONPREM, processes=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="pickle"):
            await enable_many(
                session,
                targets,
                access=ONPREM,
                processes=2,
                session_factory=lambda subs: AzureSession(StaticTokenCredential("t")),
            )


async def test_a_worker_that_cannot_start_fails_its_shard_without_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that may not start processes (a daemonic one) raises on submit: that
    shard's VMs fail with the cause, the others run, and the run ends."""
    import concurrent.futures

    from wac_azure._workflows.fleet import shards as shards_module

    real = concurrent.futures.ProcessPoolExecutor
    made: list[int] = []

    class SecondCannotStart(real):  # type: ignore[misc,valid-type]
        def submit(self, *args: object, **kwargs: object) -> concurrent.futures.Future[object]:
            made.append(1)
            if len(made) == 2:
                raise AssertionError("daemonic processes are not allowed to have children")
            return super().submit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shards_module.concurrent.futures, "ProcessPoolExecutor", SecondCannotStart)
    emu, targets = _world()
    async with emu.serve() as srv, srv.session() as session:
        result = await enable_many(session, targets, access=ONPREM, processes=3, poll_interval=0.2)
    failed = result.failed
    assert len(failed) == 4
    assert len({o.target.subscription_id for o in failed}) == 1
    assert all("daemonic processes" in o.message for o in failed)
    assert all(isinstance(o.error, ShardError) for o in failed)
    assert len(result.enabled) == 8
