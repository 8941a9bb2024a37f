"""Small worlds the workflow tests share."""

from __future__ import annotations

from wac_azure import VmTarget
from wac_azure.testing import ArmEmulator


def nic_nsg_id(target: VmTarget) -> str:
    """The id of the NSG ``add_windows_vm`` puts on the VM's NIC (``{name}-nsg``)."""
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{target.name}-nsg"
    )


def locked_vm(emu: ArmEmulator, name: str) -> VmTarget:
    """A VM whose NSG denies outbound Internet: enable writes two rules in front of it."""
    target = emu.add_windows_vm(name)
    emu.add_rule(
        nic_nsg_id(target),
        {
            "name": "DenyOut",
            "properties": {
                "priority": 200,
                "direction": "Outbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "*",
            },
        },
    )
    return target
