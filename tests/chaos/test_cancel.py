"""Cancel ``enable_many`` / ``disable_many`` at seeded random points, then re-run and audit.

The cancel point is "after the k-th request reaches the emulator" (a wrapper around
``emu.handle``), k drawn from the length of an uncancelled run of the same world, with
10 % of requests faulted as well. Right after the cancellation the audit finds no
half-written rule, no duplicate, no priority clash and every pre-existing rule intact;
after a re-run every VM has converged. ``WAC_AZURE_CANCEL_SEEDS`` sets how many seeds run
(default 5 per operation).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from wac_azure import (
    AzureSession,
    FleetResult,
    OutcomeStatus,
    RetryConfig,
    VmTarget,
    disable_many,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator

from ._flows import all_flows, half_written, opened_beyond, path
from ._world import ONPREM, State, World, audit, build_world, read_state, snapshot

pytestmark = pytest.mark.chaos

SEEDS = range(1, 1 + int(os.environ.get("WAC_AZURE_CANCEL_SEEDS", "5")))
N = 12
RATE = 0.1
FAST_RETRY = RetryConfig(attempts=8, initial=0.01, maximum=0.05, jitter=0.0, deadline=120)


class CancelAfter:
    """Cancels ``task`` once the emulator has received ``k`` requests.

    By default the cancellation is scheduled for the loop's next step; ``now=True``
    cancels while the request is being answered (the task sees it at its next await,
    or ends cancelled if it finishes first).
    """

    def __init__(self, emu: ArmEmulator, k: int, *, now: bool = False) -> None:
        self.emu = emu
        self.k = k
        self.seen = 0
        self.task: asyncio.Future[Any] | None = None
        self.fired = False
        #: the cancellation reached the task while it ran (``task.cancel()`` said True)
        self.requested = False
        inner = emu.handle

        def cancel() -> None:
            if self.task is not None:
                self.requested = self.task.cancel()

        async def handle(req: Any) -> Any:
            self.seen += 1
            if self.seen == self.k and self.task is not None and not self.task.done():
                self.fired = True
                if now:
                    cancel()
                else:
                    asyncio.get_running_loop().call_soon(cancel)
            return await inner(req)

        emu.handle = handle  # type: ignore[method-assign]

    def remove(self) -> None:
        del self.emu.handle


def _world(seed: int) -> tuple[ArmEmulator, World]:
    emu = ArmEmulator(seed=seed)
    return emu, build_world(emu, N, seed=seed, groups=2)


async def _run(
    emu: ArmEmulator, op: Callable[..., Awaitable[FleetResult]], world: World, **kw: Any
) -> FleetResult:
    async with emu.session(retry=FAST_RETRY) as session:
        return await op(session, world.targets, poll_interval=0.05, **kw)


async def _length_of_uncancelled(seed: int, enable_first: bool, op: Any, **kw: Any) -> int:
    emu, world = _world(seed)
    if enable_first:
        await _run(emu, enable_many, world, access=ONPREM)
    emu.faults.add_random(RATE)
    start = len(emu.requests)
    await _run(emu, op, world, **kw)
    return len(emu.requests) - start


def _assert_no_damage(world: World, res: Any) -> None:
    damage = {
        k: v
        for k, v in res.problems().items()
        if k in ("rules_lost", "duplicates", "priority_clashes", "wide_open", "broken_managed")
    }
    assert not damage, json.dumps(damage, indent=1)


async def _cancelled(
    emu: ArmEmulator, world: World, op: Any, k: int, **kw: Any
) -> tuple[bool, Any]:
    cancel = CancelAfter(emu, k)
    try:
        async with emu.session(retry=FAST_RETRY) as session:
            cancel.task = asyncio.ensure_future(
                op(session, world.targets, poll_interval=0.05, **kw)
            )
            try:
                await cancel.task
                cancelled = False
            except asyncio.CancelledError:
                cancelled = True
            emu.faults.enabled = False
            state = await read_state(session, world)
            emu.faults.enabled = True
    finally:
        cancel.remove()
    assert cancel.fired
    return cancelled, state


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancel_enable_many_then_rerun(seed: int) -> None:
    total = await _length_of_uncancelled(seed, False, enable_many, access=ONPREM)
    k = random.Random(seed).randrange(1, total)
    emu, world = _world(seed)
    async with emu.session() as session:
        await snapshot(session, world)
    emu.faults.add_random(RATE)

    cancelled, state = await _cancelled(emu, world, enable_many, k, access=ONPREM)
    assert cancelled, (k, total)
    _assert_no_damage(world, audit(world, state, enabled=()))

    again = await _run(emu, enable_many, world, access=ONPREM)
    enabled = [o.target.name for o in again.outcomes if o.status is OutcomeStatus.ENABLED]
    assert sorted(set(world.doomed) | set(enabled)) == sorted(t.name for t in world.targets), str(
        again
    )
    emu.faults.enabled = False
    async with emu.session() as session:
        state = await read_state(session, world)
    res = audit(world, state, enabled=enabled)
    assert not res.problems(), json.dumps(res.problems(), indent=1)


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancel_disable_many_then_rerun(seed: int) -> None:
    total = await _length_of_uncancelled(seed, True, disable_many)
    k = random.Random(seed).randrange(1, total)
    emu, world = _world(seed)
    async with emu.session() as session:
        await snapshot(session, world)
    first = await _run(emu, enable_many, world, access=ONPREM)
    assert len(first.enabled) == N - len(world.doomed), str(first)
    emu.faults.add_random(RATE)

    cancelled, state = await _cancelled(emu, world, disable_many, k)
    assert cancelled, (k, total)
    _assert_no_damage(world, audit(world, state, enabled=()))

    again = await _run(emu, disable_many, world)
    assert len(again.disabled) == N, str(again)
    emu.faults.enabled = False
    async with emu.session() as session:
        state = await read_state(session, world)
    names = [t.name for t in world.targets]
    res = audit(world, state, enabled=(), disabled=names)
    assert not res.problems(), json.dumps(res.problems(), indent=1)
    assert res.managed_rules == 0  # every rule the enable wrote is gone, nothing else is


# --------------------------------------------------------------------------- every point
#
# The seeded tests above cancel at one random point each. These cancel at every point: after
# the k-th request reaches the emulator for every k, and after the k-th step of the event
# loop for every k (a step counter: a callback that re-schedules itself once per loop
# iteration, so an await that never reaches the emulator (a lock, a sleep) is a cancel
# point too). After each cancellation every VM's flows, judged by the emulator's own
# evaluator, are either as before or as a complete run leaves them: never half-written,
# never open beyond what was asked. A cancellation that reached a running task always
# ends it with CancelledError (asyncio.wait_for could swallow one on Python 3.11), and
# the next run converges.

POINTS_N = 3
POINTS_SEED = 11
POINTS_LRO = 0.01
POINTS_PARALLEL = 8


class CancelAtStep:
    """Cancels ``task`` at the ``k``-th step of the event loop after :meth:`start`."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps = 0
        self.task: asyncio.Future[Any] | None = None
        self.requested = False
        self.fired = False

    def start(self, task: asyncio.Future[Any]) -> None:
        self.task = task
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.steps += 1
            if self.steps == self.k:
                self.fired = True
                self.requested = task.cancel()
            elif not task.done():
                loop.call_soon(tick)

        loop.call_soon(tick)


@attrs.define
class PointsWorld(World):
    #: the index of the target of the single ``enable``
    single: int = 0


def _points_session(emu: ArmEmulator) -> AzureSession:
    if emu.virtual_time:
        return emu.session(retry=FAST_RETRY)
    return emu.session(polling_interval=POINTS_LRO, retry=FAST_RETRY)


async def _points_world(how: str) -> tuple[ArmEmulator, PointsWorld]:
    """The world, in virtual time for the step counter, else with operations taking real
    (short) time: then every poll is a point where a cancellation lands between two rule
    writes (in virtual time a run never yields to the loop once it starts writing, and a
    step counter spinning through real sleeps would count thousands of idle steps)."""
    emu = ArmEmulator(seed=POINTS_SEED, lro_seconds=None if how == "step" else POINTS_LRO)
    built = build_world(emu, POINTS_N, seed=POINTS_SEED, groups=1)
    world = PointsWorld(emu, built.targets, built.resource_groups, built.doomed)
    async with _points_session(emu) as session:
        target = _single(world, await read_state(session, world, extensions=False))
    world.single = world.targets.index(target)
    return emu, world


def _single(world: World, state: State) -> VmTarget:
    """The enable target with the most to write: NIC and subnet NSG, inbound and outbound."""
    before = all_flows(state, _names(world))
    for t in world.targets:
        _ip, inbound, _out, _vnet = path(state, t.name)
        if t.name not in world.doomed and len(inbound) == 2 and not any(before[t.name].values()):
            return t
    raise AssertionError("the world has no VM behind two NSGs that needs both directions")


async def _op_of(op: str, world: PointsWorld, session: AzureSession) -> Any:
    if op == "enable":
        return await enable(session, world.targets[world.single], access=ONPREM)
    return await enable_many(session, world.targets, access=ONPREM, poll_interval=0.05)


def _names(world: World) -> list[str]:
    return [t.name for t in world.targets]


async def _reference(op: str, how: str) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """Flows before and after an uncancelled run, and its length in requests and loop steps."""
    emu, world = await _points_world(how)
    async with _points_session(emu) as session:
        before = all_flows(await read_state(session, world, extensions=False), _names(world))
        start = len(emu.requests)
        counter = CancelAtStep(10**9)
        task = asyncio.ensure_future(_op_of(op, world, session))
        counter.start(task)
        await task
        requests = len(emu.requests) - start
        after = all_flows(await read_state(session, world, extensions=False), _names(world))
    return before, after, requests, counter.steps


async def _cancel_at(op: str, how: str, k: int) -> tuple[bool, bool, World, Any]:
    """Run ``op`` on a fresh world, cancelled at point ``k``: (requested, cancelled, world,
    state right after)."""
    emu, world = await _points_world(how)
    async with _points_session(emu) as session:
        await snapshot(session, world)
    by_request = CancelAfter(emu, k, now=True) if how == "request" else None
    by_step = CancelAtStep(k) if how == "step" else None
    try:
        async with _points_session(emu) as session:
            task = asyncio.ensure_future(_op_of(op, world, session))
            if by_request is not None:
                by_request.task = task
            else:
                assert by_step is not None
                by_step.start(task)
            try:
                await task
                cancelled = False
            except asyncio.CancelledError:
                cancelled = True
            state = await read_state(session, world)
    finally:
        if by_request is not None:
            by_request.remove()
    requested = (by_request or by_step).requested  # type: ignore[union-attr]
    return requested, cancelled, world, state


async def _check_point(
    op: str,
    how: str,
    k: int,
    before: dict[str, Any],
    after: dict[str, Any],
) -> tuple[bool, list[str]]:
    """Cancel at point ``k``, judge what is left, re-run: (cancelled, failures)."""
    requested, cancelled, world, state = await _cancel_at(op, how, k)
    failures = []
    if requested and not cancelled:
        failures.append(f"k={k}: the cancellation was swallowed (the call returned)")
    now = all_flows(state, _names(world))
    half = half_written(before, after, now)
    if half:
        changed = {
            vm: sorted(q for q, ok in f.items() if ok != before[vm][q]) for vm, f in half.items()
        }
        failures.append(f"k={k}: half-written, only these flows changed: {changed}")
    beyond = opened_beyond(before, now)
    if beyond:
        failures.append(f"k={k}: opened beyond what was asked {beyond}")
    damage = {
        key: v
        for key, v in audit(world, state, enabled=()).problems().items()
        if key in ("rules_lost", "duplicates", "priority_clashes", "wide_open", "broken_managed")
    }
    if damage:
        failures.append(f"k={k}: {damage}")
    # the next run converges
    async with _points_session(world.emu) as session:
        await _op_of(op, world, session)
        again = await read_state(session, world)
    final = all_flows(again, _names(world))
    if final != after:
        failures.append(f"k={k}: the re-run did not converge: {final}")
    return cancelled, failures


@pytest.mark.parametrize("how", ["request", "step"])
@pytest.mark.parametrize("op", ["enable", "enable_many"])
async def test_cancel_at_every_point_leaves_flows_before_or_after(op: str, how: str) -> None:
    before, after, requests, steps = await _reference(op, how)
    assert after != before
    total = requests if how == "request" else steps
    points = list(range(1, total + 1))
    # Worlds cancelled by request count are independent: run a few at once (their operations
    # wait in real time). The step counter counts the loop's steps: one world at a time.
    width = POINTS_PARALLEL if how == "request" else 1
    results: list[tuple[bool, list[str]]] = []
    for i in range(0, len(points), width):
        results += await asyncio.gather(
            *(_check_point(op, how, k, before, after) for k in points[i : i + width])
        )
    failures = [f for _, fs in results for f in fs]
    cancelled_points = sum(c for c, _ in results)
    assert cancelled_points >= total // 2, (cancelled_points, total)
    assert not failures, "\n".join(failures[:20])
