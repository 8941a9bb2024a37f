"""Client-side pacing against Azure Resource Manager's subscription throttling.

ARM throttles each subscription with token buckets (AZURE_FACTS §6: reads
250 + 25/s, writes 200 + 10/s, deletes 200 + 10/s) and tells the caller how
many tokens are left in ``x-ms-ratelimit-remaining-subscription-reads`` /
``-writes`` / ``-deletes``. Past the limit it answers 429 with
``Retry-After``.

:class:`Pacer` keeps a model of those buckets per subscription and request
class. Before each request :class:`PacingPolicy` (an azure-core policy that
:class:`~wac_azure.AzureSession` installs in every SDK client, after the
retry policy so every attempt is paced) takes a token from the model and
waits when the model would drop below a *reserve* — a share of the bucket
left to other automation using the same subscription. After each answer the
model is brought down to what ARM says is left (other callers spend tokens
too) and up again when ARM has more than the model thought. 429s that still
come are counted, block the subscription's bucket for ``Retry-After`` and
are retried by azure-core's retry policy as usual.

Subscriptions are paced independently: a fleet spread over ten
subscriptions runs ten paces side by side.

**Compute's own buckets** (AZURE_FACTS §6, [CTL]). On top of ARM's, Compute
throttles VM writes ("Update VM": VM PUT/PATCH, extension PUT/DELETE, Run
Command) per VM — 12 in a burst, then 4 a minute — and per subscription —
1,500, then 500 a minute. Such a request also takes a token from the VM's and
the subscription's Update VM model (:class:`ComputeConfig`), so no VM is sent
more writes than its bucket holds. Compute's answers carry
``x-ms-ratelimit-remaining-resource`` (``Microsoft.Compute/PutVM3Min;239,
Microsoft.Compute/PutVM30Min;1199``): the pacer keeps the latest figures per
policy (:attr:`SubscriptionPacer.compute_remaining`) and brings the
subscription's Update VM model down to the smallest of a write's. A Compute
429 (``OperationNotAllowed`` / ``TooManyRequests``) holds only those
buckets, not ARM's.

**Not every 429 is throttling.** Network answers 429 ``RetryableError``
(``RetryableErrorDueToAnotherOperation``, ``ReferencedResourceNotProvisioned``)
when another write holds the same resource (an NSG): that is counted in
``busy``, not ``throttled``, and holds back nothing but that request, which
azure-core retries after its ``Retry-After`` or a short backoff.

Requests waiting for a token leave by *priority*, then in the order they
came: a lower number leaves first. Priorities apply per subscription and
request class (a waiting read never holds back a write). The default is 0;
:func:`pacing_priority` sets another one for the requests a block of code
sends, without passing it through the Azure SDK. Fleets send the
security-rule writes that no install waits for at priority 1, so that
extension PUTs (each starts a minutes-long install) leave first when the
write bucket runs low. A 429's ``Retry-After`` holds back every priority.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import heapq
import itertools
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

from wac_azure._azure.errors import BUSY_429
from wac_azure._core.errors import ConfigurationError
from wac_azure._core.validate import check_count, check_fraction, check_positive

_CLASSES = ("reads", "writes", "deletes")
_SUBSCRIPTION_RE = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
# Below this a wait is float noise: a virtual clock may not even move by it.
_EPSILON = 1e-9

_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar(
    "wac_azure_pacing_priority", default=0
)


@contextlib.contextmanager
def pacing_priority(priority: int) -> Iterator[None]:
    """Pace the requests sent inside the block at ``priority`` (0 = default, lower leaves first).

    The priority is a context variable: it applies to every request the
    current task sends inside the ``with`` block, and to tasks created there.
    It only orders requests that wait for the same subscription's bucket of
    the same class (reads, writes or deletes)::

        with pacing_priority(1):  # nothing waits on these writes: let others go first
            await network.security_rules.begin_create_or_update(...)
    """
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        raise ConfigurationError(
            f"a pacing priority is an int >= 0 (0 leaves first, the default); got {priority!r}"
        )
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def request_class(method: str) -> str:
    """The ARM bucket an HTTP method draws from: ``"reads"``, ``"writes"`` or ``"deletes"``."""
    m = method.upper()
    if m == "DELETE":
        return "deletes"
    if m in ("PUT", "PATCH", "POST"):
        return "writes"
    return "reads"


def _bucket(
    value: tuple[int, float] | tuple[str, str], what: str = "a pacing bucket"
) -> tuple[int, float]:
    """``(size, refill per second)``: an int size >= 1 and a finite refill > 0 (either may
    be a string of digits, as read from a configuration file); NaN, infinities, bools,
    fractional sizes and anything else raise :class:`~wac_azure.ConfigurationError`."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        size, refill = value
        if isinstance(size, str) and size.strip().isdigit():
            size = int(size)
        if isinstance(refill, str):
            refill = float(refill)
        size_i = check_count(size, "size")
        refill_f = check_positive(refill, "refill")
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{what} is (size, refill per second), an integer size >= 1 and a "
            f"finite refill > 0 tokens/s, e.g. (250, 25.0); got {value!r}"
        ) from None
    return (size_i, refill_f)


def _reads(value: tuple[int, float] | tuple[str, str]) -> tuple[int, float]:
    return _bucket(value, "PacingConfig.reads")


def _writes(value: tuple[int, float] | tuple[str, str]) -> tuple[int, float]:
    return _bucket(value, "PacingConfig.writes")


def _deletes(value: tuple[int, float] | tuple[str, str]) -> tuple[int, float]:
    return _bucket(value, "PacingConfig.deletes")


def _per_vm(value: tuple[int, float] | tuple[str, str]) -> tuple[int, float]:
    return _bucket(value, "ComputeConfig.per_vm")


def _per_subscription(value: tuple[int, float] | tuple[str, str]) -> tuple[int, float]:
    return _bucket(value, "ComputeConfig.per_subscription")


@attrs.frozen
class PacingConfig:
    """How the client paces its requests per subscription.

    ``reads`` / ``writes`` / ``deletes`` are ``(bucket size, refill per
    second)`` as ARM documents them. ``reserve`` is the share of each bucket
    (0 to 0.9) the client leaves unused for other automation in the same
    subscription. ``refill_scale`` multiplies the refill rates: only for an
    emulator whose clock is compressed (``ArmEmulator(time_scale=0.1)`` refills
    its buckets 10 times faster: pass ``refill_scale=10``). ``enabled=False``
    turns pacing off (headers and 429s are still counted).
    """

    reads: tuple[int, float] = attrs.field(default=(250, 25.0), converter=_reads)
    writes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_writes)
    deletes: tuple[int, float] = attrs.field(default=(200, 10.0), converter=_deletes)
    reserve: float = 0.05
    refill_scale: float = 1.0
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        check_fraction(self.reserve, "PacingConfig.reserve", low=0.0, high=0.9)
        check_positive(self.refill_scale, "PacingConfig.refill_scale")

    def bucket(self, kind: str) -> tuple[int, float]:
        """``(size, refill per second)`` of a request class."""
        value: tuple[int, float] = getattr(self, kind)
        return value


@attrs.frozen
class ComputeConfig:
    """Compute's "Update VM" buckets ``(size, refill per second)`` ([CTL]).

    ``per_vm`` bounds the writes one VM is sent (12, then 4 a minute);
    ``per_subscription`` those of a subscription's VMs together (1,500, then
    500 a minute). ``enabled=False`` leaves them out.
    """

    per_vm: tuple[int, float] = attrs.field(default=(12, 4 / 60), converter=_per_vm)
    per_subscription: tuple[int, float] = attrs.field(
        default=(1500, 500 / 60), converter=_per_subscription
    )
    enabled: bool = True


#: A Compute write that Compute's "Update VM" policy counts: VM PUT/PATCH, extension
#: PUT/DELETE, Run Command (the action and managed run commands).
_UPDATE_VM_RE = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
    r"virtualmachines/([^/?#]+)(/extensions/[^/?#]+|/runcommand|/runcommands/[^/?#]+)?/?$",
    re.IGNORECASE,
)
_UPDATE_KIND = "compute-update"
#: Network's 429s that mean "resource busy", not throttling (AZURE_FACTS §5–6).
BUSY_CODES = BUSY_429


def update_vm_target(method: str, url: str) -> str | None:
    """The VM id (lower) whose "Update VM" bucket a request draws from, else ``None``."""
    m = method.upper()
    if m not in ("PUT", "PATCH", "DELETE", "POST"):
        return None
    path = url.split("?", 1)[0]
    found = _UPDATE_VM_RE.search(path)
    if found is None:
        return None
    tail = (found.group(2) or "").lower()
    if m == "POST" and tail != "/runcommand":
        return None  # start, restart, deallocate...: other policies
    if m == "DELETE" and not tail:
        return None  # deleting the VM: another policy
    end = found.start(2) if found.group(2) else found.end(1)
    return path[found.start() : end].lower()


def parse_remaining_resource(value: str | None) -> dict[str, int]:
    """``x-ms-ratelimit-remaining-resource`` as ``{policy: remaining}`` (junk skipped).

    ``"Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199"`` →
    ``{"Microsoft.Compute/PutVM3Min": 239, "Microsoft.Compute/PutVM30Min": 1199}``.
    """
    out: dict[str, int] = {}
    for part in str(value or "").split(","):
        name, sep, number = part.strip().rpartition(";")
        if not sep or not name:
            continue
        try:
            out[name.strip()] = int(float(number))
        except ValueError:
            continue
    return out


def is_busy_429(status: int, codes: list[str]) -> bool:
    """Whether a 429 is Network's "another operation holds this resource", not throttling."""
    return status == 429 and any(c in BUSY_CODES for c in codes)


class _Waiter:
    """A request waiting for a token: ordered by (priority, arrival)."""

    __slots__ = ("event", "key", "removed")

    def __init__(self, priority: int, seq: int) -> None:
        self.key = (priority, seq)
        self.event = asyncio.Event()
        self.removed = False

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key


class _Model:
    """The client's estimate of one ARM bucket, and the requests waiting for it.

    ``queue`` is a heap of waiters; cancelled ones stay in it marked
    ``removed`` until they reach the top. Only the head may take a token, and
    at most one waiter (``sleeper``) sleeps at a time: others wait on their
    event until the head changes or the sleeper wakes.
    """

    __slots__ = (
        "blocked_until",
        "floor",
        "in_flight",
        "queue",
        "rate",
        "seq",
        "size",
        "sleeper",
        "stamp",
        "tokens",
        "waiting",
    )

    def __init__(self, size: int, rate: float, reserve: float, now: float) -> None:
        self.size = float(size)
        self.rate = rate
        self.floor = math.floor(size * reserve)
        self.tokens = float(size)
        self.stamp = now
        self.blocked_until = 0.0
        self.in_flight = 0
        self.queue: list[_Waiter] = []
        self.seq = itertools.count()
        self.sleeper: _Waiter | None = None
        self.waiting = 0

    def advance(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token above the reserve may be taken (0: now)."""
        self.advance(now)
        wait = self.blocked_until - now
        if wait > _EPSILON:
            return wait
        need = self.floor + 1.0 - self.tokens
        if need > _EPSILON:
            return need / self.rate
        return 0.0

    def head(self) -> _Waiter | None:
        queue = self.queue
        while queue and queue[0].removed:
            heapq.heappop(queue)
        return queue[0] if queue else None

    def wake_head(self) -> None:
        head = self.head()
        if head is not None:
            head.event.set()


#: Round trips :attr:`SubscriptionPacer.latency` is the shortest of.
LATENCY_SAMPLES = 256
#: A subscription's first round trips, left out of its latency (connection set-up).
LATENCY_WARMUP = 64
#: Latency assumed before any answer came back (seconds).
DEFAULT_LATENCY = 0.1
#: Bounds of a window (requests in flight per subscription and class).
WINDOW_MIN = 16
#: The fewest extension writes a subscription keeps in flight: ARM's write bucket lets
#: 10 a second out after its burst of 200, which 8 writes of 150 ms each outpace five
#: times over (a burst then leaves in 4 s instead of 2); each one in flight can hold a
#: connection (about 0.32 MB, docs/performance.md).
WRITE_WINDOW_MIN = 8
WINDOW_MAX = 256
#: The fewest connections a subscription is given in the session's pool.
CONNECTIONS_PER_SUBSCRIPTION = 8
#: Requests in flight over Little's law's mean: rates and round trips vary.
WINDOW_HEADROOM = 2.0


def window(
    rate: float,
    latency: float | None,
    *,
    headroom: float = WINDOW_HEADROOM,
    minimum: int = WINDOW_MIN,
    maximum: int = WINDOW_MAX,
) -> int:
    """Requests to keep in flight so that ``latency`` does not slow a bucket's ``rate``.

    Little's law: a queue served at ``rate`` per second with requests that take
    ``latency`` seconds each holds ``rate × latency`` requests on average; fewer in
    flight and the latency, not the bucket, sets the pace (16 writes in flight at 2 s
    each send 8 a second, below ARM's refill of 10). ``headroom`` covers the spread of
    round trips and the bucket's burst; the result is kept within
    ``minimum``..``maximum`` (each request in flight holds a connection).
    ``latency=None`` (nothing measured yet) assumes :data:`DEFAULT_LATENCY`.
    """
    if not rate > 0:
        raise ConfigurationError(f"a window needs a rate > 0 requests/s, got {rate!r}")
    if minimum < 1 or maximum < minimum:
        raise ConfigurationError(
            f"a window needs 1 <= minimum <= maximum, got {minimum}..{maximum}"
        )
    seconds = DEFAULT_LATENCY if latency is None or not latency >= 0 else latency
    return max(minimum, min(maximum, math.ceil(rate * seconds * headroom)))


class WindowGate:
    """A semaphore whose size is asked each time a slot frees (``capacity()``).

    Requests leave in the order they came. The fleet sizes its write slots per
    subscription with it (:meth:`SubscriptionPacer.write_window`), and the session its
    requests in flight (and so its connections) over every subscription.
    """

    def __init__(self, capacity: Callable[[], int]) -> None:
        self._capacity = capacity
        self.in_use = 0
        #: The most slots held at once.
        self.peak = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def capacity(self) -> int:
        """Slots now (at least 1)."""
        return max(1, int(self._capacity()))

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        """Take a slot, waiting for one in order of arrival."""
        if not self._waiters and self.in_use < self.capacity:
            self._take()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # granted as it was cancelled: hand the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        """Give a slot back and let the next waiters in (as many as there is room for)."""
        self.in_use = max(0, self.in_use - 1)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.capacity:
            fut = self._waiters.popleft()
            if not fut.done():
                self._take()
                fut.set_result(None)

    async def __aenter__(self) -> WindowGate:
        await self.acquire()
        return self

    async def __aexit__(self, *args: object) -> None:
        self.release()


class SubscriptionPacer:
    """The pace of one subscription: a bucket model per request class and counters.

    ``requests`` and ``throttled`` (429s seen) count per class; ``waited`` is
    the total seconds requests were held back: per class one waiter sleeps at
    a time for the whole queue, so it is the time the class's queue was held
    back (summed over classes), not the sum of every request's wait.
    """

    def __init__(
        self,
        subscription_id: str,
        config: PacingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        compute: ComputeConfig | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.config = config
        self.compute = compute if compute is not None else ComputeConfig()
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._models = {
            kind: _Model(
                config.bucket(kind)[0],
                config.bucket(kind)[1] * config.refill_scale,
                config.reserve,
                now,
            )
            for kind in _CLASSES
        }
        size, rate = self.compute.per_subscription
        self._models[_UPDATE_KIND] = _Model(size, rate * config.refill_scale, config.reserve, now)
        self.requests: dict[str, int] = dict.fromkeys(_CLASSES, 0)
        self.throttled: dict[str, int] = dict.fromkeys(_CLASSES, 0)
        #: 429s that said "another operation holds this resource" (not throttling).
        self.busy: dict[str, int] = dict.fromkeys(_CLASSES, 0)
        #: Compute "Update VM" writes sent, and 429s Compute answered them.
        self.compute_writes = 0
        self.compute_throttled = 0
        #: The latest ``x-ms-ratelimit-remaining-resource`` figures, per policy.
        self.compute_remaining: dict[str, int] = {}
        self.waited = 0.0
        #: The measured round trip of a request (seconds; ``None`` until one answer came
        #: back): the shortest of the last :data:`LATENCY_SAMPLES`. The shortest, not the
        #: mean: a busy client's event loop adds its own delay to every round trip it
        #: measures, and windows sized from that delay would let more requests in flight,
        #: busying it further. Little's law sizes the windows from it.
        self.latency: float | None = None
        self._samples: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)
        self._observed = 0
        #: This subscription's requests in flight (:meth:`request_window`), held by
        #: :class:`InFlightPolicy` when its session sizes its window itself.
        self.in_flight = WindowGate(self.request_window)

    def observe_latency(self, seconds: float) -> None:
        """Fold one request's round trip (sent to answered, pacing waits excluded) in.

        The subscription's first :data:`LATENCY_WARMUP` round trips are left out: they
        open the connections (a TLS handshake each, all at once), which later requests
        reuse, and would make the windows too wide at the start of every run.
        """
        if not seconds >= 0:
            return
        self._observed += 1
        if self._observed <= LATENCY_WARMUP:
            return
        self._samples.append(seconds)
        self.latency = min(self._samples)

    def _rate(self, kind: str) -> float:
        return self.config.bucket(kind)[1] * self.config.refill_scale

    def connection_need(self) -> int:
        """Requests in flight that keep pace with ARM's read and write buckets together."""
        rate = self._rate("reads") + self._rate("writes")
        return window(rate, self.latency, minimum=CONNECTIONS_PER_SUBSCRIPTION)

    def request_window(self) -> int:
        """Requests in flight for this subscription: what its read and write buckets need
        together at the measured latency (:meth:`connection_need`), and never fewer than
        its extension writes may have in flight (:meth:`write_window`): 11 at ARM's
        buckets and 150 ms round trips.

        Beyond it a request waits for a slot before it takes a connection: the session's
        pool keeps, per host, as many connections as were ever in flight to it at once,
        and one subscription's read burst (250 tokens at once) would otherwise take the
        whole session's window, and as many connections, to itself.
        """
        return max(self.write_window(), self.connection_need())

    def write_window(self) -> int:
        """Writes in flight that keep pace with ARM's write bucket at the measured latency."""
        return window(self._rate("writes"), self.latency, minimum=WRITE_WINDOW_MIN)

    def read_window(self) -> int:
        """Reads in flight that keep pace with ARM's read bucket at the measured latency."""
        return window(self._rate("reads"), self.latency)

    def _model(self, kind: str) -> _Model:
        model = self._models.get(kind)
        if model is None:  # a VM's Update VM bucket, made on first use
            size, rate = self.compute.per_vm
            model = self._models[kind] = _Model(
                size, rate * self.config.refill_scale, 0.0, self._clock()
            )
        return model

    def tokens(self, kind: str) -> float:
        """The model's tokens left now in ``kind``'s bucket (a class, ``"compute-update"``
        or ``"compute-update:<vm id>"``)."""
        model = self._model(kind)
        model.advance(self._clock())
        return model.tokens

    def waiting(self, kind: str) -> int:
        """Requests of ``kind`` waiting for a token now."""
        return self._models[kind].waiting

    async def acquire(self, kind: str, priority: int = 0) -> None:
        """Take one token of ``kind``, waiting while the bucket is at its reserve.

        Waiting requests leave by ``priority`` (lower first), then in the order
        they came. A request that finds nobody waiting and a token above the
        reserve leaves at once; one that finds others waiting queues, and leaves
        at once only if it comes before all of them and a token is there.
        Cancelled while waiting, it takes nothing and the next one moves up.
        """
        model = self._model(kind)
        if kind in self.requests:
            self.requests[kind] += 1
        if not self.config.enabled:
            model.in_flight += 1
            return
        if model.waiting == 0 and model.wait(self._clock()) <= 0:
            model.tokens -= 1.0
            model.in_flight += 1
            return
        me = _Waiter(priority, next(model.seq))
        heapq.heappush(model.queue, me)
        model.waiting += 1
        try:
            while True:
                # Clear first, then look: a wake-up after the look is not lost,
                # one before it is stale (spurious wake-ups just loop).
                me.event.clear()
                if model.head() is me:
                    wait = model.wait(self._clock())
                    if wait <= 0:
                        break
                    if model.sleeper is None:
                        model.sleeper = me
                        self.waited += wait
                        try:
                            await self._sleep(wait)
                        finally:
                            model.sleeper = None
                            # The head may have changed while we slept (a
                            # higher priority came) and waits for us.
                            model.wake_head()
                        continue
                await me.event.wait()
        except BaseException:
            me.removed = True
            model.waiting -= 1
            model.wake_head()
            raise
        # Granted: no await from here on, so a cancel cannot strand the token.
        heapq.heappop(model.queue)
        me.removed = True
        model.waiting -= 1
        model.tokens -= 1.0
        model.in_flight += 1
        model.wake_head()

    def observe(
        self,
        kind: str,
        *,
        status: int,
        remaining: int | None,
        retry_after: float | None,
        busy: bool = False,
    ) -> None:
        """Update the model from one answer (called once per request taken).

        ``busy`` marks a 429 that is not throttling (Network's ``RetryableError``:
        another write holds the resource): counted apart, it holds nothing back.
        """
        model = self._model(kind)
        model.in_flight = max(0, model.in_flight - 1)
        now = self._clock()
        model.advance(now)
        if status == 429 and busy:
            if kind in self.busy:
                self.busy[kind] += 1
            return
        if status == 429:
            if kind in self.throttled:
                self.throttled[kind] += 1
            model.tokens = 0.0
            delay = retry_after if retry_after is not None and retry_after > 0 else 1.0
            model.blocked_until = max(model.blocked_until, now + delay)
            return
        if remaining is None:
            return
        if remaining < model.tokens:
            # Someone else spends from this bucket too (or ARM refills slower).
            model.tokens = float(remaining)
        else:
            # ARM has more than the model thought; requests still in flight
            # may not have reached it yet, so count them as spent.
            estimate = float(remaining - model.in_flight)
            if estimate > model.tokens:
                model.tokens = min(model.size, estimate)

    @property
    def total_throttled(self) -> int:
        """429s seen for this subscription, all classes (Compute's included)."""
        return sum(self.throttled.values()) + self.compute_throttled

    @property
    def total_busy(self) -> int:
        """429s that said another operation holds the resource (not throttling)."""
        return sum(self.busy.values())

    async def acquire_update_vm(self, vm_id: str, priority: int = 0) -> None:
        """Take a token from the VM's and the subscription's Compute "Update VM" buckets."""
        self.compute_writes += 1
        if not self.compute.enabled:
            return
        await self.acquire(f"{_UPDATE_KIND}:{vm_id.lower()}", priority)
        try:
            await self.acquire(_UPDATE_KIND, priority)
        except BaseException:
            self.observe(
                f"{_UPDATE_KIND}:{vm_id.lower()}", status=0, remaining=None, retry_after=None
            )
            raise

    def observe_update_vm(
        self, vm_id: str, *, status: int, headers: Any, retry_after: float | None, codes: list[str]
    ) -> None:
        """Update Compute's models from the answer to an Update VM write."""
        figures = parse_remaining_resource(headers.get("x-ms-ratelimit-remaining-resource"))
        self.compute_remaining.update(figures)
        if not self.compute.enabled:
            return
        compute_429 = status == 429 and any(
            c in ("operationnotallowed", "toomanyrequests") for c in codes
        )
        if compute_429:
            self.compute_throttled += 1
        remaining = min(figures.values()) if figures else None
        vm_kind = f"{_UPDATE_KIND}:{vm_id.lower()}"
        self.observe(
            vm_kind, status=429 if compute_429 else 200, remaining=None, retry_after=retry_after
        )
        self.observe(
            _UPDATE_KIND,
            status=429 if compute_429 else 200,
            remaining=remaining,
            retry_after=retry_after,
        )

    def observe_remaining(self, headers: Any) -> None:
        """Keep Compute's ``x-ms-ratelimit-remaining-resource`` figures of any answer."""
        figures = parse_remaining_resource(headers.get("x-ms-ratelimit-remaining-resource"))
        if figures:
            self.compute_remaining.update(figures)

    def __repr__(self) -> str:
        return (
            f"SubscriptionPacer({self.subscription_id}, requests={self.requests}, "
            f"throttled={self.throttled}, waited={self.waited:.1f}s)"
        )


class Pacer:
    """Per-subscription pacers, created on first use, sharing one :class:`PacingConfig`."""

    def __init__(
        self,
        config: PacingConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        compute: ComputeConfig | None = None,
    ) -> None:
        self.config = config if config is not None else PacingConfig()
        self.compute = compute if compute is not None else ComputeConfig()
        self._clock = clock
        self._sleep = sleep
        self._subs: dict[str, SubscriptionPacer] = {}

    def subscription(self, subscription_id: str) -> SubscriptionPacer:
        """The pacer of one subscription (case-insensitive)."""
        key = subscription_id.lower()
        pacer = self._subs.get(key)
        if pacer is None:
            pacer = self._subs[key] = SubscriptionPacer(
                key, self.config, clock=self._clock, sleep=self._sleep, compute=self.compute
            )
        return pacer

    def clock(self) -> float:
        """The pacer's clock (the transport's, if it has one)."""
        return self._clock()

    @property
    def subscriptions(self) -> dict[str, SubscriptionPacer]:
        """Every subscription paced so far (a copy)."""
        return dict(self._subs)

    @property
    def throttled(self) -> int:
        """429s seen, over every subscription and class (not the "resource busy" ones)."""
        return sum(p.total_throttled for p in self._subs.values())

    @property
    def busy(self) -> int:
        """Network's "another operation holds this resource" 429s (not throttling)."""
        return sum(p.total_busy for p in self._subs.values())

    def connection_window(self, minimum: int = WINDOW_MIN, maximum: int = 256) -> int:
        """Requests in flight for every subscription paced so far to keep its pace (and so
        the connections a session's pool needs): per subscription, Little's law on its
        read and write buckets' refill together at its measured latency (at least
        :data:`CONNECTIONS_PER_SUBSCRIPTION`), summed, within ``minimum``..``maximum``.
        Bursts beyond it wait for a free slot, not for a new connection."""
        check_count(minimum, "minimum")
        check_count(maximum, "maximum", minimum=minimum)
        need = sum(p.connection_need() for p in self._subs.values())
        return max(minimum, min(maximum, need))

    def requests(self, kind: str | None = None) -> int:
        """Requests sent (all classes, or ``"reads"``/``"writes"``/``"deletes"``)."""
        kinds = _CLASSES if kind is None else (kind,)
        return sum(p.requests[k] for p in self._subs.values() for k in kinds)

    def __repr__(self) -> str:
        return f"Pacer(subscriptions={len(self._subs)}, throttled={self.throttled})"


def _retry_after(headers: Any) -> float | None:
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return float(value) / 1000.0
            except ValueError:
                pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _remaining(headers: Any, kind: str) -> int | None:
    value = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


class PacingPolicy(AsyncHTTPPolicy[Any, Any]):
    """An azure-core policy that paces each request through a :class:`Pacer`.

    Install it in ``per_retry_policies`` (as :class:`~wac_azure.AzureSession`
    does) so that every attempt, retries and long-running-operation polls
    included, takes a token. Requests outside a subscription pass unpaced.
    Each request waits at the priority :func:`pacing_priority` set (default 0).
    """

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self.pacer = pacer

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http_request = request.http_request
        found = _SUBSCRIPTION_RE.search(http_request.url.split("?", 1)[0])
        if found is None:
            return await self.next.send(request)
        sub = self.pacer.subscription(found.group(1))
        kind = request_class(http_request.method)
        priority = _PRIORITY.get()
        vm_id = update_vm_target(http_request.method, http_request.url)
        if vm_id is not None:
            await sub.acquire_update_vm(vm_id, priority)
        try:
            await sub.acquire(kind, priority)
        except BaseException:
            if vm_id is not None:
                sub.observe_update_vm(vm_id, status=0, headers={}, retry_after=None, codes=[])
            raise
        sent = self.pacer.clock()
        try:
            response = await self.next.send(request)
        except BaseException:
            sub.observe(kind, status=0, remaining=None, retry_after=None)
            if vm_id is not None:
                sub.observe_update_vm(vm_id, status=0, headers={}, retry_after=None, codes=[])
            raise
        gate_wait = request.context.get(GATE_WAIT_KEY, 0.0)
        sub.observe_latency(self.pacer.clock() - sent - gate_wait)
        http_response = response.http_response
        headers = http_response.headers
        status = http_response.status_code
        codes = _codes_of(http_response) if status == 429 else []
        retry_after = _retry_after(headers)
        compute_429 = status == 429 and any(
            c in ("operationnotallowed", "toomanyrequests") for c in codes
        )
        if vm_id is not None:
            sub.observe_update_vm(
                vm_id, status=status, headers=headers, retry_after=retry_after, codes=codes
            )
        else:
            sub.observe_remaining(headers)
        sub.observe(
            kind,
            # a Compute 429 holds Compute's buckets (above), not ARM's
            status=200 if compute_429 and vm_id is not None else status,
            remaining=_remaining(headers, kind),
            retry_after=retry_after,
            busy=is_busy_429(status, codes),
        )
        return response


def _codes_of(http_response: Any) -> list[str]:
    """ARM error codes of an answer's body, top-level and ``details``, lower-cased."""
    try:
        body = json.loads(http_response.text() or "null")
    except Exception:  # not loaded (streamed), not JSON: no codes
        return []
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    codes: list[str] = []
    stack = [error]
    while stack and len(codes) < 32:
        item = stack.pop(0)
        if not isinstance(item, dict):
            continue
        code = item.get("code")
        if code:
            codes.append(str(code).lower())
        details = item.get("details")
        if isinstance(details, list):
            stack.extend(details)
    return codes


#: Where :class:`InFlightPolicy` leaves, in a request's pipeline context, the seconds
#: it waited for a slot (so that :class:`PacingPolicy` measures the round trip alone).
GATE_WAIT_KEY = "wac_azure_gate_wait"


class InFlightPolicy(AsyncHTTPPolicy[Any, Any]):
    """An azure-core policy that holds a :class:`WindowGate` slot while a request is sent.

    :class:`~wac_azure.AzureSession` installs one gate in every client, after
    :class:`PacingPolicy`: the session's requests in flight, and so the connections
    its one pool opens, stay within the gate whatever the number of clients and
    subscriptions. With a ``pacer``, a request to a subscription first takes a slot of
    that subscription's own gate (:meth:`SubscriptionPacer.request_window`).
    """

    def __init__(
        self,
        gate: WindowGate,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__()
        self.gate = gate
        self._clock = clock
        self.pacer = pacer

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        start = self._clock()
        found = None
        if self.pacer is not None:
            found = _SUBSCRIPTION_RE.search(request.http_request.url.split("?", 1)[0])
        if found is None or self.pacer is None:
            async with self.gate:
                request.context[GATE_WAIT_KEY] = self._clock() - start
                return await self.next.send(request)
        async with self.pacer.subscription(found.group(1)).in_flight, self.gate:
            request.context[GATE_WAIT_KEY] = self._clock() - start
            return await self.next.send(request)
