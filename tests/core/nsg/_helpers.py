"""Small builders for NSG tests (rule JSON, NSGs, flows)."""

from __future__ import annotations

import json
from typing import Any

from wac_azure._core.nsg import NetworkSecurityGroup

from tests._shared import ARM_FIXTURES

FIXTURES = ARM_FIXTURES
NSG_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.Network/networkSecurityGroups/nsg1"
)
VNET = ("10.0.0.0/16",)


def fixture_body(name: str, status: str = "200") -> Any:
    doc = json.loads((FIXTURES / name).read_text())
    return doc["responses"][status]["body"]


def rule(
    name: str,
    priority: int,
    *,
    direction: str = "Inbound",
    access: str = "Allow",
    protocol: str = "Tcp",
    src: str | list[str] = "*",
    sport: str | list[str] = "*",
    dst: str | list[str] = "*",
    dport: str | list[str] = "*",
    **extra: Any,
) -> dict[str, Any]:
    """Wire JSON of a rule (singular fields for a str, plural for a list)."""
    props: dict[str, Any] = {
        "protocol": protocol,
        "access": access,
        "priority": priority,
        "direction": direction,
    }
    for key, value in (
        ("sourceAddressPrefix", src),
        ("sourcePortRange", sport),
        ("destinationAddressPrefix", dst),
        ("destinationPortRange", dport),
    ):
        if isinstance(value, list):
            props[key + "es" if key.endswith("Prefix") else key + "s"] = value
        else:
            props[key] = value
    props.update(extra)
    return {"name": name, "properties": props}


def nsg(
    *rules: dict[str, Any], nsg_id: str = NSG_ID, defaults: bool = False
) -> NetworkSecurityGroup:
    body: dict[str, Any] = {
        "id": nsg_id,
        "name": nsg_id.rsplit("/", 1)[-1],
        "location": "westeurope",
        "etag": 'W/"1"',
        "properties": {"securityRules": list(rules)},
    }
    if defaults:
        body["properties"]["defaultSecurityRules"] = fixture_body(
            "network.DefaultSecurityRuleList.json"
        )["value"]
    return NetworkSecurityGroup.from_arm(body)
