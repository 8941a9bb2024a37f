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

import pytest

from wac_azure import FleetResult, OutcomeStatus, RetryConfig, disable_many, enable_many
from wac_azure.testing import ArmEmulator

from ._world import ONPREM, World, audit, build_world, read_state, snapshot

pytestmark = pytest.mark.chaos

SEEDS = range(1, 1 + int(os.environ.get("WAC_AZURE_CANCEL_SEEDS", "5")))
N = 12
RATE = 0.1
FAST_RETRY = RetryConfig(attempts=8, initial=0.01, maximum=0.05, jitter=0.0, deadline=120)


class CancelAfter:
    """Cancels ``task`` once the emulator has received ``k`` requests."""

    def __init__(self, emu: ArmEmulator, k: int) -> None:
        self.emu = emu
        self.k = k
        self.seen = 0
        self.task: asyncio.Future[Any] | None = None
        self.fired = False
        inner = emu.handle

        async def handle(req: Any) -> Any:
            self.seen += 1
            if self.seen == self.k and self.task is not None and not self.task.done():
                self.fired = True
                asyncio.get_running_loop().call_soon(self.task.cancel)
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
