"""Translating azure-core errors and failed operations into wac_azure's typed errors."""

from __future__ import annotations

from azure.core.exceptions import ServiceRequestError

from wac_azure import (
    AuthorizationError,
    AzureRequestError,
    NotFoundError,
    ResourceGroupNotFoundError,
    ThrottledError,
    VmNotFoundError,
)
from wac_azure._azure.errors import lro_failure, translate

from .armerr import http_error

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def test_vm_404_is_vm_not_found() -> None:
    err = translate(http_error(404, "ResourceNotFound"), what="reading the VM", vm_id=VM)
    assert isinstance(err, VmNotFoundError)
    assert isinstance(err, LookupError)
    assert VM in str(err)


def test_missing_group_names_the_group() -> None:
    err = translate(
        http_error(404, "ResourceGroupNotFound", "Resource group 'rg' could not be found."),
        what="reading the VM",
        vm_id=VM,
        resource_group="rg",
    )
    assert isinstance(err, ResourceGroupNotFoundError)
    assert "'rg'" in str(err)


def test_other_404_is_not_found() -> None:
    err = translate(http_error(404, "NotFound", "gone"), what="reading the NIC")
    assert type(err) is NotFoundError


def test_403_names_action_and_role() -> None:
    msg = (
        "The client 'x' with object id 'y' does not have authorization to perform action "
        "'Microsoft.Network/networkSecurityGroups/securityRules/write' over scope '/s'"
    )
    err = translate(http_error(403, "AuthorizationFailed", msg), what="writing a rule")
    assert isinstance(err, AuthorizationError)
    assert isinstance(err, PermissionError)
    assert err.action == "Microsoft.Network/networkSecurityGroups/securityRules/write"
    assert err.role == "Network Contributor"
    assert "Network Contributor" in str(err)


def test_429_and_other_errors() -> None:
    assert isinstance(translate(http_error(429, "TooManyRequests"), what="x"), ThrottledError)
    err = translate(http_error(400, "InvalidParameter", "bad"), what="x")
    assert isinstance(err, AzureRequestError)
    assert err.status == 400
    assert err.code == "InvalidParameter"
    assert isinstance(translate(ServiceRequestError("boom"), what="x"), AzureRequestError)
    plain = ValueError("x")
    assert translate(plain, what="x") is plain


class _FakeError:
    """The shape of an azure-core ODataV4Format error (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


class _PollerFailure(Exception):
    def __init__(self, status: int, error: _FakeError | None) -> None:
        super().__init__("poll failed")
        self.status_code = status
        self.error = error


def test_lro_failure_maps_failed_operations_and_keeps_request_errors() -> None:
    mapped = lro_failure(
        _PollerFailure(200, _FakeError("OperationPreempted", "preempted")), what="installing"
    )
    assert mapped.code == "OperationPreempted"  # type: ignore[attr-defined]
    assert "preempted" in str(mapped)
    unnamed = lro_failure(_PollerFailure(200, None), what="installing")
    assert unnamed.code == "OperationFailed"  # type: ignore[attr-defined]
    request_error = _PollerFailure(404, None)
    assert lro_failure(request_error, what="x") is request_error


LINKED_NSG = (
    "The client 'c' with object id 'o' has permission to perform action "
    "'Microsoft.Network/networkInterfaces/write' on scope '/subscriptions/s/resourceGroups/rg"
    "/providers/Microsoft.Network/networkInterfaces/nic1'; however, it does not have "
    "permission to perform action 'Microsoft.Network/networkSecurityGroups/join/action' on the "
    "linked scope(s) '/subscriptions/s/resourceGroups/hub/providers/Microsoft.Network"
    "/networkSecurityGroups/hub-nsg'."
)


def test_linked_authorization_failed_names_the_linked_action_not_the_outer_one() -> None:
    err = translate(http_error(403, "LinkedAuthorizationFailed", LINKED_NSG), what="writing")
    assert isinstance(err, AuthorizationError)
    assert err.action == "Microsoft.Network/networkSecurityGroups/join/action"
    assert err.role == "Network Contributor"
    assert err.target is not None
    assert err.target.endswith("/networkSecurityGroups/hub-nsg")
    assert "linked action Microsoft.Network/networkSecurityGroups/join/action" in str(err)
    assert LINKED_NSG in str(err)  # Azure's own message


def test_403_carries_azures_message() -> None:
    msg = "does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read'"
    err = translate(http_error(403, "AuthorizationFailed", msg), what="reading")
    assert msg in str(err)
    assert err.role == "Reader"  # type: ignore[attr-defined]
