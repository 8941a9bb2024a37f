"""Every complete error body of the shared errors.json, replayed through the library.

Each body becomes a real ``azure.core.exceptions.HttpResponseError`` parsed by
azure-core from an ``azure.core.pipeline.transport.HttpResponse`` holding the
recorded bytes (``armerr.http_error_body``, the way azure-core's own tests build
responses), to check the classification in isolation; ``test_error_bodies_e2e`` meets
the same bodies on the wire, answered verbatim by the ARM emulator.
Bodies of finished operations (``{"status": "Canceled", "error": ...}``) are
built as the poll answer (200) that ``wait_for_operation`` and azure-core's
poller turn into an ``HttpResponseError``. Each is then shown to be

* **retried** by the library (``retry.is_transient``, the one owner of 409s and
  failed operations),
* **waited on** (a 429: azure-core retries it; Network's "resource busy" 429 is
  not throttling for the pacer), or
* **reported** as the right typed error, carrying Azure's own message.

Entries that are only a client's rendering, truncated or quoted in fragments
are not bodies and are left out (the test checks the table covers the rest).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.pipeline.policies import AsyncRetryPolicy

from wac_azure import AuthorizationError, AzureRequestError, ThrottledError
from wac_azure._azure.errors import error_chain, error_codes, lro_failure, translate
from wac_azure._azure.extension import ExtensionManager, handler_failure
from wac_azure._azure.pacing import is_busy_429
from wac_azure._azure.retry import is_transient
from wac_azure._core.errors import ExtensionInstallError, OperationFailedError
from wac_azure._core.facts import parse_extension_resource
from wac_azure._core.ids import VmTarget

from .armerr import http_error_body
from tests._shared import ERRORS as ERRORS_DIR

ERRORS = ERRORS_DIR / "errors.json"
pytestmark = pytest.mark.skipif(not ERRORS.exists(), reason="shared fixtures not mounted")

RETRY = "retried"
BUSY = "busy"
THROTTLE = "throttled"
EXTENSION = "extension"

#: id -> (HTTP status to replay it with, what the library must do). 200 = the body of a
#: finished operation, seen through a poll. Statuses the source did not show are those
#: its note gives (409 for Compute's conflicts, 429 for Network's RetryableError, 403).
EXPECTED: dict[str, tuple[int, Any]] = {
    "net-429-retryable-anotherop-putsubnet": (429, BUSY),
    "net-retryable-referencednotprovisioned-putsubnet-json": (429, BUSY),
    "net-lro-canceled-superseded-putsecurityrule": (200, RETRY),
    "net-lro-canceled-superseded-putvnet-by-putsubnet": (200, RETRY),
    "deploy-nested-canceled-superseded-putnsg": (200, RETRY),
    "compute-412-preconditionfailed-vmss": (412, (AzureRequestError, "PreconditionFailed")),
    "net-409-anotheroperationinprogress-subnet": (409, RETRY),
    "net-async-failed-anotheroperationinprogress": (200, RETRY),
    "compute-409-conflict-concurrent-request": (409, RETRY),
    "deploy-operationnotallowed-update-vm-marked-for-deletion": (
        200,
        (OperationFailedError, "OperationNotAllowed"),
    ),
    "compute-409-runcommand-in-progress": (409, RETRY),
    "arm-429-subscriptionrequeststhrottled-read": (429, THROTTLE),
    "arm-429-subscriptionrequeststhrottled-backend-storage": (429, THROTTLE),
    "compute-429-throttle-docs-example": (429, THROTTLE),
    "compute-lro-canceled-operationpreempted": (200, RETRY),
    "compute-ext-put-async-failed-provisioningerror": (
        200,
        (OperationFailedError, "VMExtensionProvisioningError"),
    ),
    "compute-ext-provisioningerror-status-only": (
        200,
        (OperationFailedError, "VMExtensionProvisioningError"),
    ),
    "compute-ext-provisioningerror-in-deployment-conflict": (
        200,
        (OperationFailedError, "Conflict"),
    ),
    "compute-ext-provisioningtimeout": (200, EXTENSION),
    "compute-ext-provisioningtimeout-2018": (200, EXTENSION),
    "compute-ext-handler-nontransient-2016": (200, EXTENSION),
    "compute-ext-handler-nontransient-msi-1009": (200, EXTENSION),
    "arm-403-linkedauthorizationfailed-keyvault-2015": (
        403,
        (AuthorizationError, "Microsoft.KeyVault/vaults/deploy/action"),
    ),
    "net-403-linkedauthorizationfailed-subnet-join": (
        403,
        (AuthorizationError, "Microsoft.Network/virtualNetworks/subnets/join/action"),
    ),
    "net-403-authorizationfailed-subnet-read": (
        403,
        (AuthorizationError, "Microsoft.Network/virtualNetworks/subnets/read"),
    ),
    "arm-403-authorizationfailed-assesspatches": (
        403,
        (AuthorizationError, "Microsoft.Compute/virtualMachines/assessPatches/action"),
    ),
    "net-linkedauthorizationfailed-tenant-not-authorized": (403, (AuthorizationError, None)),
    "deploy-linkedauthorizationfailed-subnet-join-no-wrapper": (403, (AuthorizationError, None)),
    "compute-409-operationnotallowed-vm-not-running": (
        409,
        (AzureRequestError, "OperationNotAllowed"),
    ),
    "compute-409-runcommand-vm-not-running": (409, (AzureRequestError, "OperationNotAllowed")),
}
#: Not an error answer: an extension's instance view (checked on its own below).
INSTANCE_VIEW = "compute-ext-instanceview-failed-docs"
_NOT_BODIES = ("_message_only", "_truncated_text", "_message_fragments")


def _entries() -> dict[str, dict[str, Any]]:
    if not ERRORS.exists():
        return {}
    return {e["id"]: e for e in json.loads(ERRORS.read_text())}


ENTRIES = _entries()


def _complete(entry: dict[str, Any]) -> bool:
    body = entry["body"]
    return isinstance(body, dict) and not any(k in body for k in _NOT_BODIES)


def test_the_table_covers_every_complete_body() -> None:
    complete = {i for i, e in ENTRIES.items() if _complete(e)}
    assert complete == set(EXPECTED) | {INSTANCE_VIEW}


def _messages(body: dict[str, Any]) -> list[str]:
    error = body.get("error", body)
    return [m for _, m in error_chain(error) if m]


@pytest.mark.parametrize("entry_id", sorted(EXPECTED))
def test_body_is_retried_waited_on_or_reported(entry_id: str) -> None:
    entry = ENTRIES[entry_id]
    status, expected = EXPECTED[entry_id]
    if entry["status"] is not None:
        assert entry["status"] == status
    body = entry["body"]
    exc = http_error_body(status, body, entry["headers"])
    said = _messages(body)
    assert said  # every complete body has Azure's words
    retry_codes = AsyncRetryPolicy()._RETRY_CODES
    if status == 200:  # a finished operation, seen through its poll
        typed = lro_failure(exc, what="the operation")
        assert isinstance(typed, OperationFailedError)
        assert all(m in str(typed) for m in said), str(typed)
        if expected == RETRY:
            assert is_transient(exc)
            assert is_transient(typed)
            return
        assert not is_transient(exc)
        assert not is_transient(typed)
        if expected == EXTENSION:
            try:
                raise typed from exc
            except OperationFailedError as chained:
                err = handler_failure(chained, "vm1")
            assert isinstance(err, ExtensionInstallError)
            assert all(m in str(err) for m in said[1:] or said), str(err)
            return
        cls, code = expected
        assert isinstance(typed, cls)
        assert typed.code == code
        return
    if expected == RETRY:
        assert status not in retry_codes  # not azure-core's: the library is the one owner
        assert is_transient(exc)
        return
    assert not is_transient(exc)  # never retried twice over
    err = translate(exc, what="writing")
    assert all(m in str(err) for m in said), str(err)
    assert err.__class__ is not Exception
    if expected == BUSY:
        assert status in retry_codes  # azure-core retries it after Retry-After/backoff
        assert is_busy_429(status, error_codes(exc))  # ...and the pacer slows nothing else
        assert type(err) is AzureRequestError  # not ThrottledError
        return
    if expected == THROTTLE:
        assert status in retry_codes
        assert not is_busy_429(status, error_codes(exc))
        assert isinstance(err, ThrottledError)
        return
    cls, detail = expected
    assert isinstance(err, cls)
    if cls is AuthorizationError:
        assert isinstance(err, AuthorizationError)
        assert err.action == detail
        if detail is not None:
            assert err.role
    else:
        assert isinstance(err, AzureRequestError)
        assert err.code == detail


def test_failed_extension_instance_view_is_reported_with_its_message() -> None:
    view = ENTRIES[INSTANCE_VIEW]["body"]
    doc = {
        "name": view["name"],
        "properties": {"provisioningState": "Failed", "instanceView": view},
    }
    ext = parse_extension_resource(doc)
    t = VmTarget.from_parts("00000000-0000-0000-0000-000000000001", "rg", "vm1")
    manager = ExtensionManager(None)  # type: ignore[arg-type]
    with pytest.raises(ExtensionInstallError) as caught:
        manager._final(t, ext, changed=True)
    assert view["statuses"][0]["message"] in str(caught.value)
