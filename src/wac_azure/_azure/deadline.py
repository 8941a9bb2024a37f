"""Deadlines: run an awaitable for at most ``timeout`` seconds, or raise
:class:`~wac_azure.OperationTimeoutError` saying what did not finish (and that a re-run
picks up where Azure is)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

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
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise OperationTimeoutError(
            f"{what} did not finish within {timeout:g} s; Azure may still be working on it "
            "(re-run the same call: it picks up where Azure is)"
        ) from None
