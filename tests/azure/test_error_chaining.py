"""Every wac_azure error made from an azure-core error chains it as ``__cause__``: each
path of ``translate`` and ``lro_failure`` (``_azure/errors.py``), on synthetic answers and
on every complete body of the shared errors.json."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from wac_azure import (
    AuthenticationError,
    AuthorizationError,
    AzureRequestError,
    NotFoundError,
    OperationFailedError,
    ResourceGroupNotFoundError,
    ThrottledError,
    VmNotFoundError,
    WacAzureError,
)
from wac_azure._azure.errors import lro_failure, translate

from .armerr import http_error, http_error_body
from .test_error_bodies import ENTRIES, EXPECTED

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"

#: (name, the azure-core error, translate's keywords, the class it must become): one per
#: branch of translate().
PATHS: list[tuple[str, BaseException, dict[str, Any], type[WacAzureError]]] = [
    (
        "credential: no sign-in",
        ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token"),
        {},
        AuthenticationError,
    ),
    (
        "credential unavailable",
        CredentialUnavailableError("EnvironmentCredential authentication unavailable"),
        {},
        AuthenticationError,
    ),
    ("401 expired token", http_error(401, "ExpiredAuthenticationToken"), {}, AuthenticationError),
    ("401 no code", http_error(401, ""), {}, AuthenticationError),
    ("no answer", ServiceRequestError("connection refused"), {}, AzureRequestError),
    ("broken answer", ServiceResponseError("connection reset"), {}, AzureRequestError),
    (
        "404 resource group",
        http_error(404, "ResourceGroupNotFound"),
        {"resource_group": "rg"},
        ResourceGroupNotFoundError,
    ),
    ("404 the VM", http_error(404, "ResourceNotFound"), {"vm_id": VM}, VmNotFoundError),
    ("404 something else", http_error(404, "NotFound"), {}, NotFoundError),
    ("403", http_error(403, "AuthorizationFailed", "action 'x/read'"), {}, AuthorizationError),
    (
        "403 linked",
        http_error(
            403,
            "LinkedAuthorizationFailed",
            "does not have permission to perform action(s) "
            "'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) 's'",
        ),
        {},
        AuthorizationError,
    ),
    (
        "403 linked tenant",
        http_error(
            403,
            "LinkedAuthorizationFailed",
            "The client has permission; however, tenant 't1' is not authorized to access "
            "linked subscription 's2'.",
        ),
        {},
        AuthorizationError,
    ),
    ("429 busy", http_error(429, "AnotherOperationInProgress"), {}, AzureRequestError),
    ("429 throttled", http_error(429, "SubscriptionRequestsThrottled"), {}, ThrottledError),
    ("409", http_error(409, "Conflict"), {}, AzureRequestError),
    ("500", http_error(500, "InternalServerError"), {}, AzureRequestError),
]


@pytest.mark.parametrize(
    ("exc", "kwargs", "kind"), [p[1:] for p in PATHS], ids=[p[0] for p in PATHS]
)
def test_translate_chains_the_azure_core_error(
    exc: BaseException, kwargs: dict[str, Any], kind: type[WacAzureError]
) -> None:
    err = translate(exc, what="doing it", **kwargs)
    assert type(err) is kind
    assert err.__cause__ is exc
    assert err.__suppress_context__  # printed as "The above exception was the direct cause"
    # raised without `from`, it still shows its cause
    with pytest.raises(kind) as info:
        raise err
    assert info.value.__cause__ is exc


def test_a_credential_failure_is_an_authentication_error_not_azure_answered_none() -> None:
    cause = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
    err = translate(cause, what="reading the virtual machine vm1")
    assert isinstance(err, AuthenticationError)
    assert isinstance(err, AzureRequestError)  # callers catching the old type still do
    assert err.status is None
    assert "None" not in str(err)
    assert "could not authenticate" in str(err)
    assert "az login" in str(err)
    assert "DefaultAzureCredential failed to retrieve a token" in str(err)


def test_what_is_not_an_azure_core_error_comes_back_unchanged() -> None:
    exc = ValueError("x")
    assert translate(exc, what="w") is exc
    assert exc.__cause__ is None


def test_a_failed_operation_chains_the_pollers_error() -> None:
    body = {"status": "Failed", "error": {"code": "VMExtensionProvisioningError", "message": "m"}}
    exc = http_error_body(200, body)
    err = lro_failure(exc, what="installing the extension")
    assert isinstance(err, OperationFailedError)
    assert err.__cause__ is exc


def _complete(entry: dict[str, Any]) -> bool:
    body = entry["body"]
    return isinstance(body, dict) and not any(
        k in body for k in ("_message_only", "_truncated_text", "_message_fragments")
    )


@pytest.mark.skipif(not ENTRIES, reason="shared fixtures not mounted")
@pytest.mark.parametrize("entry_id", sorted(EXPECTED))
def test_every_recorded_error_translated_chains_it(entry_id: str) -> None:
    entry = ENTRIES[entry_id]
    assert _complete(entry)
    status, _ = EXPECTED[entry_id]
    exc: HttpResponseError = http_error_body(status, entry["body"], entry.get("headers"))
    if status == 200:
        made = lro_failure(exc, what="the operation")
        if made is not exc:
            assert isinstance(made, WacAzureError)
            assert made.__cause__ is exc
            return
    made = translate(exc, what="the request")
    assert isinstance(made, WacAzureError), json.dumps(entry["body"])[:200]
    assert made.__cause__ is exc
