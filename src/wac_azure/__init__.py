"""wac_azure: put Windows Admin Center on Azure Windows Server VMs, programmatically.

Importing the package is cheap: the Azure SDK clients (``azure.mgmt.network.aio``
costs about a second) are imported only when a session first needs them.
"""

from __future__ import annotations

from ._errors import (
    AuthorizationError,
    AzureRequestError,
    ConfigurationError,
    ExtensionError,
    ExtensionInstallError,
    ExtensionNotInstalledError,
    GuestCommandError,
    InvalidAccessError,
    InvalidInputError,
    InvalidResourceIdError,
    InvalidRuleError,
    NoPublicIpError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    PlanBlockedError,
    RequirementsNotMetError,
    ResourceGroupNotFoundError,
    ThrottledError,
    VmNotFoundError,
    WacAzureError,
)
from ._ids import VmTarget
from ._retry import RetryConfig
from ._session import AzureSession

__version__ = "0.1.0.dev0"

# Keep sorted; tests/test_public_api.py checks it against docs/api.md.
__all__ = [
    "AuthorizationError",
    "AzureRequestError",
    "AzureSession",
    "ConfigurationError",
    "ExtensionError",
    "ExtensionInstallError",
    "ExtensionNotInstalledError",
    "GuestCommandError",
    "InvalidAccessError",
    "InvalidInputError",
    "InvalidResourceIdError",
    "InvalidRuleError",
    "NoPublicIpError",
    "NotFoundError",
    "OperationFailedError",
    "OperationTimeoutError",
    "PlanBlockedError",
    "RequirementsNotMetError",
    "ResourceGroupNotFoundError",
    "RetryConfig",
    "ThrottledError",
    "VmNotFoundError",
    "VmTarget",
    "WacAzureError",
    "__version__",
]
