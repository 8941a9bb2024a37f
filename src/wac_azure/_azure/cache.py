"""The session cache: lookups shared by every reader of one :class:`~wac_azure.AzureSession`.

Values are kept under typed slots: a :class:`CacheSlot` ``[V]`` names one
kind of value (the VM sizes of a location, an NSG's write lock, the service
tags of a region...) and every value stored under it is a ``V``, so readers
get typed values back without casts. :meth:`SessionCache.once` shares one
read between concurrent callers (and, with ``keep``, caches its result for
the session); a failed read is never cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Generic, TypeVar, cast

__all__ = ["CacheSlot", "SessionCache"]

V = TypeVar("V")


class CacheSlot(Generic[V]):
    """One kind of cached value: ``CacheSlot[asyncio.Lock]("nsg lock")``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"CacheSlot({self.name!r})"


class SessionCache:
    """Typed lookups shared for the life of a session (cleared when it closes)."""

    def __init__(self) -> None:
        self._data: dict[tuple[CacheSlot[object], Hashable], object] = {}
        self._inflight: dict[tuple[CacheSlot[object], Hashable], asyncio.Future[object]] = {}

    def get(self, slot: CacheSlot[V], key: Hashable = None) -> V | None:
        """The value under ``slot`` and ``key``, or ``None``."""
        return cast("V | None", self._data.get((cast("CacheSlot[object]", slot), key)))

    def set(self, slot: CacheSlot[V], key: Hashable, value: V) -> None:
        """Store ``value`` under ``slot`` and ``key``."""
        self._data[(cast("CacheSlot[object]", slot), key)] = value

    def setdefault(self, slot: CacheSlot[V], key: Hashable, value: V) -> V:
        """The value under ``slot`` and ``key``; ``value`` stored and returned when absent."""
        return cast("V", self._data.setdefault((cast("CacheSlot[object]", slot), key), value))

    def pop(self, slot: CacheSlot[V], key: Hashable = None) -> V | None:
        """Remove and return the value under ``slot`` and ``key`` (``None`` when absent)."""
        return cast("V | None", self._data.pop((cast("CacheSlot[object]", slot), key), None))

    async def once(
        self,
        slot: CacheSlot[V],
        key: Hashable,
        factory: Callable[[], Awaitable[V]],
        *,
        keep: bool,
    ) -> V:
        """Run ``factory()`` once for concurrent callers sharing ``slot`` and ``key``.

        With ``keep`` the result stays cached for the session; otherwise only
        the read in flight is shared (later callers read afresh). A failed or
        cancelled read is never cached; a caller's cancellation does not
        cancel the read the others wait for.
        """
        k = (cast("CacheSlot[object]", slot), key)
        if keep and k in self._data:
            return cast("V", self._data[k])
        loop = asyncio.get_running_loop()
        running = self._inflight.get(k)
        if running is not None and running.get_loop() is loop:
            return cast("V", await asyncio.shield(running))

        async def run() -> object:
            return await factory()

        task: asyncio.Future[object] = loop.create_task(run())

        def done(t: asyncio.Future[object]) -> None:
            if self._inflight.get(k) is not t:
                return
            del self._inflight[k]
            if keep and not t.cancelled() and t.exception() is None:
                self._data[k] = t.result()

        self._inflight[k] = task
        task.add_done_callback(done)
        return cast("V", await asyncio.shield(task))

    def clear(self) -> None:
        """Forget everything (the session closes)."""
        self._data.clear()
        self._inflight.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[tuple[str, Hashable]]:
        """The ``(slot name, key)`` of every cached value."""
        return ((slot.name, key) for slot, key in self._data)

    def __repr__(self) -> str:
        return f"<SessionCache {len(self._data)} values, {len(self._inflight)} reads in flight>"
