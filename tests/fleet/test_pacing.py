"""Client-side pacing: the bucket model, the policy, and zero 429s against a small bucket."""

from __future__ import annotations

import pytest

from wac_azure._errors import ConfigurationError
from wac_azure._fleet import enable_many
from wac_azure._pacing import Pacer, PacingConfig, SubscriptionPacer, request_class
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
