"""wac_azure: put Windows Admin Center on Azure Windows Server VMs, programmatically.

Importing the package is cheap: the Azure SDK clients (``azure.mgmt.network.aio``
costs about a second) are imported only when a session first needs them.
"""

from __future__ import annotations

from ._access import PrivateAccess, PublicAccess
from ._diagnose import Diagnosis, Finding, FindingStatus, diagnose
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
from ._extension import (
    ExtensionManager,
    ExtensionState,
    OperationHandle,
    PortInfo,
    PortSource,
    UninstallResult,
)
from ._facts import (
    ExtensionFacts,
    NicFacts,
    OsInfo,
    PublicIpFacts,
    StatusFacts,
    VmFacts,
    read_vm_facts,
)
from ._fleet import FleetResult, OutcomeStatus, VmOutcome, disable_many, discover, enable_many
from ._ids import VmTarget
from ._pacing import Pacer, PacingConfig, pacing_priority
from ._plan import (
    ApplyResult,
    BlockingConflict,
    ChangeAction,
    FlowCheck,
    NetworkPlan,
    RuleChange,
    plan_network,
)
from ._planner import NetworkRulePlanner
from ._progress import ProgressCallback, ProgressEvent, ProgressStage, TqdmProgress
from ._requirements import Check, CheckStatus, RequirementChecker, RequirementReport
from ._retry import RetryConfig
from ._session import AzureSession
from ._workflows import DisableResult, EnableResult, disable, enable

__version__ = "0.1.0.dev0"

# Keep sorted; tests/test_public_api.py checks it against docs/api.md.
__all__ = [
    "ApplyResult",
    "AuthorizationError",
    "AzureRequestError",
    "AzureSession",
    "BlockingConflict",
    "ChangeAction",
    "Check",
    "CheckStatus",
    "ConfigurationError",
    "Diagnosis",
    "DisableResult",
    "EnableResult",
    "ExtensionError",
    "ExtensionFacts",
    "ExtensionInstallError",
    "ExtensionManager",
    "ExtensionNotInstalledError",
    "ExtensionState",
    "Finding",
    "FindingStatus",
    "FleetResult",
    "FlowCheck",
    "GuestCommandError",
    "InvalidAccessError",
    "InvalidInputError",
    "InvalidResourceIdError",
    "InvalidRuleError",
    "NetworkPlan",
    "NetworkRulePlanner",
    "NicFacts",
    "NoPublicIpError",
    "NotFoundError",
    "OperationFailedError",
    "OperationHandle",
    "OperationTimeoutError",
    "OsInfo",
    "OutcomeStatus",
    "Pacer",
    "PacingConfig",
    "PlanBlockedError",
    "PortInfo",
    "PortSource",
    "PrivateAccess",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressStage",
    "PublicAccess",
    "PublicIpFacts",
    "RequirementChecker",
    "RequirementReport",
    "RequirementsNotMetError",
    "ResourceGroupNotFoundError",
    "RetryConfig",
    "RuleChange",
    "StatusFacts",
    "ThrottledError",
    "TqdmProgress",
    "UninstallResult",
    "VmFacts",
    "VmNotFoundError",
    "VmOutcome",
    "VmTarget",
    "WacAzureError",
    "__version__",
    "diagnose",
    "disable",
    "disable_many",
    "discover",
    "enable",
    "enable_many",
    "pacing_priority",
    "plan_network",
    "read_vm_facts",
]
