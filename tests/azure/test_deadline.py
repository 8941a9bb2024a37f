"""The deadline helpers: within() relabels only its own expiry; cancellations propagate."""

from __future__ import annotations

import asyncio

import pytest

from wac_azure import OperationTimeoutError
from wac_azure._azure.deadline import finish_before_cancel, within


async def test_within_turns_its_own_expiry_into_operation_timeout() -> None:
    with pytest.raises(OperationTimeoutError, match=r"the example did not finish within 0\.01"):
        await within(asyncio.sleep(5), 0.01, "the example")


async def test_within_keeps_a_timeout_of_the_call_itself() -> None:
    async def inner() -> None:
        raise TimeoutError("the call's own")

    with pytest.raises(TimeoutError, match="the call's own") as info:
        await within(inner(), 5, "the example")
    assert not isinstance(info.value, OperationTimeoutError)


async def test_a_cancellation_inside_within_propagates() -> None:
    task = asyncio.ensure_future(within(asyncio.sleep(5), 5, "the example"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_that_meets_a_finishing_call_is_not_swallowed() -> None:
    """asyncio.wait_for on Python 3.11 returned the result of a call that finished in the
    same step as the cancellation (cpython gh-86296): the caller never saw it."""
    results = []
    for _ in range(50):
        inner_done = asyncio.get_running_loop().create_future()

        async def call(fut: asyncio.Future[None] = inner_done) -> str:
            await fut
            return "done"

        task = asyncio.ensure_future(within(call(), 5, "the example"))
        await asyncio.sleep(0)
        inner_done.set_result(None)  # the call finishes ...
        task.cancel()  # ... in the same step as the cancellation
        try:
            await task
            results.append("swallowed")
        except asyncio.CancelledError:
            results.append("cancelled")
    assert set(results) == {"cancelled"}


async def test_finish_before_cancel_lets_the_writes_finish_then_cancels() -> None:
    written: list[int] = []

    async def writes() -> str:
        for i in range(3):
            await asyncio.sleep(0.01)
            written.append(i)
        return "all"

    task = asyncio.ensure_future(finish_before_cancel(writes()))
    await asyncio.sleep(0.015)  # the first write is done, the second under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert written == [0, 1, 2]  # whole, not half


async def test_finish_before_cancel_returns_and_raises_as_the_call() -> None:
    async def ok() -> int:
        return 7

    async def bad() -> int:
        raise ValueError("boom")

    assert await finish_before_cancel(ok()) == 7
    with pytest.raises(ValueError, match="boom"):
        await finish_before_cancel(bad())
