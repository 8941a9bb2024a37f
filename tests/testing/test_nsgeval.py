"""The emulator's own NSG evaluator (independent of wac_azure.nsg)."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure.testing.backend.builders import make_nsg
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

from ._helpers import RG, SUB


def _nsg(*rules: tuple[str, int, str, str, str, str]) -> dict[str, Any]:
    nsg = make_nsg(SUB, RG, "n", "westeurope")
    for name, prio, direction, access, dst, port in rules:
        nsg["properties"]["securityRules"].append(
            {
                "name": name,
                "properties": {
                    "protocol": "Tcp",
                    "priority": prio,
                    "direction": direction,
                    "access": access,
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": dst,
                    "destinationPortRange": port,
                },
            }
        )
    return nsg


WAC = Endpoint(tag="WindowsAdminCenter", tag_prefixes=("13.66.201.96/28",))


VM = Endpoint(ip="10.0.0.4")


@pytest.mark.parametrize(
    ("rules", "allowed", "by"),
    [
        ((), True, "AllowInternetOutBound"),
        ((("d", 200, "Outbound", "Deny", "Internet", "443"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "*", "400-500"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "13.66.201.0/24", "443"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "8.8.8.0/24", "443"),), True, "AllowInternetOutBound"),
        ((("d", 200, "Outbound", "Deny", "Internet", "80"),), True, "AllowInternetOutBound"),
        ((("d", 200, "Inbound", "Deny", "*", "*"),), True, "AllowInternetOutBound"),
        (
            (
                ("a", 100, "Outbound", "Allow", "WindowsAdminCenter", "443"),
                ("d", 200, "Outbound", "Deny", "*", "*"),
            ),
            True,
            "a",
        ),
    ],
)
def test_evaluator_outbound(rules: Any, allowed: bool, by: str) -> None:
    verdict = flow_allowed(
        [_nsg(*rules)],
        direction="Outbound",
        protocol="Tcp",
        src=VM,
        dst=WAC,
        dst_port=443,
        vnet=["10.0.0.0/16"],
    )
    assert (verdict.allowed, verdict.rule) == (allowed, by)


def test_evaluator_needs_every_nsg_and_none_allows() -> None:
    deny = _nsg(("d", 200, "Outbound", "Deny", "*", "*"))
    kwargs: dict[str, Any] = {
        "direction": "Outbound",
        "protocol": "Tcp",
        "src": VM,
        "dst": WAC,
        "dst_port": 443,
    }
    assert flow_allowed([], **kwargs).allowed
    assert not flow_allowed([_nsg(), deny], **kwargs).allowed
    inbound = flow_allowed(
        [_nsg()],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip="10.0.1.5"),
        dst=VM,
        dst_port=6516,
        vnet=["10.0.0.0/16"],
    )
    assert (inbound.allowed, inbound.rule) == (True, "AllowVnetInBound")
    internet = flow_allowed(
        [_nsg()],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip="203.0.113.9"),
        dst=VM,
        dst_port=6516,
        vnet=["10.0.0.0/16"],
    )
    assert (internet.allowed, internet.rule) == (False, "DenyAllInBound")
