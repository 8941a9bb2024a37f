"""The library's own retry policy: what azure-core does not retry.

One owner per failure class. azure-core's ``AsyncRetryPolicy`` already
retries 408, 429, 500, 502, 503 and 504 (honouring ``Retry-After``); doing so
again here would multiply attempts. This policy retries only what azure-core
leaves alone:

* 409 answers that say another operation holds the resource
  (``RetryableErrorDueToAnotherOperation``, ``AnotherOperationInProgress``,
  "execution is in progress" for Run Command, ...);
* long-running operations that ended ``Failed`` or ``Canceled`` with a
  transient code (``OperationPreempted``: Compute ended our operation for a
  more recent one; ``InternalExecutionError``, ...), looked for in the error's
  ``details`` too;
* writes that did not stick: Network's ``Canceled`` /
  ``CanceledAndSupersededDueToAnotherOperation`` (another write to the same
  NSG superseded ours) and the library's own ``WriteNotInForce`` (the
  operation succeeded but a read does not show what was written): the write
  is sent again.

And, only for a request that is safe to send twice (``repeatable=True``: the
Run Command POST, whose scripts only read), what azure-core leaves on a POST:

* a connection reset or a connection that failed (azure-core's
  ``ServiceRequestError`` / ``ServiceResponseError``): azure-core retries these
  only for the methods on its allow-list, which POST is not on
  (``RetryPolicy._is_method_retryable``; Azure/azure-sdk-for-python#31771,
  "POST requests don't retry even on connection errors");
* a 5xx other than the 500, 503 and 504 that azure-core already retries on a
  POST (502 Bad Gateway, ...).

Everything else (400s, ``OperationNotAllowed``, unsupported OS, an extension's
``VMExtensionHandlerNonTransientError`` / ``VMExtensionProvisioningTimeout``)
fails at once. A 429 is azure-core's (it retries it, honouring
``Retry-After``), whether it is throttling or Network's "resource busy"
``RetryableError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from wac_azure._azure.errors import error_codes
from wac_azure._core.errors import OperationFailedError
from wac_azure._core.validate import check_count, check_seconds

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: ARM error codes that mean "try again later", whatever the HTTP status.
TRANSIENT_CODES = frozenset(
    {
        "retryableerrorduetoanotheroperation",
        "anotheroperationinprogress",
        "operationpreempted",
        "internalexecutionerror",
        "conflictingoperationinprogress",
        "operationinprogress",
        "internalservererror",
        "serviceunavailable",
        "toomanyrequests",
        "requestthrottled",
        # the write was superseded by another one to the same resource: send it again
        "canceledandsupersededduetoanotheroperation",
        # the library's own: the operation succeeded, yet a read does not show the write
        "writenotinforce",
    }
)
_TRANSIENT_409_WORDS = (
    "in progress",
    "another operation",
    "exclusive access",
    "retry",
    # Compute: "The request failed due to conflict with a concurrent request."
    "concurrent request",
)


#: The 5xx answers azure-core's ``RetryPolicy`` retries on a POST itself
#: (``_is_method_retryable``: POST and PATCH with 500, 503, 504).
CORE_RETRIED_POST_STATUSES = frozenset({500, 503, 504})


@attrs.frozen
class RetryConfig:
    """Bounds of the library's retries (configurable on the session).

    ``attempts`` counts the first try; ``deadline`` (seconds) bounds the
    whole retried call; waits grow exponentially from ``initial`` to
    ``maximum`` seconds with up to ``jitter`` seconds of random jitter.
    """

    attempts: int = 6
    initial: float = 1.0
    maximum: float = 30.0
    jitter: float = 1.0
    deadline: float = 600.0

    def __attrs_post_init__(self) -> None:
        check_count(self.attempts, "RetryConfig.attempts")
        for name in ("initial", "maximum", "jitter"):
            check_seconds(getattr(self, name), f"RetryConfig.{name}", zero=True)
        check_seconds(self.deadline, "RetryConfig.deadline")


def _code_of(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if not code and isinstance(exc, HttpResponseError) and exc.error is not None:
        code = exc.error.code
    return str(code or "").lower()


def is_transient(exc: BaseException, *, repeatable: bool = False) -> bool:
    """Whether the library (not azure-core) should retry ``exc``.

    ``repeatable``: the failed request is a POST that is safe to send again (it
    only reads); a connection failure or a 5xx azure-core does not retry on a
    POST is then transient too.
    """
    if repeatable:
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(exc, HttpResponseError):
            status = exc.status_code
            if status is not None and 500 <= status <= 599:
                return status not in CORE_RETRIED_POST_STATUSES
    if isinstance(exc, OperationFailedError):
        return any(code in TRANSIENT_CODES for code in error_codes(exc))
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        if status is not None and 200 <= status < 300:
            # A poller's HttpResponseError: the operation ended Failed or Canceled (the
            # poll itself succeeded); its codes say whether running it again can help.
            return any(code in TRANSIENT_CODES for code in error_codes(exc))
        if status != 409:
            return False
        if any(code in TRANSIENT_CODES for code in error_codes(exc)):
            return True
        text = str(exc.message or "").lower()
        return any(word in text for word in _TRANSIENT_409_WORDS)
    return False


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    config: RetryConfig,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    what: str = "operation",
    on_retry: Callable[[BaseException], None] | None = None,
    repeatable: bool = False,
) -> T:
    """Run ``call`` and retry it on transient failures, within ``config``'s bounds.

    ``repeatable=True`` says ``call`` sends one POST that is safe to send twice:
    connection failures and the 5xx azure-core leaves on a POST are retried too
    (see :func:`is_transient`).
    """

    def _transient(exc: BaseException) -> bool:
        return is_transient(exc, repeatable=repeatable)

    def _before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            _log.info(
                "retrying %s after transient %s (attempt %d of %d)",
                what,
                type(exc).__name__ + (f" {_code_of(exc)}" if _code_of(exc) else ""),
                state.attempt_number,
                config.attempts,
            )
            if on_retry is not None:
                on_retry(exc)

    retryer = AsyncRetrying(
        stop=stop_after_attempt(config.attempts) | stop_after_delay(config.deadline),
        wait=wait_exponential(multiplier=config.initial, max=config.maximum)
        + wait_random(0, config.jitter),
        retry=retry_if_exception(_transient),
        sleep=sleep,
        reraise=True,
        before_sleep=_before_sleep,
    )
    result: T = await retryer(call)
    return result
