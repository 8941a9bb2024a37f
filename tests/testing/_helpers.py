"""Names the emulator's tests share: the default scope, NSG IDs, rule and extension bodies."""

from __future__ import annotations

from typing import Any

from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator
from wac_azure.testing.backend.wire import EmuRequest

SUB = DEFAULT_SUBSCRIPTION
RG = "rg-wac"
NSG_T = "Microsoft.Network/networkSecurityGroups"
BASE = "https://arm.emulator.localhost"


def nsg_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{NSG_T}/{name}"


def rule(priority: int = 200, **props: Any) -> dict[str, Any]:
    """An inbound allow rule from VirtualNetwork to port 6516 (``props`` override)."""
    p: dict[str, Any] = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": priority,
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "6516",
    }
    p.update(props)
    return {"properties": p}


def rule_body(priority: int = 200) -> dict[str, Any]:
    """An inbound allow rule from anywhere to port 6516."""
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "direction": "Inbound",
            "priority": priority,
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "6516",
        }
    }


ADMIN_CENTER = {
    "location": "westeurope",
    "properties": {
        "publisher": "Microsoft.AdminCenter",
        "type": "AdminCenter",
        "typeHandlerVersion": "0.0",
        "autoUpgradeMinorVersion": True,
        "settings": {"port": "6516"},
    },
}


def request(emu: ArmEmulator, method: str, path: str, *, auth: bool = True) -> EmuRequest:
    """A request as the in-process front makes it (with the token unless ``auth=False``)."""
    headers = {"Authorization": f"Bearer {emu.token}"} if auth else {}
    return EmuRequest(method, f"{BASE}{path}?api-version=2024-07-01", headers)
