"""The exceptions wac_azure raises.

Every exception the library raises on purpose is a :class:`WacAzureError`.
Leaves also subclass the builtin that describes them, so callers can catch
either (``except LookupError`` finds a missing VM)::

    WacAzureError
    ├── InvalidInputError (ValueError)
    │   ├── InvalidResourceIdError      a VM ID or portal URL that does not parse
    │   ├── InvalidRuleError            a security rule whose JSON is malformed
    │   ├── InvalidAccessError          a source list that is unsafe or malformed
    │   ├── ConfigurationError          a session or call option that cannot work
    │   └── InvalidPlanError            a saved network plan that does not load
    ├── AzureRequestError               ARM answered an error the library does not map
    │   ├── AuthenticationError         no token (not signed in...) or ARM refused it (401)
    │   ├── NotFoundError (LookupError)
    │   │   ├── VmNotFoundError
    │   │   └── ResourceGroupNotFoundError
    │   ├── AuthorizationError (PermissionError)
    │   ├── ThrottledError              429s outlived every retry
    │   └── OperationFailedError        a long-running operation ended Failed/Canceled
    ├── RequirementsNotMetError         a VM does not qualify (carries the report)
    ├── PlanBlockedError                a network plan has blocking conflicts
    ├── StalePlanError                  an NSG changed since the plan (strict apply)
    ├── NetworkVerificationError        written rules do not show the intended flows
    ├── ExtensionError
    │   ├── ExtensionInstallError       the AdminCenter extension ended Failed
    │   └── ExtensionNotInstalledError (LookupError)
    ├── NoPublicIpError (LookupError)   public access asked of a VM without one
    ├── GuestCommandError               a Run Command script failed or answered junk
    └── OperationTimeoutError (TimeoutError)

Azure's own exceptions are chained (``raise ... from exc``), never swallowed.
Messages never include bearer tokens, protected settings or passwords.
"""

from __future__ import annotations


class WacAzureError(Exception):
    """Base class of every error wac_azure raises on purpose."""


class InvalidInputError(WacAzureError, ValueError):
    """Input given to the library is malformed or unsafe."""


class InvalidResourceIdError(InvalidInputError):
    """A VM resource ID or portal URL that cannot be parsed.

    ``part`` names the piece that is wrong (``"subscription"``,
    ``"resourceGroups"``, ``"provider"``, ``"name"``, ...), ``value`` the
    text that was given.
    """

    def __init__(self, message: str, *, value: str = "", part: str = "") -> None:
        super().__init__(message)
        self.value = value
        self.part = part


class InvalidRuleError(InvalidInputError):
    """A security rule whose ARM JSON cannot be understood.

    ``rule`` is the rule's name (or ``"<unnamed>"``), ``field`` the wire
    field that is wrong.
    """

    def __init__(self, message: str, *, rule: str = "<unnamed>", field: str = "") -> None:
        super().__init__(message)
        self.rule = rule
        self.field = field


class InvalidAccessError(InvalidInputError):
    """An access mode whose sources are malformed or open the VM too wide."""


class ConfigurationError(InvalidInputError):
    """A session or call option that cannot work as given."""


class InvalidPlanError(InvalidInputError):
    """A saved :class:`~wac_azure.NetworkPlan` (``NetworkPlan.from_dict``) that cannot be
    loaded. ``field`` is the path of the field that is missing or wrong (for example
    ``"changes[2].body"``)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class StalePlanError(WacAzureError):
    """``NetworkRulePlanner.apply(plan, strict=True)`` found an NSG changed since the plan
    was made, and wrote nothing. ``nsgs`` are the ids of the NSGs that changed (or are
    gone). Plan again (or apply without ``strict`` to re-plan and apply)."""

    def __init__(self, message: str, *, nsgs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.nsgs = nsgs


class NetworkVerificationError(WacAzureError):
    """The rules were written, but a read of the NSGs afterwards does not show what was
    intended (the new sources allowed, nothing of ours left serving the old ones):
    another writer changed them in between, or Azure did not keep a write.
    ``problems`` says what is wrong, one line each; the VM is not reported enabled."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class AzureRequestError(WacAzureError):
    """Azure Resource Manager answered with an error.

    ``status`` is the HTTP status, ``code`` ARM's error code (for example
    ``"OperationNotAllowed"``) and ``target`` the resource or action concerned.
    The azure-core exception is chained as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.target = target


class AuthenticationError(AzureRequestError):
    """The request could not be authenticated.

    Either the credential could not get a token (azure-core's
    ``ClientAuthenticationError``: nobody signed in with ``az login``, no
    managed identity, a wrong client secret...; ``status`` is ``None``), or
    ARM refused the token it was given (401, e.g. ``ExpiredAuthenticationToken``
    or ``InvalidAuthenticationTokenTenant``). The azure-core exception is
    chained as ``__cause__``; the message never includes the token.
    """


class NotFoundError(AzureRequestError, LookupError):
    """A resource the operation needs does not exist."""


class VmNotFoundError(NotFoundError):
    """The target VM does not exist."""


class ResourceGroupNotFoundError(NotFoundError):
    """The target's resource group does not exist."""


class AuthorizationError(AzureRequestError, PermissionError):
    """ARM refused an action (403).

    ``action`` is the refused action (e.g.
    ``Microsoft.Network/networkSecurityGroups/securityRules/write``) and
    ``role`` a built-in role that grants it.
    """

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        role: str | None = None,
        status: int | None = 403,
        code: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, target=target)
        self.action = action
        self.role = role


class ThrottledError(AzureRequestError):
    """ARM kept answering 429 after every retry the policies allow."""


class OperationFailedError(AzureRequestError):
    """A long-running operation ended ``Failed`` or ``Canceled``."""


class ExtensionError(WacAzureError):
    """Something about the ``AdminCenter`` VM extension went wrong."""


class ExtensionInstallError(ExtensionError):
    """The ``AdminCenter`` extension ended ``Failed``.

    ``substatuses`` are the extension's messages, ``hints`` the matching
    troubleshooting steps and ``log_locations`` where the logs are.
    """

    def __init__(
        self,
        message: str,
        *,
        substatuses: tuple[str, ...] = (),
        hints: tuple[str, ...] = (),
        log_locations: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.substatuses = substatuses
        self.hints = hints
        self.log_locations = log_locations


class ExtensionNotInstalledError(ExtensionError, LookupError):
    """The ``AdminCenter`` extension is not installed on the VM."""


class NoPublicIpError(WacAzureError, LookupError):
    """Public access was asked of a VM that has no public IP address."""


class GuestCommandError(WacAzureError):
    """A Run Command script inside the VM failed or answered something unreadable."""


class OperationTimeoutError(WacAzureError, TimeoutError):
    """An operation did not finish within its ``timeout``."""
