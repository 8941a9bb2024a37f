"""One operation per VM in this process: the locks :func:`~wac_azure.enable` and
:func:`~wac_azure.enable_many` / :func:`~wac_azure.disable_many` hold on each VM.

Per event loop (an asyncio lock belongs to one loop) and per VM id (lower case), with
the number of holders and waiters of each, so that an idle VM's lock is dropped. A
fleet takes its VMs' locks in one sorted order, so two fleets (or a fleet and an
``enable``, which holds one lock) never wait on each other in a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterable

import attrs

from wac_azure._core.ids import VmTarget


@attrs.define
class _VmLock:
    lock: asyncio.Lock = attrs.Factory(asyncio.Lock)
    users: int = 0


#: The locks of the VMs in use, per event loop.
VM_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _VmLock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def vm_lock(t: VmTarget) -> AsyncIterator[None]:
    """Hold the process-wide lock of ``t``'s VM (on this event loop) for the block.

    Every :func:`~wac_azure.enable` of one VM in this process, from any session, runs
    inside it, one after the other: concurrent callers share one operation (one salt,
    one extension write), as the second reads what the first wrote.
    """
    locks = VM_LOCKS.setdefault(asyncio.get_running_loop(), {})
    key = t.resource_id.lower()
    entry = locks.setdefault(key, _VmLock())
    entry.users += 1
    try:
        async with entry.lock:
            yield
    finally:
        entry.users -= 1
        if entry.users == 0 and locks.get(key) is entry:
            del locks[key]


@contextlib.asynccontextmanager
async def vm_locks(targets: Iterable[VmTarget]) -> AsyncIterator[None]:
    """Hold the locks of all ``targets`` for the block (a fleet run): taken in sorted
    order, released together when the block ends (or is cancelled)."""
    unique = {t.resource_id.lower(): t for t in targets}
    async with contextlib.AsyncExitStack() as stack:
        for key in sorted(unique):
            await stack.enter_async_context(vm_lock(unique[key]))
        yield
