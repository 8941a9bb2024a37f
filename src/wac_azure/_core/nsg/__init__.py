"""NSG rules parsed from ARM JSON and exact flow evaluation (pure); public as ``wac_azure.nsg``."""

from __future__ import annotations

from wac_azure._core.nsg.evaluate import (
    Flow,
    NsgWalk,
    ServiceTags,
    Step,
    Verdict,
    evaluate,
    walk_nsg,
)
from wac_azure._core.nsg.model import (
    DEFAULT_RULES,
    MANAGED_DESCRIPTION,
    Access,
    Direction,
    NetworkSecurityGroup,
    Protocol,
    SecurityRule,
)
from wac_azure._core.nsg.ports import ANY_PORT, PortRange
from wac_azure._core.nsg.prefixes import NON_INTERNET, parse_network

__all__ = [
    "ANY_PORT",
    "DEFAULT_RULES",
    "MANAGED_DESCRIPTION",
    "NON_INTERNET",
    "Access",
    "Direction",
    "Flow",
    "NetworkSecurityGroup",
    "NsgWalk",
    "PortRange",
    "Protocol",
    "SecurityRule",
    "ServiceTags",
    "Step",
    "Verdict",
    "evaluate",
    "parse_network",
    "walk_nsg",
]
