"""Azure Resource Manager's subscription throttling, as token buckets.

ARM throttles per region with token buckets per subscription and principal
(reads: 250 tokens, 25 back per second; writes: 200 + 10/s; deletes:
200 + 10/s). The emulator keeps one set of buckets **per subscription**: it
has one region and one principal, so that is the same thing for a test.

Every answer to a subscription-scoped request carries the remaining tokens of
its class in ``x-ms-ratelimit-remaining-subscription-reads`` / ``-writes`` /
``-deletes``; when the bucket is empty the request gets 429 with
``Retry-After`` (whole seconds until one token is back, at least 1).
Requests outside a subscription (``/providers/...``, tenant-level calls) are
not throttled and carry no such header.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import attrs

__all__ = ["Throttle", "ThrottleConfig", "request_class"]

_CLASSES = ("reads", "writes", "deletes")


def request_class(method: str) -> str:
    """The bucket an HTTP method draws from: ``"reads"``, ``"writes"`` or ``"deletes"``.

    GET and HEAD (and anything else that changes nothing) are reads, DELETE is
    a delete, PUT, PATCH and POST are writes.
    """
    m = method.upper()
    if m == "DELETE":
        return "deletes"
    if m in ("PUT", "PATCH", "POST"):
        return "writes"
    return "reads"


def _bucket(value: tuple[int, float]) -> tuple[int, float]:
    try:
        size, refill = value
        size_i, refill_f = int(size), float(refill)
    except (TypeError, ValueError):
        raise ValueError(
            f"a throttle bucket is (size, refill per second), e.g. (250, 25.0); got {value!r}"
        ) from None
    if size_i < 1 or refill_f < 0 or math.isnan(refill_f):
        raise ValueError(
            f"a throttle bucket needs size >= 1 and refill >= 0 tokens/s; got {value!r}"
        )
    return (size_i, refill_f)


@attrs.frozen
class ThrottleConfig:
    """Bucket sizes and refill rates (tokens per second) per request class.

    The defaults are Azure Resource Manager's documented limits.
    ``enabled=False`` admits everything but still sends the rate-limit
    headers (with the bucket's full size), as a lightly used subscription does.
    """

    reads: tuple[int, float] = attrs.field(default=(250, 25.0), converter=_bucket)
    writes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_bucket)
    deletes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_bucket)
    enabled: bool = True

    def bucket(self, kind: str) -> tuple[int, float]:
        """``(size, refill per second)`` of ``"reads"``, ``"writes"`` or ``"deletes"``."""
        if kind not in _CLASSES:
            raise ValueError(f"unknown request class {kind!r}; use one of {', '.join(_CLASSES)}")
        value: tuple[int, float] = getattr(self, kind)
        return value


class _Bucket:
    __slots__ = ("refill", "size", "stamp", "tokens")

    def __init__(self, size: int, refill: float, now: float) -> None:
        self.size = size
        self.refill = refill
        self.tokens = float(size)
        self.stamp = now

    def advance(self, now: float, time_scale: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(float(self.size), self.tokens + elapsed * self.refill * time_scale)
        self.stamp = now


class Throttle:
    """Per-subscription token buckets, as ARM applies them.

    ``clock`` returns seconds (monotonic); tests pass a fake one.
    ``time_scale`` multiplies the refill rate, so a benchmark can compress
    time: with ``time_scale=10`` a write bucket refills at 100 tokens per
    real second.

    ``rejected`` counts the 429s per class, ``admitted`` the requests let
    through per class (subscription-scoped requests only).
    """

    def __init__(
        self,
        config: ThrottleConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        time_scale: float = 1.0,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0; got {time_scale!r}")
        self.config = config if config is not None else ThrottleConfig()
        self.time_scale = float(time_scale)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self.rejected: dict[str, int] = dict.fromkeys(_CLASSES, 0)
        self.admitted: dict[str, int] = dict.fromkeys(_CLASSES, 0)

    @property
    def enabled(self) -> bool:
        """Whether requests can be refused (headers are sent either way)."""
        return self.config.enabled

    def _get(self, subscription_id: str, kind: str, now: float) -> _Bucket:
        key = (subscription_id.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            size, refill = self.config.bucket(kind)
            bucket = self._buckets[key] = _Bucket(size, refill, now)
        else:
            bucket.advance(now, self.time_scale)
        return bucket

    def admit(self, subscription_id: str | None, method: str) -> tuple[bool, dict[str, str], float]:
        """Take one token for a request: ``(allowed, headers, retry_after_seconds)``.

        ``headers`` holds ``x-ms-ratelimit-remaining-subscription-<class>``:
        the whole tokens left after this request (0 on a refusal). A refused
        request gets ``retry_after`` = whole seconds until one token is back
        (at least 1); an admitted one gets 0.
        """
        if not subscription_id:
            return True, {}, 0.0
        kind = request_class(method)
        header = f"x-ms-ratelimit-remaining-subscription-{kind}"
        if not self.config.enabled:
            size, _ = self.config.bucket(kind)
            self.admitted[kind] += 1
            return True, {header: str(size)}, 0.0
        with self._lock:
            bucket = self._get(subscription_id, kind, self._clock())
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                self.admitted[kind] += 1
                return True, {header: str(math.floor(bucket.tokens))}, 0.0
            self.rejected[kind] += 1
            rate = bucket.refill * self.time_scale
            if rate <= 0:
                wait = 3600.0
            else:
                wait = float(max(1, math.ceil((1.0 - bucket.tokens) / rate - 1e-9)))
            return False, {header: "0"}, wait

    def remaining(self, subscription_id: str, kind: str) -> float:
        """Tokens left now in one subscription's bucket (``"reads"``/``"writes"``/``"deletes"``)."""
        with self._lock:
            if not self.config.enabled:
                return float(self.config.bucket(kind)[0])
            return self._get(subscription_id, kind, self._clock()).tokens

    def drain(self, subscription_id: str, kind: str, *, leave: float = 0.0) -> None:
        """Empty a bucket (down to ``leave`` tokens): the next requests get 429."""
        with self._lock:
            bucket = self._get(subscription_id, kind, self._clock())
            bucket.tokens = min(bucket.tokens, max(0.0, float(leave)))

    def reset(self) -> None:
        """Refill every bucket and zero the counters."""
        with self._lock:
            self._buckets.clear()
            for kind in _CLASSES:
                self.rejected[kind] = 0
                self.admitted[kind] = 0

    def __repr__(self) -> str:
        state = "enabled" if self.config.enabled else "disabled"
        return (
            f"Throttle({state}, subscriptions={len({s for s, _ in self._buckets})}, "
            f"rejected={self.rejected})"
        )
