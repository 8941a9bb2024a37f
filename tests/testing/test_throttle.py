"""Token-bucket throttling, with a fake clock."""

from __future__ import annotations

import pytest

from wac_azure.testing.backend.throttle import Throttle, ThrottleConfig, request_class

SUB = "00000000-0000-0000-0000-000000000001"
OTHER = "00000000-0000-0000-0000-000000000002"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("GET", "reads"),
        ("head", "reads"),
        ("DELETE", "deletes"),
        ("PUT", "writes"),
        ("patch", "writes"),
        ("POST", "writes"),
    ],
)
def test_request_class(method: str, kind: str) -> None:
    assert request_class(method) == kind


def test_default_config_is_arm_limits() -> None:
    cfg = ThrottleConfig()
    assert cfg.reads == (250, 25.0)
    assert cfg.writes == (200, 10.0)
    assert cfg.deletes == (200, 10.0)
    assert cfg.enabled


def test_headers_count_down_per_class(clock: FakeClock) -> None:
    t = Throttle(clock=clock)
    ok, headers, wait = t.admit(SUB, "GET")
    assert ok
    assert wait == 0
    assert headers == {"x-ms-ratelimit-remaining-subscription-reads": "249"}
    ok, headers, _ = t.admit(SUB, "GET")
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "248"
    ok, headers, _ = t.admit(SUB, "PUT")
    assert headers == {"x-ms-ratelimit-remaining-subscription-writes": "199"}
    ok, headers, _ = t.admit(SUB, "DELETE")
    assert headers == {"x-ms-ratelimit-remaining-subscription-deletes": "199"}
    assert t.admitted == {"reads": 2, "writes": 1, "deletes": 1}


def test_empty_bucket_answers_429_then_refills(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(writes=(3, 0.5)), clock=clock)
    remaining = [
        t.admit(SUB, "PUT")[1]["x-ms-ratelimit-remaining-subscription-writes"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    ok, headers, wait = t.admit(SUB, "POST")
    assert not ok
    assert headers == {"x-ms-ratelimit-remaining-subscription-writes": "0"}
    assert wait == 2  # one token at 0.5/s
    assert t.rejected == {"reads": 0, "writes": 1, "deletes": 0}
    # reads are a different bucket
    assert t.admit(SUB, "GET")[0]
    clock.now += 1.0  # half a token back
    ok, _, wait = t.admit(SUB, "PUT")
    assert not ok
    assert wait == 1
    clock.now += 1.0
    ok, headers, _ = t.admit(SUB, "PUT")
    assert ok
    assert headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert t.rejected["writes"] == 2


def test_retry_after_is_at_least_one_second(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(reads=(1, 1000.0)), clock=clock)
    assert t.admit(SUB, "GET")[0]
    ok, _, wait = t.admit(SUB, "GET")
    assert not ok
    assert wait == 1


def test_refill_caps_at_bucket_size(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(reads=(5, 1.0)), clock=clock)
    for _ in range(5):
        t.admit(SUB, "GET")
    clock.now += 3600
    _, headers, _ = t.admit(SUB, "GET")
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "4"


def test_buckets_are_per_subscription_case_insensitive(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(deletes=(1, 0.1)), clock=clock)
    assert t.admit(SUB, "DELETE")[0]
    assert not t.admit(SUB.upper(), "DELETE")[0]
    assert t.admit(OTHER, "DELETE")[0]


def test_no_subscription_is_not_throttled(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(reads=(1, 0.0)), clock=clock)
    for _ in range(5):
        assert t.admit(None, "GET") == (True, {}, 0.0)
    assert t.admitted["reads"] == 0


def test_time_scale_compresses_refill(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(writes=(10, 2.0)), clock=clock, time_scale=8.0)
    for _ in range(10):
        t.admit(SUB, "PUT")
    ok, _, wait = t.admit(SUB, "PUT")
    assert not ok
    assert wait == 1
    clock.now += 0.25  # 0.25 s x 2/s x 8 = 4 tokens
    _, headers, _ = t.admit(SUB, "PUT")
    assert headers["x-ms-ratelimit-remaining-subscription-writes"] == "3"


def test_disabled_throttle_sends_full_bucket_and_admits_all(clock: FakeClock) -> None:
    t = Throttle(ThrottleConfig(writes=(2, 0.0), enabled=False), clock=clock)
    for _ in range(10):
        ok, headers, wait = t.admit(SUB, "PUT")
        assert ok
        assert wait == 0
        assert headers == {"x-ms-ratelimit-remaining-subscription-writes": "2"}
    assert t.rejected["writes"] == 0
    assert not t.enabled


def test_drain_and_reset(clock: FakeClock) -> None:
    t = Throttle(clock=clock)
    t.drain(SUB, "reads")
    assert t.remaining(SUB, "reads") == 0
    ok, _, wait = t.admit(SUB, "GET")
    assert not ok
    assert wait == 1
    t.reset()
    assert t.rejected["reads"] == 0
    assert t.remaining(SUB, "reads") == 250


@pytest.mark.parametrize("bad", [(0, 1.0), (10, -1.0), ("x", 1.0), (1,)])
def test_bad_bucket_config_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="bucket"):
        ThrottleConfig(reads=bad)  # type: ignore[arg-type]


def test_bad_time_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        Throttle(time_scale=0)
