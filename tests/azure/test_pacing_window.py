"""Write and connection windows sized by Little's law from the measured latency."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import ConfigurationError, PacingConfig
from wac_azure._azure.pacing import (
    DEFAULT_LATENCY,
    LATENCY_WARMUP,
    WINDOW_MAX,
    WINDOW_MIN,
    WRITE_WINDOW_MIN,
    Pacer,
    WindowGate,
    window,
)


def test_window_is_rate_times_latency_with_headroom() -> None:
    # ARM's write bucket refills 10/s: at 2 s a write, 20 in flight keep its pace; x2
    assert window(10.0, 2.0) == 40
    assert window(10.0, 2.0, headroom=1.0) == 20
    # a fast answer needs few in flight: the floor holds (the bucket's burst of 200)
    assert window(10.0, 0.15) == WINDOW_MIN
    assert window(10.0, 60.0) == WINDOW_MAX
    assert window(25.0, 0.5, minimum=1) == 25
    # nothing measured yet: the default latency
    assert window(400.0, None) == window(400.0, DEFAULT_LATENCY)


@given(
    rate=st.floats(min_value=0.01, max_value=10_000, allow_nan=False),
    latency=st.floats(min_value=0.0, max_value=600, allow_nan=False),
    more=st.floats(min_value=0.0, max_value=60, allow_nan=False),
)
def test_window_keeps_pace_and_grows_with_latency(rate: float, latency: float, more: float) -> None:
    w = window(rate, latency)
    assert WINDOW_MIN <= w <= WINDOW_MAX
    # in flight / latency >= rate: the window never sets a slower pace than the bucket
    if w < WINDOW_MAX and latency > 0:
        assert w / latency >= rate - 1e-9
    assert window(rate, latency + more) >= w


@pytest.mark.parametrize(
    ("rate", "kwargs"), [(0.0, {}), (-1.0, {}), (10.0, {"minimum": 0}), (10.0, {"maximum": 2})]
)
def test_bad_window_arguments_are_typed_errors(rate: float, kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="window"):
        window(rate, 1.0, **kwargs)


def test_subscription_windows_follow_the_measured_latency() -> None:
    pacer = Pacer(PacingConfig(writes=(200, 10.0), reads=(250, 25.0), refill_scale=2.0))
    sub = pacer.subscription("00000000-0000-0000-0000-000000000001")
    assert sub.latency is None
    assert sub.write_window() == WRITE_WINDOW_MIN
    for _ in range(LATENCY_WARMUP):  # connection set-up (handshakes): left out
        sub.observe_latency(9.0)
    assert sub.latency is None
    for _ in range(200):
        sub.observe_latency(2.0)
    assert sub.latency == pytest.approx(2.0)
    # a busy client's own delays do not inflate it: the shortest recent round trip
    for _ in range(20):
        sub.observe_latency(30.0)
    assert sub.latency == pytest.approx(2.0)
    assert sub.write_window() == 80  # 10/s x refill_scale 2 x 2 s x 2
    assert sub.read_window() == 200
    assert sub.connection_need() == 256  # (10 + 25)/s x 2 x 2 s x 2 = 280, at most 256
    other = pacer.subscription("00000000-0000-0000-0000-000000000002")
    assert other.connection_need() == 14  # (20 + 50)/s x 0.1 s (assumed) x 2
    assert pacer.connection_window() == 256  # 256 + 14, at most 256 over the session
    assert pacer.connection_window(maximum=1024) == 256 + 14
    sub.observe_latency(-1.0)  # a clock that went back: ignored
    assert sub.latency == pytest.approx(2.0)


async def test_window_gate_follows_its_capacity_and_keeps_order() -> None:
    size = [2]
    gate = WindowGate(lambda: size[0])
    order: list[int] = []
    release = asyncio.Event()

    async def worker(i: int) -> None:
        async with gate:
            order.append(i)
            await release.wait()

    tasks = [asyncio.ensure_future(worker(i)) for i in range(6)]
    await asyncio.sleep(0)
    assert gate.in_use == 2
    assert gate.waiting == 4
    size[0] = 4  # the window grew: the next release lets more in
    tasks[0].cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert gate.in_use == 4
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 1, 2, 3, 4, 5]
    assert gate.in_use == 0
    assert gate.peak == 4


async def test_a_waiter_cancelled_after_its_grant_hands_the_slot_on() -> None:
    gate = WindowGate(lambda: 1)
    await gate.acquire()
    waiter = asyncio.ensure_future(gate.acquire())
    third = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # granted to `waiter`...
    waiter.cancel()  # ...which is cancelled before it runs
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert third.done()
    assert gate.in_use == 1
