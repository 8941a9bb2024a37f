"""Differential test: wac_azure.nsg.evaluate against the emulator's independent evaluator.

The two were written separately (the emulator must not borrow the library's
evaluation). On the inputs where both are exact — single addresses, service
tags with known prefixes that rule CIDRs either contain or miss, source port
``*`` — they must decide the same way with the same rule.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wac_azure._core.nsg import Access, Flow, NetworkSecurityGroup, evaluate
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

from ._helpers import NSG_ID, fixture_body

SUBNET_ID = NSG_ID.replace("nsg1", "subnet-nsg")
VNET = ("10.0.0.0/16",)
WAC = ("20.21.34.136/29",)
TAGS = {"WindowsAdminCenter": list(WAC)}
PREFIXES = [
    "*",
    "0.0.0.0/0",
    "10.0.0.0/16",
    "10.0.0.4",
    "10.0.1.0/24",
    "52.1.0.0/16",
    "52.1.2.3",
    "20.0.0.0/8",
    "VirtualNetwork",
    "Internet",
    "WindowsAdminCenter",
    "AzureLoadBalancer",
]
IPS = ["10.0.0.4", "10.0.1.9", "52.1.2.3", "8.8.8.8", "20.5.5.5"]
DEFAULTS = fixture_body("network.DefaultSecurityRuleList.json")["value"]


@st.composite
def nsg_json(draw: st.DrawFn, nsg_id: str) -> dict[str, Any]:
    rules = []
    slots = draw(
        st.lists(
            st.tuples(st.sampled_from(["Inbound", "Outbound"]), st.integers(100, 400)),
            max_size=8,
            unique=True,
        )
    )
    for i, (direction, prio) in enumerate(slots):
        src = draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2, unique=True))
        dst = draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2, unique=True))
        ports = draw(
            st.lists(
                st.sampled_from(["*", "443", "6516", "6000-7000", "22"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
        props: dict[str, Any] = {
            "protocol": draw(st.sampled_from(["Tcp", "Udp", "*"])),
            "access": draw(st.sampled_from(["Allow", "Deny"])),
            "priority": prio,
            "direction": direction,
            "sourcePortRange": "*",
        }
        for key, values in (
            ("sourceAddressPrefix", src),
            ("destinationAddressPrefix", dst),
            ("destinationPortRange", ports),
        ):
            if len(values) == 1:
                props[key] = values[0]
            else:
                props[key + ("es" if key.endswith("x") else "s")] = values
        rules.append({"name": f"r{i}", "properties": props})
    return {
        "id": nsg_id,
        "name": nsg_id.rsplit("/", 1)[-1],
        "properties": {"securityRules": rules, "defaultSecurityRules": DEFAULTS},
    }


def endpoint(value: str) -> Endpoint:
    if value == "WindowsAdminCenter":
        return Endpoint(tag=value, tag_prefixes=WAC)
    return Endpoint(ip=value)


@settings(max_examples=200, deadline=None)
@given(
    nsg_json(NSG_ID),
    st.one_of(st.none(), nsg_json(SUBNET_ID)),
    st.sampled_from(["Inbound", "Outbound"]),
    st.sampled_from(["Tcp", "Udp"]),
    st.sampled_from([*IPS, "WindowsAdminCenter"]),
    st.sampled_from(IPS),
    st.sampled_from([443, 6516, 22, 8080]),
)
def test_evaluator_agrees_with_the_emulator(
    nic_json: dict[str, Any],
    subnet_json: dict[str, Any] | None,
    direction: str,
    protocol: str,
    remote: str,
    vm_ip: str,
    port: int,
) -> None:
    src, dst = (remote, vm_ip) if direction == "Inbound" else (vm_ip, remote)
    nic = NetworkSecurityGroup.from_arm(nic_json)
    subnet = NetworkSecurityGroup.from_arm(subnet_json) if subnet_json else None
    ours = evaluate(
        Flow(direction, protocol, src, None, dst, port),
        nic_nsg=nic,
        subnet_nsg=subnet,
        vnet_prefixes=VNET,
        service_tags=TAGS,
    )
    path = [n for n in (subnet_json, nic_json) if n is not None]
    if direction == "Outbound":
        path.reverse()
    theirs = flow_allowed(
        path,
        direction=direction,
        protocol=protocol,
        src=endpoint(src),
        dst=endpoint(dst),
        dst_port=port,
        vnet=VNET,
    )
    assert ours.access is not Access.UNKNOWN  # every input here is exact
    assert (ours.access is Access.ALLOW) == theirs.allowed, ours.reason
    assert ours.rule == theirs.rule
    assert (ours.nsg or None) == (theirs.nsg if path else None)
