"""Translating Azure SDK failures into wac_azure's typed errors."""

from __future__ import annotations

import re
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.exceptions import HttpResponseError as HttpResponseError

from wac_azure._core.errors import (
    AuthenticationError,
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
#: ``LinkedAuthorizationFailed``: the caller may do the outer action but not the
#: action on a resource it links to ("...; however, it does not have permission to
#: perform action(s) 'Microsoft.Network/virtualNetworks/subnets/join/action' on the
#: linked scope(s) '...'"). Older wording says ``action``, newer ``action(s)``.
_LINKED_RE = re.compile(
    r"does not have permission to perform action(?:\(s\))?\s+'([^']+)'"
    r"(?:\s+on the linked scope\(s\)\s+'([^']*)')?",
    re.IGNORECASE,
)
#: The cross-tenant form: the linked subscription is in a tenant the caller's is not.
_LINKED_TENANT_RE = re.compile(
    r"tenant '([^']+)' is not authorized to access linked subscription '([^']+)'",
    re.IGNORECASE,
)


def role_for(action: str | None) -> str:
    """A built-in role that grants ``action`` (``Contributor`` when none narrower is known)."""
    if not action:
        return "Contributor"
    known = ROLE_FOR_ACTION.get(action)
    if known is not None:
        return known
    low = action.lower()
    if low.endswith("/read"):
        return "Reader"
    if low.startswith("microsoft.network/"):
        # join/action on NSGs, subnets, public IPs, ASGs...: all in Network Contributor
        return "Network Contributor"
    if low.startswith("microsoft.keyvault/"):
        return "Key Vault Contributor"
    if low.startswith("microsoft.compute/"):
        return "Virtual Machine Contributor"
    return "Contributor"


#: Top-level codes that only wrap the real one in ``details`` (deployments, Network's
#: ``Canceled`` with ``CanceledAndSupersededDueToAnotherOperation``, ``RetryableError``).
WRAPPER_CODES = frozenset(
    {
        "canceled",
        "retryableerror",
        "resourcedeploymentfailure",
        "deploymentfailed",
        "failed",
        "operationfailed",
    }
)


#: Network's 429s that mean "another operation holds this resource", not throttling
#: (the pacer's ``BUSY_CODES``).
BUSY_429 = frozenset(
    {
        "retryableerror",
        "retryableerrorduetoanotheroperation",
        "referencedresourcenotprovisioned",
        "anotheroperationinprogress",
    }
)


def _details(error: Any) -> list[Any]:
    found = getattr(error, "details", None)
    if found is None and isinstance(error, dict):
        found = error.get("details")
    return list(found) if isinstance(found, (list, tuple)) else []


def _field(error: Any, name: str) -> str:
    value = error.get(name) if isinstance(error, dict) else getattr(error, name, None)
    return str(value or "")


def error_chain(error: Any) -> list[tuple[str, str]]:
    """``(code, message)`` of an ARM error and of its ``details``, depth first."""
    out: list[tuple[str, str]] = []
    stack = [error]
    while stack and len(out) < 32:
        item = stack.pop(0)
        if item is None:
            continue
        code, message = _field(item, "code"), _field(item, "message")
        if code or message:
            out.append((code, message))
        stack[0:0] = _details(item)
    return out


def error_codes(exc: BaseException) -> list[str]:
    """Every ARM error code ``exc`` carries, top-level first, lower-cased."""
    error = getattr(exc, "error", None)
    codes = [c.lower() for c, _ in error_chain(error) if c]
    own = str(getattr(exc, "code", "") or "").lower()
    if own and own not in codes:
        codes.insert(0, own)
    return codes


def specific(error: Any) -> tuple[str, str]:
    """The most specific ``(code, message)`` of an ARM error: the first one in its
    details chain whose code is not a mere wrapper (``Canceled``, ``RetryableError``,
    ``ResourceDeploymentFailure``...), else the top-level one."""
    chain = error_chain(error)
    for code, message in chain:
        if code and code.lower() not in WRAPPER_CODES:
            return code, message
    return chain[0] if chain else ("", "")


def azure_message(error: Any) -> str:
    """Azure's own words: the top-level message and every detail's, in order."""
    seen: list[str] = []
    for _, message in error_chain(error):
        if message and message not in seen:
            seen.append(message)
    return " ".join(seen)


def arm_code(exc: HttpResponseError) -> str:
    """ARM's error code of ``exc`` (``""`` when the body had none)."""
    if exc.error is not None and exc.error.code:
        return str(exc.error.code)
    return ""


def _message(exc: HttpResponseError) -> str:
    if exc.error is not None:
        text = azure_message(exc.error)
        if text:
            return text
    return str(exc.reason or exc.message or "request failed")


def translate(
    exc: BaseException,
    *,
    what: str,
    vm_id: str | None = None,
    resource_group: str | None = None,
    action: str | None = None,
) -> BaseException:
    """Return the wac_azure error for an azure-core exception, chained to it.

    ``what`` says what the library was doing ("reading the VM", ...); ``vm_id``
    marks a request whose 404 means the VM itself is missing. The error returned
    has ``exc`` as its ``__cause__`` already (``raise translate(exc, ...) from exc``
    says the same again); anything that is not an azure-core error comes back as it is.
    """
    err = _translate(exc, what=what, vm_id=vm_id, resource_group=resource_group, action=action)
    if err is not exc:
        err.__cause__ = exc  # as `raise err from exc` would, for callers that keep it
    return err


def _translate(
    exc: BaseException,
    *,
    what: str,
    vm_id: str | None,
    resource_group: str | None,
    action: str | None,
) -> BaseException:
    if isinstance(exc, ClientAuthenticationError):
        # Raised by the credential before any request left (it is an HttpResponseError
        # with no status): say so instead of "Azure answered None".
        return _unauthenticated(exc, what=what)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureRequestError(f"{what}: could not reach Azure Resource Manager: {exc}")
    if not isinstance(exc, HttpResponseError):
        return exc
    status = exc.status_code
    code = arm_code(exc)
    msg = _message(exc)
    if status == 401:
        # ARM refused the token (InvalidAuthenticationToken, ExpiredAuthenticationToken,
        # InvalidAuthenticationTokenTenant, AuthenticationFailed...).
        return AuthenticationError(
            f"{what}: Azure Resource Manager refused the credential's token (401 "
            f"{code or 'Unauthorized'}); sign in again (`az login`) or use a credential "
            f"of the subscription's tenant. Azure said: {msg}",
            status=status,
            code=code or None,
        )
    if status == 404:
        if code == "ResourceGroupNotFound":
            return ResourceGroupNotFoundError(
                f"{what}: resource group {resource_group!r} was not found "
                f"(check the name and the subscription). Azure said: {msg}",
                status=status,
                code=code,
                target=resource_group,
            )
        if vm_id is not None:
            return VmNotFoundError(
                f"{what}: virtual machine {vm_id} was not found (check its name, "
                f"resource group and subscription). Azure said: {msg}",
                status=status,
                code=code,
                target=vm_id,
            )
        return NotFoundError(f"{what}: {code or 'NotFound'}: {msg}", status=status, code=code)
    if status == 403:
        return _forbidden(code, msg, what=what, action=action)
    if status == 429 and any(c in BUSY_429 for c in error_codes(exc)):
        specific_code, _ = specific(exc.error)
        return AzureRequestError(
            f"{what}: another operation kept the resource busy (429 {specific_code or code}) "
            f"after every retry; run it again once that operation is over. Azure said: {msg}",
            status=status,
            code=specific_code or code,
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


def _unauthenticated(exc: ClientAuthenticationError, *, what: str) -> AuthenticationError:
    # The credential's own words say what it tried (DefaultAzureCredential lists every
    # credential in its chain); they carry no token or secret.
    said = str(exc.message or exc).strip() or type(exc).__name__
    if len(said) > 2000:
        said = said[:2000] + "..."
    return AuthenticationError(
        f"{what}: could not authenticate to Azure: the credential could not get a token "
        "(sign in with `az login`, set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
        "AZURE_CLIENT_SECRET, or run with a managed identity). "
        f"The credential said ({type(exc).__name__}): {said}",
        status=exc.status_code,
        code=arm_code(exc) or None,
    )


def _forbidden(code: str, msg: str, *, what: str, action: str | None) -> AuthorizationError:
    if code.lower() == "linkedauthorizationfailed":
        linked = _LINKED_RE.search(msg)
        if linked is not None:
            # The outer action was allowed: what is missing is the linked one.
            refused, scope = linked.group(1), linked.group(2) or None
            role = role_for(refused)
            where = f" on {scope}" if scope else ""
            return AuthorizationError(
                f"{what}: Azure refused the linked action {refused}{where} (the resource "
                f"written refers to it); ask for a role that grants it there, such as "
                f"{role!r}. Azure said: {msg}",
                action=refused,
                role=role,
                code=code,
                target=scope,
            )
        tenant = _LINKED_TENANT_RE.search(msg)
        if tenant is not None:
            return AuthorizationError(
                f"{what}: the linked subscription {tenant.group(2)} is in another tenant "
                f"than {tenant.group(1)}; no role in this tenant grants that. Azure said: {msg}",
                action=None,
                role=None,
                code=code,
                target=tenant.group(2),
            )
    found = _ACTION_RE.search(msg)
    refused = found.group(1) if found else action
    role = role_for(refused)
    return AuthorizationError(
        f"{what}: Azure refused the action {refused or '(unnamed)'}; "
        f"ask for a role that grants it, such as {role!r}. Azure said: {msg}",
        action=refused,
        role=role,
        code=code,
    )


def lro_failure(exc: Any, *, what: str, target: str | None = None) -> BaseException:
    """Turn a poller's ``HttpResponseError`` into :class:`OperationFailedError` (keeps others).

    azure-core raises ``HttpResponseError`` when an operation ends ``Failed``;
    its status is the (successful) status of the last poll and its ``error``
    the operation's ``{code, message}``. Request errors (status >= 400) and
    connection errors are returned unchanged for :func:`translate`. The error made
    has ``exc`` as its ``__cause__``.
    """
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return exc  # no answer at all: translate() names it
    status = getattr(exc, "status_code", None)
    if status is not None and status >= 400:
        return exc  # type: ignore[no-any-return]
    error = getattr(exc, "error", None)
    code, _ = specific(error)
    code = code or "OperationFailed"
    message = azure_message(error) or "the operation ended Failed"
    failed = OperationFailedError(
        f"{what}: {code}: {message}", status=status, code=code, target=target
    )
    failed.__cause__ = exc  # as `raise failed from exc` would, for callers that keep it
    return failed
