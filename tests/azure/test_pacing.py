"""Client-side pacing: the bucket model, the policy, and zero 429s against a small bucket."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wac_azure._azure.pacing import (
    _PRIORITY,
    Pacer,
    PacingConfig,
    SubscriptionPacer,
    pacing_priority,
    request_class,
)
from wac_azure._core.errors import ConfigurationError
from wac_azure._workflows.fleet.engine import enable_many
from wac_azure.testing import ArmEmulator, ThrottleConfig

SUB = "00000000-0000-0000-0000-000000000001"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(config: PacingConfig) -> tuple[SubscriptionPacer, FakeTime]:
    t = FakeTime()
    return SubscriptionPacer(SUB, config, clock=t.clock, sleep=t.sleep), t


def test_request_classes() -> None:
    assert [request_class(m) for m in ("GET", "head", "PUT", "PATCH", "POST", "DELETE")] == [
        "reads",
        "reads",
        "writes",
        "writes",
        "writes",
        "deletes",
    ]


async def test_acquire_spends_the_burst_then_waits_for_refill() -> None:
    pacer, t = make(PacingConfig(writes=(10, 5.0), reserve=0.2))
    for _ in range(8):  # 10 tokens, 2 kept in reserve
        await pacer.acquire("writes")
    assert t.slept == []
    await pacer.acquire("writes")
    assert t.slept == [pytest.approx(0.2)]  # one token at 5/s
    assert pacer.requests["writes"] == 9
    assert pacer.waited == pytest.approx(0.2)


async def test_headers_lower_the_model_and_429_blocks() -> None:
    pacer, t = make(PacingConfig(reads=(100, 10.0), reserve=0.0))
    await pacer.acquire("reads")
    # someone else spent most of the bucket: ARM says 3 are left
    pacer.observe("reads", status=200, remaining=3, retry_after=None)
    assert pacer.tokens("reads") == pytest.approx(3.0)
    for _ in range(3):
        await pacer.acquire("reads")
    assert t.slept == []
    await pacer.acquire("reads")
    assert t.slept == [pytest.approx(0.1)]
    pacer.observe("reads", status=429, remaining=0, retry_after=2.0)
    assert pacer.throttled["reads"] == 1
    await pacer.acquire("reads")
    assert sum(t.slept[1:]) == pytest.approx(2.0, abs=0.11)


async def test_model_rises_when_arm_has_more_than_thought() -> None:
    pacer, _ = make(PacingConfig(writes=(200, 10.0), reserve=0.0))
    for _ in range(150):
        await pacer.acquire("writes")
    assert pacer.tokens("writes") == pytest.approx(50.0)
    pacer.observe("writes", status=201, remaining=190, retry_after=None)
    # 149 still in flight count as spent
    assert pacer.tokens("writes") == pytest.approx(50.0)
    for _ in range(149):
        pacer.observe("writes", status=201, remaining=None, retry_after=None)
    pacer.observe("writes", status=201, remaining=190, retry_after=None)
    assert pacer.tokens("writes") == pytest.approx(190.0)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        PacingConfig(reads=(0, 1.0))
    with pytest.raises(ConfigurationError):
        PacingConfig(writes="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        PacingConfig(reserve=0.95)
    with pytest.raises(ConfigurationError):
        PacingConfig(refill_scale=0)


def test_pacer_keeps_one_pace_per_subscription() -> None:
    pacer = Pacer()
    a = pacer.subscription(SUB.upper())
    assert pacer.subscription(SUB) is a
    assert pacer.subscription("00000000-0000-0000-0000-000000000002") is not a
    assert len(pacer.subscriptions) == 2


SMALL = ThrottleConfig(reads=(6, 30.0), writes=(4, 20.0), deletes=(4, 20.0))


def small_pacing(**kw: object) -> PacingConfig:
    return PacingConfig(reads=(6, 30.0), writes=(4, 20.0), deletes=(4, 20.0), reserve=0.0, **kw)  # type: ignore[arg-type]


def fleet(emu: ArmEmulator, n: int) -> list:  # type: ignore[type-arg]
    return [emu.add_windows_vm(f"vm{i}", resource_group=f"rg-{i % 3}") for i in range(n)]


async def test_pacing_keeps_429s_at_zero_against_a_small_bucket() -> None:
    emu = ArmEmulator(seed=0, throttle=SMALL)
    targets = fleet(emu, 12)
    async with emu.session(pacing=small_pacing()) as session:
        result = await enable_many(session, targets)
        assert session.pacer.throttled == 0
    assert result.ok
    assert len(result.enabled) == 12
    assert result.throttled == 0
    assert emu.throttle.rejected == {"reads": 0, "writes": 0, "deletes": 0}
    assert sum(emu.throttle.admitted.values()) == len(emu.requests)


async def test_without_pacing_the_same_run_is_throttled() -> None:
    emu = ArmEmulator(seed=0, throttle=SMALL)
    targets = fleet(emu, 12)
    async with emu.session(pacing=small_pacing(enabled=False)) as session:
        result = await enable_many(session, targets)
        seen = session.pacer.throttled
    assert sum(emu.throttle.rejected.values()) > 0
    assert seen == sum(emu.throttle.rejected.values())  # the policy counts every 429
    assert result.throttled == seen


# -- priorities -------------------------------------------------------------------


class SteppedTime:
    """A clock that moves only when the test fires a timer: ``sleep`` really waits.

    Unlike :class:`FakeTime` (whose sleeps return at once), waiters stay queued,
    so requests can arrive while others wait.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, next(self._seq), fut))
        await fut

    def sleeping(self) -> int:
        return sum(1 for *_, fut in self._timers if not fut.done())

    @staticmethod
    async def settle() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    def fire(self) -> bool:
        """Move the clock to the earliest pending timer and fire it (False: none)."""
        while self._timers:
            when, _, fut = heapq.heappop(self._timers)
            if not fut.done():  # a cancelled sleep is not waited for
                self.now = max(self.now, when)
                fut.set_result(None)
                return True
        return False

    async def run(self, *tasks: asyncio.Task[Any]) -> None:
        """Fire timers until every task is done; fail if they block with no timer left."""
        while True:
            await self.settle()
            if all(task.done() for task in tasks):
                return
            if not self.fire():
                raise AssertionError("waiters blocked with no timer pending (a lost wake-up)")


def stepped(config: PacingConfig) -> tuple[SubscriptionPacer, SteppedTime]:
    t = SteppedTime()
    return SubscriptionPacer(SUB, config, clock=t.clock, sleep=t.sleep), t


def model(pacer: SubscriptionPacer, kind: str = "writes") -> Any:
    return pacer._models[kind]


async def empty_bucket() -> tuple[SubscriptionPacer, SteppedTime]:
    """A pacer whose write bucket (1 token, 1/s, no reserve) was just spent."""
    pacer, t = stepped(PacingConfig(writes=(1, 1.0), reserve=0.0))
    await pacer.acquire("writes")
    assert pacer.tokens("writes") == pytest.approx(0.0)
    return pacer, t


def taker(
    pacer: SubscriptionPacer, t: SteppedTime, order: list[tuple[str, float]]
) -> Callable[[str, int], asyncio.Task[None]]:
    async def take(name: str, priority: int) -> None:
        await pacer.acquire("writes", priority)
        order.append((name, t.now))

    def start(name: str, priority: int) -> asyncio.Task[None]:
        return asyncio.create_task(take(name, priority))

    return start


async def test_lower_priority_leaves_first_fifo_within_a_priority() -> None:
    pacer, t = await empty_bucket()
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    rule = start("rule", 1)
    await t.settle()
    assert pacer.waiting("writes") == 1  # queued, asleep for the next token
    tasks = [rule, start("ext-a", 0), start("ext-b", 0), start("rule-2", 1), start("ext-c", 0)]
    await t.run(*tasks)
    assert order == [
        ("ext-a", 1.0),
        ("ext-b", 2.0),
        ("ext-c", 3.0),
        ("rule", 4.0),
        ("rule-2", 5.0),
    ]
    # one waiter sleeps at a time: the sleeps add up to the elapsed time, no more
    assert t.slept == [pytest.approx(1.0)] * 5
    assert pacer.waited == pytest.approx(5.0)
    assert pacer.requests["writes"] == 6
    assert pacer.waiting("writes") == 0
    assert model(pacer).in_flight == 6


async def test_a_request_finding_others_waiting_queues_even_if_a_token_is_there() -> None:
    pacer, t = await empty_bucket()
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    first = start("first", 0)
    await t.settle()
    t.now = 1.0  # a token is back, but "first" has not woken up yet
    same = start("same", 0)
    await t.settle()
    assert order == []  # equal priority: it queues behind "first"
    urgent = start("urgent", -1)
    await t.settle()
    assert order == [("urgent", 1.0)]  # strictly ahead of every waiter: takes the token
    await t.run(first, same, urgent)
    assert [name for name, _ in order] == ["urgent", "first", "same"]


async def test_an_empty_queue_and_a_token_leave_at_once() -> None:
    pacer, t = stepped(PacingConfig(writes=(3, 1.0), reserve=0.0))
    for priority in (5, 0, 1):
        await pacer.acquire("writes", priority)
    assert t.slept == []
    assert pacer.waiting("writes") == 0
    assert model(pacer).queue == []  # no entry was even pushed


@pytest.mark.parametrize("victim", ["head", "middle", "last"])
async def test_cancelling_a_queued_waiter_lets_the_others_through(victim: str) -> None:
    pacer, t = await empty_bucket()
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    tasks = {name: start(name, 0) for name in ("head", "middle", "last")}
    await t.settle()
    assert pacer.waiting("writes") == 3
    assert t.sleeping() == 1  # only the head sleeps
    tasks[victim].cancel()
    await t.settle()
    assert tasks[victim].cancelled()
    assert pacer.waiting("writes") == 2
    await t.run(*tasks.values())
    survivors = [name for name in ("head", "middle", "last") if name != victim]
    assert [name for name, _ in order] == survivors
    # the cancelled one took no token: two grants at 1/s
    assert [when for _, when in order] == [1.0, 2.0]
    assert pacer.tokens("writes") == pytest.approx(0.0)
    assert model(pacer).in_flight == 1 + 2
    assert pacer.waiting("writes") == 0


async def test_cancelling_a_woken_head_before_it_runs_wakes_the_next() -> None:
    pacer, t = await empty_bucket()
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    rule = start("rule", 1)  # sleeps for the next token
    await t.settle()
    ext = start("ext", 0)  # becomes the head, waits for the sleeper
    await t.settle()
    assert t.sleeping() == 1
    assert t.fire()  # the sleeper wakes and hands over to "ext"...
    ext.cancel()  # ...which is cancelled before it gets to run
    await t.run(rule, ext)
    assert ext.cancelled()
    assert order == [("rule", 1.0)]
    assert model(pacer).in_flight == 2
    assert pacer.waiting("writes") == 0


async def test_cancelling_the_sleeper_under_a_new_head_wakes_the_head() -> None:
    pacer, t = await empty_bucket()
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    rule = start("rule", 1)
    await t.settle()
    ext = start("ext", 0)
    await t.settle()
    rule.cancel()  # the only sleeper goes: "ext" must not wait forever
    await t.run(rule, ext)
    assert rule.cancelled()
    assert order == [("ext", 1.0)]
    assert model(pacer).in_flight == 2


async def test_a_429_holds_back_every_priority() -> None:
    pacer, t = stepped(PacingConfig(writes=(10, 1.0), reserve=0.0))
    await pacer.acquire("writes")
    pacer.observe("writes", status=429, remaining=0, retry_after=3.0)
    order: list[tuple[str, float]] = []
    start = taker(pacer, t, order)
    tasks = [start("rule", 2), start("ext", 0), start("other", 1)]
    await t.settle()
    assert order == []
    urgent = start("urgent", -5)  # even a request ahead of everyone waits out the block
    await t.settle()
    assert order == []
    await t.run(*tasks, urgent)
    assert [name for name, _ in order] == ["urgent", "ext", "other", "rule"]
    assert min(when for _, when in order) >= 3.0
    assert pacer.throttled["writes"] == 1


def test_pacing_priority_sets_and_resets_the_context_variable() -> None:
    assert _PRIORITY.get() == 0
    with pacing_priority(1):
        assert _PRIORITY.get() == 1
        with pacing_priority(0):
            assert _PRIORITY.get() == 0
        assert _PRIORITY.get() == 1
    assert _PRIORITY.get() == 0
    for bad in (-1, 1.5, "1", True, None):
        with pytest.raises(ConfigurationError, match="pacing priority"), pacing_priority(bad):  # type: ignore[arg-type]
            pass
    assert _PRIORITY.get() == 0


async def test_tasks_started_under_pacing_priority_inherit_it() -> None:
    async def read() -> int:
        await asyncio.sleep(0)
        return _PRIORITY.get()

    with pacing_priority(3):
        inside = asyncio.create_task(read())
    outside = asyncio.create_task(read())
    assert await inside == 3
    assert await outside == 0


RULE = {
    "protocol": "Tcp",
    "access": "Allow",
    "direction": "Inbound",
    "sourceAddressPrefix": "*",
    "sourcePortRange": "*",
    "destinationAddressPrefix": "*",
}


@pytest.mark.parametrize("background", [0, 1])
async def test_the_policy_paces_sdk_requests_at_the_context_priority(background: int) -> None:
    """SDK PUTs through PacingPolicy: a late priority-0 write overtakes queued priority-1 ones."""
    emu = ArmEmulator(seed=0, throttle=ThrottleConfig(writes=(1, 1.0)))
    target = emu.add_windows_vm("vm0")
    finished: list[str] = []
    async with emu.session(pacing=PacingConfig(writes=(1, 1.0), reserve=0.0)) as session:
        network = session.network(SUB)
        sub = session.pacer.subscription(SUB)

        async def put_rule(name: str, priority: int, port: int) -> None:
            body: Any = {
                "properties": {**RULE, "priority": port, "destinationPortRange": str(port)}
            }
            with pacing_priority(priority):
                poller = await network.security_rules.begin_create_or_update(
                    target.resource_group, "vm0-nsg", name, body
                )
                await poller.result()
            finished.append(name)

        lows = [asyncio.create_task(put_rule(f"low{i}", background, 1000 + i)) for i in range(4)]
        for _ in range(10_000):
            if sub.waiting("writes") == 3:  # low0 went at once, the others queue
                break
            await asyncio.sleep(0)
        assert sub.waiting("writes") == 3
        high = asyncio.create_task(put_rule("high", 0, 999))
        # a lost wake-up would hang here: fail instead
        await asyncio.wait_for(asyncio.gather(*lows, high), timeout=30)
        assert session.pacer.throttled == 0
    puts = [r.path.rsplit("/", 1)[-1] for r in emu.requests if r.method == "PUT"]
    assert [p for p in puts if p != "high"] == ["low0", "low1", "low2", "low3"]  # FIFO
    if background == 0:  # same priority: the late one leaves last
        assert puts[-1] == "high"
        assert finished[-1] == "high"
    else:  # it overtakes the priority-1 writes still queued when it came
        assert puts.index("high") < puts.index("low3")
        assert finished.index("high") < finished.index("low3")
    assert emu.throttle.rejected == {"reads": 0, "writes": 0, "deletes": 0}


class Grants:
    """Who got a token, when, and who was waiting at that moment."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.times: list[float] = []
        self.waiting: list[set[int]] = []
        self.arrived: list[int] = []  # in the order they called acquire
        self.slept = 0.0


def grant(arrivals: list[tuple[int, int]]) -> Grants:
    """Run arrivals ``(priority, arrival step)`` into an empty bucket (1 token, 1/s).

    At each step the new arrivals start, everything runs until blocked, then
    the earliest sleep is fired (the clock moves to its end).
    """

    async def go() -> Grants:
        pacer, t = await empty_bucket()
        out = Grants()
        tasks: list[asyncio.Task[None]] = []

        async def take(i: int, priority: int) -> None:
            out.arrived.append(i)
            await pacer.acquire("writes", priority)
            out.waiting.append(set(out.arrived) - set(out.order))
            out.order.append(i)
            out.times.append(t.now)

        last = max(at for _, at in arrivals)
        for step in range(last + 1):
            for i, (priority, at) in enumerate(arrivals):
                if at == step:
                    tasks.append(asyncio.create_task(take(i, priority)))
            await t.settle()
            t.fire()
        await t.run(*tasks)
        assert pacer.waiting("writes") == 0
        assert model(pacer).in_flight == 1 + len(arrivals)
        out.slept = sum(t.slept)
        return out

    return asyncio.run(go())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=10))
def test_grants_are_a_stable_sort_of_simultaneous_arrivals(priorities: list[int]) -> None:
    got = grant([(p, 0) for p in priorities])
    assert got.order == sorted(range(len(priorities)), key=lambda i: (priorities[i], i))
    assert got.times == [pytest.approx(k + 1.0) for k in range(len(priorities))]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=10))
def test_each_grant_goes_to_the_best_request_waiting(arrivals: list[tuple[int, int]]) -> None:
    got = grant(arrivals)
    assert sorted(got.order) == list(range(len(arrivals)))  # everyone got through
    for i, waiting in zip(got.order, got.waiting, strict=True):
        assert i == min(waiting, key=lambda j: (arrivals[j][0], got.arrived.index(j)))
    # one token per second, never two requests sleeping at once
    assert all(when >= k + 1.0 - 1e-9 for k, when in enumerate(got.times))
    assert got.slept == pytest.approx(got.times[-1])
