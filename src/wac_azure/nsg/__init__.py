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

:func:`walk_nsg` looks at one NSG alone and also tells where an allow rule
would have to go; :data:`ANY_PORT`, :data:`NON_INTERNET` and
:func:`parse_network` are the building blocks the network planner shares.
"""

from __future__ import annotations

from wac_azure._core.nsg import *  # noqa: F403 - the public face of wac_azure._core.nsg
from wac_azure._core.nsg import __all__ as __all__
