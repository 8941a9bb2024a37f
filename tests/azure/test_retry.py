"""The library's retry policy retries only what azure-core does not."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import OperationFailedError, RetryConfig
from wac_azure._azure.retry import is_transient, retrying

from .armerr import http_error as _http_error


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_http_error(409, "RetryableErrorDueToAnotherOperation"), True),
        (_http_error(409, "Conflict", "Run command extension execution is in progress."), True),
        (_http_error(409, "OperationNotAllowed", "VM is deallocated"), False),
        (_http_error(429, "TooManyRequests"), False),  # azure-core owns 429
        (_http_error(500, "InternalServerError"), False),  # azure-core owns 5xx
        (_http_error(400, "InvalidParameter"), False),
        (OperationFailedError("x", code="OperationPreempted"), True),
        (OperationFailedError("x", code="VMExtensionProvisioningError"), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


async def _no_sleep(_: float) -> None:
    return None


async def test_retrying_retries_transient_then_succeeds() -> None:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _http_error(409, "RetryableErrorDueToAnotherOperation")
        return "ok"

    seen: list[Any] = []
    out = await retrying(call, config=RetryConfig(), sleep=_no_sleep, on_retry=seen.append)
    assert out == "ok"
    assert len(calls) == 3
    assert len(seen) == 2


async def test_retrying_gives_up_after_attempts_and_reraises() -> None:
    calls: list[int] = []

    async def call() -> None:
        calls.append(1)
        raise OperationFailedError("preempted", code="OperationPreempted")

    with pytest.raises(OperationFailedError):
        await retrying(call, config=RetryConfig(attempts=4), sleep=_no_sleep)
    assert len(calls) == 4


async def test_permanent_failure_is_not_retried() -> None:
    calls: list[int] = []

    async def call() -> None:
        calls.append(1)
        raise _http_error(409, "OperationNotAllowed", "deallocated")

    with pytest.raises(HttpResponseError):
        await retrying(call, config=RetryConfig(), sleep=_no_sleep)
    assert calls == [1]
