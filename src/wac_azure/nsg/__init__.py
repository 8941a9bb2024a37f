"""Network security groups: rules parsed from ARM JSON and exact flow evaluation.

Pure code: no I/O. :func:`evaluate` answers whether Azure lets a :class:`Flow`
through a VM's subnet and NIC NSGs, and why::

    from wac_azure.nsg import Flow, NetworkSecurityGroup, evaluate

    nsg = NetworkSecurityGroup.from_arm(nsg_json)
    verdict = evaluate(
        Flow("Outbound", "Tcp", "10.0.0.4", None, "WindowsAdminCenter", 443),
        nic_nsg=nsg,
        vnet_prefixes=["10.0.0.0/16"],
    )
    verdict.access  # Access.ALLOW / Access.DENY / Access.UNKNOWN
"""

from __future__ import annotations

from ._evaluate import Flow, ServiceTags, Step, Verdict, evaluate
from ._model import (
    DEFAULT_RULES,
    MANAGED_DESCRIPTION,
    Access,
    Direction,
    NetworkSecurityGroup,
    Protocol,
    SecurityRule,
)
from ._ports import PortRange

__all__ = [
    "DEFAULT_RULES",
    "MANAGED_DESCRIPTION",
    "Access",
    "Direction",
    "Flow",
    "NetworkSecurityGroup",
    "PortRange",
    "Protocol",
    "SecurityRule",
    "ServiceTags",
    "Step",
    "Verdict",
    "evaluate",
]
