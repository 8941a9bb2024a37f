"""Small worlds the workflow tests share."""

from __future__ import annotations

import re
from typing import Any

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


class InFlightCounting(ArmEmulator):
    """Counts the requests being answered at once (latency included) whose method is
    ``method`` and whose path matches ``path`` (a regular expression, searched):
    :attr:`peak` is the most at once."""

    def __init__(self, *, method: str, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counted_method = method
        self.counted_path = re.compile(path)
        self.now = 0
        self.peak = 0

    async def handle(self, req: Any) -> Any:
        counted = (
            req.method == self.counted_method and self.counted_path.search(req.path) is not None
        )
        if counted:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return await super().handle(req)
        finally:
            if counted:
                self.now -= 1
