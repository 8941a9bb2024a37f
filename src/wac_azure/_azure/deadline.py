"""Deadlines: run an awaitable for at most ``timeout`` seconds, or raise
:class:`~wac_azure.OperationTimeoutError` saying what did not finish (and that a re-run
picks up where Azure is).

Built on :func:`asyncio.timeout` (Python 3.11), not :func:`asyncio.wait_for`: on
Python 3.10 and 3.11, ``wait_for`` could swallow a cancellation that arrived just as
the awaited call finished (cpython gh-86296, gh-96764), so a cancelled ``enable`` went
on writing. ``asyncio.timeout`` turns only its own expiry into :class:`TimeoutError`;
every other :class:`asyncio.CancelledError` propagates.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

from wac_azure._core.errors import (
    ConfigurationError,
    OperationTimeoutError,
)
from wac_azure._core.validate import check_timeout

T = TypeVar("T")


async def within(coro: Awaitable[T], timeout: float | None, what: str) -> T:
    """Await ``coro`` for at most ``timeout`` seconds (``None``: no bound of its own).

    Past it, :class:`~wac_azure.OperationTimeoutError` saying what did not finish and
    that a re-run picks up where Azure is.
    """
    if timeout is None:
        return await coro
    try:
        check_timeout(timeout)  # the caller's: NaN never expires, inf never ends
    except ConfigurationError:
        if inspect.iscoroutine(coro):
            coro.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    bound = asyncio.timeout(timeout)
    try:
        async with bound:
            return await coro
    except TimeoutError:
        if not bound.expired():
            raise  # a timeout of the call's own, not this deadline
        raise OperationTimeoutError(
            f"{what} did not finish within {timeout:g} s; Azure may still be working on it "
            "(re-run the same call: it picks up where Azure is)"
        ) from None


async def finish_before_cancel(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if the caller is cancelled meanwhile, then cancel.

    For a group of writes that must not be cut in half (the rule changes of one plan): a
    cancellation that arrives while ``aw`` runs waits for it to finish (or fail), then
    propagates as :class:`asyncio.CancelledError`, so what was begun is left whole. A
    second cancellation while waiting propagates at once (``aw`` goes on by itself).
    A deadline (:func:`within`) is a cancellation too: it ends after ``aw`` does.
    """
    task = asyncio.ensure_future(aw)
    # its failure is retrieved even if nobody waits for it any more (a second cancellation)
    task.add_done_callback(_retrieve)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await asyncio.wait([task])
        raise


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
