"""Fleets past one process: subscription shards in worker processes.

ARM and Compute throttle each subscription on its own (AZURE_FACTS §6), so a
subscription is the natural unit to hand to another process: shards share no
bucket, no NSG lock (an NSG lives in one subscription) and no cache that
matters. :func:`run_sharded` splits a run's subscriptions into ``processes``
shards (balanced by VM count), runs each in a worker process of its own
(``concurrent.futures.ProcessPoolExecutor``, spawned: no event loop is
forked), forwards every worker's progress events to the caller's callback
through one queue, and merges the workers' results
(:meth:`FleetResult.to_dict` / :meth:`FleetResult.from_dict` /
:meth:`FleetResult.merge`, plus each outcome's error and report when they
pickle).

Workers build their own :class:`~wac_azure.AzureSession` with a *session
factory*: a picklable callable, called in the worker with the shard's
subscription ids, returning a session. :class:`SessionFactory` is one, made
of the session's options and a credential (an instance that pickles, or a
module-level callable that makes one, such as the class
``azure.identity.aio.DefaultAzureCredential`` itself).

A shard whose worker fails (its factory raised, its process died) fails its
own VMs with the cause; the other shards carry on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import pickle
import queue as queue_module
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from wac_azure._azure.pacing import PacingConfig
from wac_azure._azure.retry import RetryConfig
from wac_azure._azure.session import AzureSession
from wac_azure._core.errors import ConfigurationError, WacAzureError
from wac_azure._core.ids import VmTarget
from wac_azure._core.progress import (
    ProgressCallback,
    ProgressEvent,
    ProgressStage,
    emit,
)
from wac_azure._core.validate import check_count, check_seconds
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

_log = logging.getLogger(__name__)

#: Seconds the parent waits past the run's ``timeout`` for a worker's answer.
GRACE = 60.0

_TERMINAL = frozenset({ProgressStage.DONE, ProgressStage.FAILED, ProgressStage.SKIPPED})


class ShardError(WacAzureError):
    """A shard's worker process failed as a whole (its session factory raised, or the
    process died); every VM of the shard is failed with it."""


def _credential(value: Any) -> AsyncTokenCredential:
    made: AsyncTokenCredential = value if hasattr(value, "get_token") else value()
    return made


@attrs.frozen
class SessionFactory:
    """How a worker process builds its :class:`~wac_azure.AzureSession`: picklable.

    ``credential`` is an async ``TokenCredential`` that pickles, or a zero-argument
    callable defined at module level that returns one (the class
    ``azure.identity.aio.DefaultAzureCredential``, or
    ``functools.partial(ClientSecretCredential, tenant, client_id, secret)``): most
    azure-identity credentials hold locks and do not pickle, their classes do. The
    other fields are :class:`~wac_azure.AzureSession`'s options (a ``transport``
    cannot cross processes, so there is none: each worker has its own connection
    pool). Called with the shard's subscription ids (which it may use to choose a
    credential), it returns a new session::

        factory = SessionFactory(DefaultAzureCredential)
        result = await enable_many(session, targets, processes=4, session_factory=factory)

    :meth:`of` makes one from a session whose credential pickles.
    """

    credential: AsyncTokenCredential | Callable[[], AsyncTokenCredential]
    base_url: str | None = None
    cloud: str = "AZURE_PUBLIC_CLOUD"
    connection_verify: bool | str = True
    polling_interval: float | None = None
    retry: RetryConfig | None = None
    pacing: PacingConfig | None = None
    connection_limit: int | None = None
    client_kwargs: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        # checked here, in the caller's process, not first in a worker
        if self.polling_interval is not None:
            check_seconds(self.polling_interval, "polling_interval", zero=True)
        if self.connection_limit is not None:
            check_count(self.connection_limit, "connection_limit")

    @classmethod
    def of(
        cls,
        session: AzureSession,
        credential: AsyncTokenCredential | Callable[[], AsyncTokenCredential] | None = None,
    ) -> SessionFactory:
        """A factory for sessions like ``session`` (its options; its credential unless
        ``credential`` is given). Raises :class:`~wac_azure.ConfigurationError` when the
        session was given a ``transport`` (it cannot cross processes)."""
        if not session.own_transport:
            raise ConfigurationError(
                "this AzureSession was built with transport=...: a transport cannot cross "
                "processes; pass session_factory=SessionFactory(credential, base_url=...)"
            )
        options = dict(session.options)
        cloud = options.pop("cloud")
        return cls(
            credential=credential if credential is not None else session.credential,
            cloud=str(getattr(cloud, "value", cloud)),
            **options,
        )

    def __call__(self, subscriptions: Sequence[str] = ()) -> AzureSession:
        """A new session (in the worker), with a credential of its own."""
        return AzureSession(
            _credential(self.credential),
            base_url=self.base_url,
            cloud=self.cloud,
            connection_verify=self.connection_verify,
            polling_interval=self.polling_interval,
            retry=self.retry,
            pacing=self.pacing,
            connection_limit=self.connection_limit,
            client_kwargs=dict(self.client_kwargs),
        )


#: What a worker runs: enable_many or disable_many.
Work = Callable[..., Awaitable[FleetResult]]


def check_processes(processes: int | None) -> int:
    """``processes`` as a positive int (None: 1). Raises :class:`ConfigurationError`."""
    if processes is None:
        return 1
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigurationError(
            f"processes must be a positive integer (1: this process only), got {processes!r}"
        )
    return processes


def shard(targets: Sequence[VmTarget], processes: int) -> list[list[VmTarget]]:
    """Split targets into at most ``processes`` shards of whole subscriptions, balanced by
    VM count (largest subscriptions first, each to the lightest shard); each shard keeps
    its targets in the order given."""
    subs: dict[str, list[VmTarget]] = {}
    for t in targets:
        subs.setdefault(t.subscription_id.lower(), []).append(t)
    n = max(1, min(processes, len(subs)))
    loads = [0] * n
    owner: dict[str, int] = {}
    for sub, members in sorted(subs.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        i = loads.index(min(loads))
        owner[sub] = i
        loads[i] += len(members)
    shards: list[list[VmTarget]] = [[] for _ in range(n)]
    for t in targets:
        shards[owner[t.subscription_id.lower()]].append(t)
    return [s for s in shards if s]


# ============================================================================ the worker

_EVENTS: Any = None  # the progress queue of this worker process (set by _init_worker)


def _init_worker(events: Any) -> None:
    global _EVENTS
    _EVENTS = events


def _forward(event: ProgressEvent) -> None:
    if _EVENTS is not None:
        _EVENTS.put(event)


def _run_shard(
    work: Work,
    factory: Callable[[Sequence[str]], AzureSession],
    ids: list[str],
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], dict[int, bytes], dict[str, float]]:
    """In the worker: run ``work`` on the shard; its result as the merge format, the
    outcomes' errors and reports that pickle, and the worker's peak RSS and CPU."""
    targets = [VmTarget.parse(i) for i in ids]
    subs = tuple(dict.fromkeys(t.subscription_id for t in targets))

    async def main() -> FleetResult:
        session = factory(subs)
        try:
            async with session:
                return await work(session, targets, progress=_forward, **kwargs)
        finally:
            # the worker's own copy (unpickled or made by the factory): close it
            close = getattr(session.credential, "close", None)
            if close is not None:
                await close()

    try:
        result = asyncio.run(main())
    finally:
        if _EVENTS is not None:
            # flush this worker's events into the pipe before its answer goes back, so
            # that the parent sees them before it learns the shard ended
            _EVENTS.close()
            _EVENTS.join_thread()
    extras: dict[int, bytes] = {}
    for i, o in enumerate(result.outcomes):
        if o.error is None and o.report is None:
            continue
        try:
            extras[i] = pickle.dumps((o.error, o.report))
        except Exception:  # an error holding something that does not pickle
            _log.debug("the outcome of %s does not pickle", o.target.name, exc_info=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"rss_mb": usage.ru_maxrss / 1024.0, "cpu": usage.ru_utime + usage.ru_stime}
    return result.to_dict(), extras, stats


def _rebuild(data: dict[str, Any], extras: dict[int, bytes]) -> FleetResult:
    result = FleetResult.from_dict(data)
    if not extras:
        return result
    outcomes = list(result.outcomes)
    for i, blob in extras.items():
        try:
            error, report = pickle.loads(blob)
        except Exception:  # a class the parent cannot load: the message stays
            continue
        outcomes[i] = attrs.evolve(outcomes[i], error=error, report=report)
    return attrs.evolve(result, outcomes=tuple(outcomes))


# ============================================================================ the parent


def _failed(result_of: Sequence[VmTarget], operation: str, exc: BaseException) -> FleetResult:
    subs = sorted({t.subscription_id for t in result_of})
    err = ShardError(
        f"the worker process for subscription(s) {', '.join(subs)} failed: "
        f"{type(exc).__name__}: {exc}"
    )
    err.__cause__ = exc
    return FleetResult(
        operation=operation,
        outcomes=tuple(
            VmOutcome(t, OutcomeStatus.FAILED, message=str(err), error=err) for t in result_of
        ),
        subscriptions=len(subs),
    )


async def run_sharded(
    work: Work,
    targets: Sequence[VmTarget],
    *,
    operation: str,
    processes: int,
    factory: Callable[[Sequence[str]], AzureSession],
    progress: ProgressCallback | None,
    timeout: float,
    kwargs: dict[str, Any],
) -> FleetResult:
    """Run ``work`` (enable_many or disable_many) over ``targets`` in up to ``processes``
    worker processes, one shard of subscriptions each; one progress stream; one result."""
    try:
        pickle.dumps(factory)
    except Exception as exc:
        raise ConfigurationError(
            f"processes>1 needs a session factory that pickles, to build each worker's "
            f"session ({type(exc).__name__}: {exc}); pass session_factory=SessionFactory("
            "DefaultAzureCredential, base_url=...) or a module-level function"
        ) from None
    started = time.monotonic()
    shards = shard(targets, processes)
    total = len(targets)
    ctx = multiprocessing.get_context("spawn")
    events: Any = ctx.Queue()
    loop = asyncio.get_running_loop()
    terminal: set[VmTarget] = set()

    def deliver(event: ProgressEvent) -> None:
        if event.stage in _TERMINAL:
            terminal.add(event.target)
        emit(progress, attrs.evolve(event, total=total))

    def drain() -> None:
        while True:
            try:
                item = events.get(timeout=0.5)
            except queue_module.Empty:
                continue
            if item is None:
                return
            loop.call_soon_threadsafe(deliver, item)

    drainer = loop.run_in_executor(None, drain)
    pools: list[concurrent.futures.ProcessPoolExecutor] = []
    futures: list[asyncio.Future[Any] | None] = []
    unstarted: dict[int, BaseException] = {}
    results: list[FleetResult] = []
    try:
        for part in shards:
            try:
                pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(events,)
                )
                pools.append(pool)
                ids = [t.resource_id for t in part]
                futures.append(
                    asyncio.wrap_future(pool.submit(_run_shard, work, factory, ids, kwargs))
                )
            except Exception as exc:  # no worker process (a daemonic parent, no resources)
                _log.warning("could not start a worker for %d VMs: %s", len(part), exc)
                unstarted[len(futures)] = exc
                futures.append(None)
        running = [f for f in futures if f is not None]
        pending: set[asyncio.Future[Any]] = set()
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout + GRACE)
        for i, (fut, part) in enumerate(zip(futures, shards, strict=True)):
            if fut is None:
                results.append(_failed(part, operation, unstarted[i]))
                continue
            if fut in pending:
                results.append(_failed(part, operation, TimeoutError("no answer in time")))
                continue
            failure = fut.exception()
            if failure is not None:
                _log.warning("a shard of %d VMs failed: %s", len(part), failure)
                results.append(_failed(part, operation, failure))
                continue
            data, extras, stats = fut.result()
            _log.info(
                "shard of %d VMs: peak RSS %.0f MB, CPU %.1f s",
                len(part),
                stats["rss_mb"],
                stats["cpu"],
            )
            results.append(_rebuild(data, extras))
    finally:
        for pool in pools:
            if any(f is not None and not f.done() for f in futures):
                # cancelled or timed out: stop the workers (a rule PUT already sent is
                # ARM's to finish; a re-run picks up what is left)
                workers = getattr(pool, "_processes", None) or {}
                for proc in list(workers.values()):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        events.put(None)
        await drainer
        events.close()
    merged = FleetResult.merge(results, order=targets, elapsed=time.monotonic() - started)
    for o in merged.outcomes:  # the failed shards' VMs: their terminal event, last
        if o.target not in terminal:
            emit(progress, ProgressEvent(o.target, ProgressStage.FAILED, total, o.reason))
    return merged
