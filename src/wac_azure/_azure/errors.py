"""Translating Azure SDK failures into wac_azure's typed errors."""

from __future__ import annotations

import re
from typing import Any

from azure.core.exceptions import HttpResponseError as HttpResponseError
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from wac_azure._core.errors import (
    AuthorizationError,
    AzureRequestError,
    NotFoundError,
    OperationFailedError,
    ResourceGroupNotFoundError,
    ThrottledError,
    VmNotFoundError,
)

#: Every azure-core failure of a request: an HTTP error answer, or no answer at all
#: (connection refused, reset, TLS failure...). Catch these and pass them to
#: :func:`translate` so no untyped SDK error escapes the library.
SDK_ERRORS: tuple[type[Exception], ...] = (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

#: Answers and connection failures, without a broken answer mid-body
#: (``ServiceResponseError``): what the rule writer handles itself.
REQUEST_ERRORS: tuple[type[Exception], ...] = (HttpResponseError, ServiceRequestError)

#: The built-in role that grants each action the library performs.
ROLE_FOR_ACTION = {
    "Microsoft.Compute/virtualMachines/read": "Reader",
    "Microsoft.Compute/virtualMachines/extensions/write": "Virtual Machine Contributor",
    "Microsoft.Compute/virtualMachines/extensions/delete": "Virtual Machine Contributor",
    "Microsoft.Compute/virtualMachines/runCommand/action": "Virtual Machine Contributor",
    "Microsoft.Network/networkSecurityGroups/securityRules/write": "Network Contributor",
    "Microsoft.Network/networkSecurityGroups/securityRules/delete": "Network Contributor",
    "Microsoft.Network/networkSecurityGroups/read": "Reader",
    "Microsoft.Network/networkInterfaces/read": "Reader",
}
_ACTION_RE = re.compile(r"action '([^']+)'", re.IGNORECASE)


def arm_code(exc: HttpResponseError) -> str:
    """ARM's error code of ``exc`` (``""`` when the body had none)."""
    if exc.error is not None and exc.error.code:
        return str(exc.error.code)
    return ""


def _message(exc: HttpResponseError) -> str:
    if exc.error is not None and exc.error.message:
        return str(exc.error.message)
    return str(exc.reason or exc.message or "request failed")


def translate(
    exc: BaseException,
    *,
    what: str,
    vm_id: str | None = None,
    resource_group: str | None = None,
    action: str | None = None,
) -> BaseException:
    """Return the wac_azure error for an azure-core exception (caller chains it).

    ``what`` says what the library was doing ("reading the VM", ...); ``vm_id``
    marks a request whose 404 means the VM itself is missing.
    """
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureRequestError(f"{what}: could not reach Azure Resource Manager: {exc}")
    if not isinstance(exc, HttpResponseError):
        return exc
    status = exc.status_code
    code = arm_code(exc)
    msg = _message(exc)
    if status == 404:
        if code == "ResourceGroupNotFound":
            return ResourceGroupNotFoundError(
                f"{what}: resource group {resource_group!r} was not found "
                "(check the name and the subscription)",
                status=status,
                code=code,
                target=resource_group,
            )
        if vm_id is not None:
            return VmNotFoundError(
                f"{what}: virtual machine {vm_id} was not found (check its name, "
                "resource group and subscription)",
                status=status,
                code=code,
                target=vm_id,
            )
        return NotFoundError(f"{what}: {code or 'NotFound'}: {msg}", status=status, code=code)
    if status == 403:
        found = _ACTION_RE.search(msg)
        refused = found.group(1) if found else action
        role = ROLE_FOR_ACTION.get(refused or "", "Contributor")
        return AuthorizationError(
            f"{what}: Azure refused the action {refused or '(unnamed)'}; "
            f"ask for a role that grants it, such as {role!r}",
            action=refused,
            role=role,
            code=code,
        )
    if status == 429:
        return ThrottledError(
            f"{what}: Azure Resource Manager kept throttling (429) after every retry: {msg}",
            status=status,
            code=code,
        )
    return AzureRequestError(
        f"{what}: Azure answered {status} {code}: {msg}".replace("  ", " "),
        status=status,
        code=code or None,
    )


def lro_failure(exc: Any, *, what: str, target: str | None = None) -> BaseException:
    """Turn a poller's ``HttpResponseError`` into :class:`OperationFailedError` (keeps others).

    azure-core raises ``HttpResponseError`` when an operation ends ``Failed``;
    its status is the (successful) status of the last poll and its ``error``
    the operation's ``{code, message}``. Request errors (status >= 400) and
    connection errors are returned unchanged for :func:`translate`.
    """
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return exc  # no answer at all: translate() names it
    status = getattr(exc, "status_code", None)
    if status is not None and status >= 400:
        return exc  # type: ignore[no-any-return]
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", "") or "") or "OperationFailed"
    message = str(getattr(error, "message", "") or "") or "the operation ended Failed"
    return OperationFailedError(
        f"{what}: {code}: {message}", status=status, code=code, target=target
    )
