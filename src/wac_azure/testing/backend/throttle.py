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

Compute throttles on its own, on top of ARM (AZURE_FACTS §6, [CTL]): token
buckets per policy, per resource (the VM) and per subscription, refilled per
minute. Every Compute answer carries ``x-ms-ratelimit-remaining-resource``
(``Microsoft.Compute/LowCostGet3Min;3995,Microsoft.Compute/LowCostGet30Min;31971``,
the subscription's tokens, as in the recordings); past a limit, 429
``OperationNotAllowed`` with detail ``TooManyRequests`` and ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

__all__ = [
    "DEFAULT_COMPUTE_POLICIES",
    "ComputePolicy",
    "Throttle",
    "ThrottleConfig",
    "compute_policy_of",
    "request_class",
]

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


def _per_minute(value: tuple[float, int] | None) -> tuple[float, int] | None:
    if value is None:
        return None
    try:
        refill, cap = value
        refill_f, cap_i = float(refill), int(cap)
    except (TypeError, ValueError):
        raise ValueError(
            f"a Compute bucket is (refill per minute, cap), e.g. (4, 12); got {value!r}"
        ) from None
    if cap_i < 1 or refill_f < 0 or math.isnan(refill_f):
        raise ValueError(f"a Compute bucket needs cap >= 1 and refill >= 0; got {value!r}")
    return (refill_f, cap_i)


@attrs.frozen
class ComputePolicy:
    """One Compute throttling policy: ``(refill per minute, cap)`` per resource and subscription.

    ``name`` is the policy as Compute's headers spell it (``UpdateVM``, ``LowCostGet``...).
    ``per_resource`` (keyed by VM) or ``per_subscription`` may be ``None`` (no such bucket).
    ``long_window`` adds the ``{name}30Min`` entry to the header (a 30-minute bucket of
    30 × the refill, informative only: it refills at the same rate, so it never refuses
    before the 3-minute one).
    """

    name: str
    per_resource: tuple[float, int] | None = attrs.field(default=None, converter=_per_minute)
    per_subscription: tuple[float, int] | None = attrs.field(default=None, converter=_per_minute)
    long_window: bool = True


#: Compute's policies: AZURE_FACTS §6 table ([CTL]) for UpdateVM, LowCostGet, HighCostGet and
#: GetOperation; DeleteVM and GetSubscriptionInfo from the recordings' header values
#: (``DeleteVM3Min;239`` / ``30Min;1199``: 240 per 3 minutes; ``GetSubscriptionInfo3Min;359``).
DEFAULT_COMPUTE_POLICIES: tuple[ComputePolicy, ...] = (
    ComputePolicy("UpdateVM", per_resource=(4, 12), per_subscription=(500, 1500)),
    ComputePolicy("LowCostGet", per_resource=(12, 36), per_subscription=(8000, 24000)),
    ComputePolicy("HighCostGet", per_subscription=(300, 900)),
    ComputePolicy("GetOperation", per_resource=(15, 45), per_subscription=(5000, 15000)),
    ComputePolicy("DeleteVM", per_subscription=(80, 240)),
    ComputePolicy("GetSubscriptionInfo", per_subscription=(120, 360), long_window=False),
)

_VM_PATH = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
    r"virtualmachines/[^/]+)(/.*)?$",
    re.IGNORECASE,
)
_VM_LIST = re.compile(
    r"^/subscriptions/[^/]+(/resourcegroups/[^/]+)?/providers/microsoft\.compute/"
    r"(locations/[^/]+/)?virtualmachines/?$",
    re.IGNORECASE,
)
_COMPUTE_OP = re.compile(
    r"^/subscriptions/[^/]+/providers/microsoft\.compute/locations/[^/]+/"
    r"(operations|operationresults)/[^/]+/?$",
    re.IGNORECASE,
)
_COMPUTE = re.compile(
    r"^/subscriptions/[^/]+/(resourcegroups/[^/]+/)?providers/microsoft\.compute/",
    re.IGNORECASE,
)


def compute_policy_of(method: str, path: str) -> tuple[str, str] | None:
    """``(policy name, resource key)`` of a Compute request, or ``None`` for non-Compute ones.

    Which request counts where follows AZURE_FACTS §6 and the recordings' headers: VM and
    extension/run-command GETs are ``LowCostGet``; VM lists ``HighCostGet``; operation polls
    ``GetOperation``; VM and extension writes, Run Command and power actions ``UpdateVM``;
    deallocate and VM DELETE ``DeleteVM``; anything else (sizes, SKUs)
    ``GetSubscriptionInfo``.
    """
    if not _COMPUTE.match(path):
        return None
    m = method.upper()
    if _COMPUTE_OP.match(path):
        return "GetOperation", path.lower().rstrip("/")
    if _VM_LIST.match(path):
        return "HighCostGet", ""
    vm = _VM_PATH.match(path)
    if vm is not None:
        vm_id, rest = vm.group(1).lower(), (vm.group(2) or "").lower().rstrip("/")
        if m in ("GET", "HEAD"):
            return "LowCostGet", vm_id
        if (m == "DELETE" and not rest) or (m == "POST" and rest == "/deallocate"):
            return "DeleteVM", vm_id
        return "UpdateVM", vm_id
    return "GetSubscriptionInfo", ""


def _policies(value: Iterable[ComputePolicy] | None) -> tuple[ComputePolicy, ...]:
    if value is None:
        return ()
    out = tuple(value)
    for policy in out:
        if not isinstance(policy, ComputePolicy):
            raise ValueError(f"compute takes ComputePolicy values; got {policy!r}")
    return out


@attrs.frozen
class ThrottleConfig:
    """Bucket sizes and refill rates (tokens per second) per request class.

    The defaults are Azure Resource Manager's documented limits.
    ``enabled=False`` admits everything but still sends the rate-limit
    headers (with the bucket's full size), as a lightly used subscription does.

    ``compute`` holds Compute's own policies (:data:`DEFAULT_COMPUTE_POLICIES`, applied on
    top of ARM's buckets to ``Microsoft.Compute`` requests); ``compute=()`` or ``None``
    turns Compute throttling off (and its ``x-ms-ratelimit-remaining-resource`` header).
    """

    reads: tuple[int, float] = attrs.field(default=(250, 25.0), converter=_bucket)
    writes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_bucket)
    deletes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_bucket)
    enabled: bool = True
    compute: tuple[ComputePolicy, ...] = attrs.field(
        default=DEFAULT_COMPUTE_POLICIES, converter=_policies
    )

    def compute_policy(self, name: str) -> ComputePolicy | None:
        """The Compute policy called ``name`` (``None`` when not configured)."""
        for policy in self.compute:
            if policy.name.lower() == name.lower():
                return policy
        return None

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
        #: Compute 429s per policy name (``UpdateVM``...).
        self.compute_rejected: dict[str, int] = {}
        self._compute_buckets: dict[tuple[str, str, str], _Bucket] = {}

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

    def _compute_bucket(
        self, key: tuple[str, str, str], refill_per_min: float, cap: int, now: float
    ) -> _Bucket:
        bucket = self._compute_buckets.get(key)
        if bucket is None:
            bucket = self._compute_buckets[key] = _Bucket(cap, refill_per_min / 60.0, now)
        else:
            bucket.advance(now, self.time_scale)
        return bucket

    def admit_compute(
        self, subscription_id: str | None, method: str, path: str
    ) -> tuple[bool, dict[str, str], float, dict[str, Any] | None]:
        """Compute's own throttling for one request: ``(allowed, headers, retry_after, body)``.

        ``headers`` holds ``x-ms-ratelimit-remaining-resource`` for Compute requests (empty
        for others, or with no Compute policies); a refused request gets Compute's 429 body
        (``OperationNotAllowed`` / ``TooManyRequests``) and ``retry_after`` in seconds.
        """
        if not subscription_id or not self.config.compute:
            return True, {}, 0.0, None
        found = compute_policy_of(method, path)
        if found is None:
            return True, {}, 0.0, None
        name, resource = found
        policy = self.config.compute_policy(name)
        if policy is None:
            return True, {}, 0.0, None
        sub = subscription_id.lower()
        with self._lock:
            now = self._clock()
            buckets: list[tuple[str, _Bucket]] = []
            if policy.per_resource is not None and resource:
                refill, cap = policy.per_resource
                buckets.append(
                    (
                        "resource",
                        self._compute_bucket((sub, policy.name, resource), refill, cap, now),
                    )
                )
            sub_bucket = long_bucket = None
            if policy.per_subscription is not None:
                refill, cap = policy.per_subscription
                sub_bucket = self._compute_bucket((sub, policy.name, ""), refill, cap, now)
                buckets.append(("subscription", sub_bucket))
                if policy.long_window:
                    long_bucket = self._compute_bucket(
                        (sub, policy.name, "30min"), refill, max(cap, int(refill * 30)), now
                    )
            empty = [(scope, b) for scope, b in buckets if b.tokens < 1.0]
            allowed = not self.config.enabled or not empty
            if allowed and self.config.enabled:
                for _, b in buckets:
                    b.tokens -= 1.0
                if long_bucket is not None:
                    long_bucket.tokens = max(0.0, long_bucket.tokens - 1.0)
            header = self._compute_header(policy, sub_bucket, long_bucket, buckets)
            headers = {"x-ms-ratelimit-remaining-resource": header}
            if allowed:
                return True, headers, 0.0, None
            self.compute_rejected[policy.name] = self.compute_rejected.get(policy.name, 0) + 1
            scope, bucket = empty[0]
            rate = bucket.refill * self.time_scale
            wait = 3600.0 if rate <= 0 else float(max(1, math.ceil((1.0 - bucket.tokens) / rate)))
            return False, headers, wait, _compute_429(policy.name, bucket.size, scope, wait)

    def _compute_header(
        self,
        policy: ComputePolicy,
        sub_bucket: _Bucket | None,
        long_bucket: _Bucket | None,
        buckets: list[tuple[str, _Bucket]],
    ) -> str:
        main = sub_bucket if sub_bucket is not None else (buckets[0][1] if buckets else None)
        if main is None:
            short = 0
        elif not self.config.enabled:
            short = main.size
        else:
            short = math.floor(main.tokens)
        parts = [f"Microsoft.Compute/{policy.name}3Min;{short}"]
        if long_bucket is not None:
            long = long_bucket.size if not self.config.enabled else math.floor(long_bucket.tokens)
            parts.append(f"Microsoft.Compute/{policy.name}30Min;{long}")
        return ",".join(parts)

    def drain_compute(self, subscription_id: str, policy: str, resource: str = "") -> None:
        """Empty a Compute bucket (the subscription's, or one VM's with ``resource``)."""
        found = self.config.compute_policy(policy)
        if found is None:
            raise ValueError(f"no Compute policy {policy!r} is configured")
        pair = found.per_resource if resource else found.per_subscription
        if pair is None:
            raise ValueError(f"Compute policy {policy!r} has no such bucket")
        with self._lock:
            key = (subscription_id.lower(), found.name, resource.lower().rstrip("/"))
            self._compute_bucket(key, pair[0], pair[1], self._clock()).tokens = 0.0

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
            self._compute_buckets.clear()
            self.compute_rejected.clear()
            for kind in _CLASSES:
                self.rejected[kind] = 0
                self.admitted[kind] = 0

    def __repr__(self) -> str:
        state = "enabled" if self.config.enabled else "disabled"
        return (
            f"Throttle({state}, subscriptions={len({s for s, _ in self._buckets})}, "
            f"rejected={self.rejected})"
        )


def _compute_429(policy: str, allowed: int, scope: str, wait: float) -> dict[str, Any]:
    """Compute's throttling body (errors.json ``compute-429-throttle-docs-example``, with the
    ``error`` wrapper and ``innerError`` that real captures show)."""
    group = f"{policy}3Min"
    start = dt.datetime.now(dt.UTC)
    end = start + dt.timedelta(seconds=wait)
    detail = {
        "operationGroup": group,
        "startTime": start.isoformat(),
        "endTime": end.isoformat(),
        "allowedRequestCount": allowed,
        "measuredRequestCount": allowed + 1,
    }
    return {
        "error": {
            "code": "OperationNotAllowed",
            "message": "The server rejected the request because too many requests have been "
            f"received for this {scope}.",
            "details": [
                {
                    "code": "TooManyRequests",
                    "target": group,
                    "message": json.dumps(detail, separators=(",", ":")),
                }
            ],
            "innerError": {"internalErrorCode": "TooManyRequestsReceived"},
        }
    }
