"""wac_azure: put Windows Admin Center on Azure Windows Server VMs, programmatically.

Importing the package is cheap: the Azure SDK clients (``azure.mgmt.network.aio``
costs about a second) are imported only when a session first needs them.
"""

from __future__ import annotations

from wac_azure._azure.extension import ExtensionManager, OperationHandle
from wac_azure._azure.pacing import Pacer, PacingConfig, pacing_priority
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.requirements import RequirementChecker
from wac_azure._azure.retry import RetryConfig
from wac_azure._azure.rules import NetworkRulePlanner
from wac_azure._azure.session import AzureSession
from wac_azure._core.access import AccessMode, PrivateAccess, PublicAccess
from wac_azure._core.decide import PlanBlockedError, RequirementsNotMetError
from wac_azure._core.errors import (
    AuthenticationError,
    AuthorizationError,
    AzureRequestError,
    ConfigurationError,
    ExtensionError,
    ExtensionInstallError,
    ExtensionNotInstalledError,
    GuestCommandError,
    InvalidAccessError,
    InvalidInputError,
    InvalidPlanError,
    InvalidResourceIdError,
    InvalidRuleError,
    NetworkVerificationError,
    NoPublicIpError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    ResourceGroupNotFoundError,
    StalePlanError,
    ThrottledError,
    VmNotFoundError,
    WacAzureError,
)
from wac_azure._core.extension import ExtensionState, PortInfo, PortSource, UninstallResult
from wac_azure._core.facts import (
    DEFAULT_PORT,
    ExtensionFacts,
    NicFacts,
    OsInfo,
    PublicIpFacts,
    StatusFacts,
    VmFacts,
)
from wac_azure._core.findings import (
    Check,
    CheckStatus,
    Diagnosis,
    Finding,
    FindingStatus,
    RequirementReport,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.plan import (
    ApplyResult,
    BlockingConflict,
    ChangeAction,
    FlowCheck,
    NetworkPlan,
    RuleChange,
    UnownedRule,
    plan_network,
)
from wac_azure._core.progress import ProgressCallback, ProgressEvent, ProgressStage
from wac_azure._workflows.diagnose import diagnose
from wac_azure._workflows.enable import (
    DisableResult,
    EnablePreview,
    EnableResult,
    disable,
    enable,
)
from wac_azure._workflows.fleet.dryrun import FleetPlan, VmPlan
from wac_azure._workflows.fleet.engine import disable_many, discover, enable_many
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome
from wac_azure._workflows.fleet.shards import SessionFactory, ShardError
from wac_azure._workflows.progress import ProgressBar, TqdmProgress

__version__ = "0.1.0.dev0"

# Keep sorted; tests/docs/test_public_api.py checks it (sorted, documented, rendered).
__all__ = [
    "DEFAULT_PORT",
    "AccessMode",
    "ApplyResult",
    "AuthenticationError",
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
    "EnablePreview",
    "EnableResult",
    "ExtensionError",
    "ExtensionFacts",
    "ExtensionInstallError",
    "ExtensionManager",
    "ExtensionNotInstalledError",
    "ExtensionState",
    "Finding",
    "FindingStatus",
    "FleetPlan",
    "FleetResult",
    "FlowCheck",
    "GuestCommandError",
    "InvalidAccessError",
    "InvalidInputError",
    "InvalidPlanError",
    "InvalidResourceIdError",
    "InvalidRuleError",
    "NetworkPlan",
    "NetworkRulePlanner",
    "NetworkVerificationError",
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
    "ProgressBar",
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
    "SessionFactory",
    "ShardError",
    "StalePlanError",
    "StatusFacts",
    "ThrottledError",
    "TqdmProgress",
    "UninstallResult",
    "UnownedRule",
    "VmFacts",
    "VmNotFoundError",
    "VmOutcome",
    "VmPlan",
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
