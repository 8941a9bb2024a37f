"""Flow evaluation: table tests against the semantics of AZURE_FACTS.md §5 and real fixtures."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from wac_azure import InvalidInputError
from wac_azure._core.nsg import (
    Access,
    Flow,
    NetworkSecurityGroup,
    SecurityRule,
    ServiceTags,
    evaluate,
)

from ._helpers import NSG_ID, VNET, fixture_body, nsg, rule

SUBNET_NSG_ID = NSG_ID.replace("nsg1", "subnet-nsg")
ASG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/wac"
VM = "10.0.0.4"


def wac_out(dest: str = "WindowsAdminCenter", port: int = 443, src: str = VM) -> Flow:
    return Flow("Outbound", "Tcp", src, None, dest, port)


def inbound(src: str, port: int = 6516, dst: str = VM) -> Flow:
    return Flow("Inbound", "Tcp", src, None, dst, port)


def ev(flow: Flow, *rules: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("vnet_prefixes", VNET)
    return evaluate(flow, nic_nsg=nsg(*rules), **kw)


# -- defaults ----------------------------------------------------------------------------


def test_defaults_deny_internet_inbound_and_allow_vnet() -> None:
    v = ev(inbound("203.0.113.5"))
    assert (v.access, v.rule, v.nsg) == (Access.DENY, "DenyAllInBound", NSG_ID)
    v = ev(inbound("10.0.7.9"))
    assert (v.access, v.rule) == (Access.ALLOW, "AllowVnetInBound")
    v = ev(inbound("VirtualNetwork"))
    assert (v.access, v.rule) == (Access.ALLOW, "AllowVnetInBound")
    v = ev(inbound("168.63.129.16"))
    assert (v.access, v.rule) == (Access.ALLOW, "AllowAzureLoadBalancerInBound")


def test_defaults_allow_service_tags_outbound_through_internet() -> None:
    for tag in ("WindowsAdminCenter", "AzureActiveDirectory", "Storage.WestEurope"):
        v = ev(wac_out(tag))
        assert (v.access, v.rule) == (Access.ALLOW, "AllowInternetOutBound"), tag
    assert ev(wac_out("52.1.2.3")).rule == "AllowInternetOutBound"


def test_internet_excludes_private_cgnat_loopback_linklocal_and_vnet() -> None:
    deny_internet = rule("DenyInternet", 200, direction="Outbound", access="Deny", dst="Internet")
    for ip in ("192.168.1.1", "172.16.5.5", "100.64.0.1", "169.254.1.1", "127.0.0.1", "10.0.3.3"):
        v = ev(wac_out(ip), deny_internet)
        assert v.rule != "DenyInternet", ip
    # public space outside the VNet is Internet; a VNet using public space is not
    assert ev(wac_out("52.1.2.3"), deny_internet).rule == "DenyInternet"
    v = ev(wac_out("52.1.2.3"), deny_internet, vnet_prefixes=(*VNET, "52.1.0.0/16"))
    assert v.rule == "AllowVnetOutBound"


def test_vnet_unknown_makes_vnet_rules_unknown() -> None:
    v = evaluate(inbound("10.0.7.9"), nic_nsg=nsg())
    assert v.access is Access.UNKNOWN
    assert v.rule == "AllowVnetInBound"


def test_no_nsg_allows() -> None:
    v = evaluate(inbound("203.0.113.5"))
    assert v.access is Access.ALLOW
    assert v.rule is None
    assert v.nsg is None
    assert v.steps == ()


# -- priority and path -------------------------------------------------------------------


def test_first_match_by_priority_decides() -> None:
    deny = rule("Deny6516", 200, access="Deny", dport="6516")
    allow = rule("Allow6516", 300, src="203.0.113.0/24", dport="6516")
    v = ev(inbound("203.0.113.5"), deny, allow)
    assert (v.access, v.rule) == (Access.DENY, "Deny6516")
    allow_first = rule("Allow6516", 150, src="203.0.113.0/24", dport="6516")
    v = ev(inbound("203.0.113.5"), deny, allow_first)
    assert (v.access, v.rule) == (Access.ALLOW, "Allow6516")
    assert "150" in v.reason


def test_inbound_subnet_then_nic_and_both_must_allow() -> None:
    allow = rule("Open", 100, src="203.0.113.5", dport="6516")
    nic = nsg(allow)
    subnet = nsg(nsg_id=SUBNET_NSG_ID)
    v = evaluate(inbound("203.0.113.5"), nic_nsg=nic, subnet_nsg=subnet, vnet_prefixes=VNET)
    assert v.access is Access.DENY
    assert v.nsg == SUBNET_NSG_ID
    assert [s.role for s in v.steps] == ["subnet", "nic"]
    assert [s.access for s in v.steps] == [Access.DENY, Access.ALLOW]
    subnet_open = nsg(allow, nsg_id=SUBNET_NSG_ID)
    v = evaluate(inbound("203.0.113.5"), nic_nsg=nic, subnet_nsg=subnet_open, vnet_prefixes=VNET)
    assert v.access is Access.ALLOW
    assert v.nsg == NSG_ID
    out = evaluate(wac_out(), nic_nsg=nic, subnet_nsg=subnet, vnet_prefixes=VNET)
    assert [s.role for s in out.steps] == ["nic", "subnet"]


def test_outbound_nic_denies_first() -> None:
    deny = rule("NoOut", 100, direction="Outbound", access="Deny")
    v = evaluate(
        wac_out(),
        nic_nsg=nsg(deny),
        subnet_nsg=nsg(deny, nsg_id=SUBNET_NSG_ID),
        vnet_prefixes=VNET,
    )
    assert v.access is Access.DENY
    assert v.nsg == NSG_ID
    assert "nic NSG" in v.reason


# -- service tags and unknowns -----------------------------------------------------------


def test_tag_flow_meets_rule_prefixes() -> None:
    for dst, hit in [
        ("*", True),
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("Internet", True),
        ("internet", True),
        ("WindowsAdminCenter", True),
        ("windowsadmincenter", True),
        ("VirtualNetwork", False),
        ("AzureLoadBalancer", False),
    ]:
        deny = rule("D", 200, direction="Outbound", access="Deny", dst=dst, dport="443")
        v = ev(wac_out(), deny)
        assert (v.rule == "D") is hit, dst


def test_cidr_against_unknown_tag_is_unknown_never_a_guess() -> None:
    deny = rule("DenyRange", 200, direction="Outbound", access="Deny", dst="20.0.0.0/8")
    v = ev(wac_out(), deny)
    assert v.access is Access.UNKNOWN
    assert v.rule == "DenyRange"
    inside = ev(wac_out(), deny, service_tags={"WindowsAdminCenter": ["20.1.0.0/16"]})
    assert (inside.access, inside.rule) == (Access.DENY, "DenyRange")
    outside = ev(wac_out(), deny, service_tags={"WindowsAdminCenter": ["52.1.0.0/16"]})
    assert (outside.access, outside.rule) == (Access.ALLOW, "AllowInternetOutBound")
    partly = ev(
        wac_out(), deny, service_tags={"windowsadmincenter": ["52.1.0.0/16", "20.9.0.0/24"]}
    )
    assert (partly.access, partly.rule) == (Access.DENY, "DenyRange")


def test_unknown_rule_after_deciding_rule_is_harmless() -> None:
    allow = rule("PortForWACService", 100, direction="Outbound", dst="WindowsAdminCenter")
    deny = rule("DenyRange", 200, direction="Outbound", access="Deny", dst="20.0.0.0/8")
    assert ev(wac_out(), allow, deny).access is Access.ALLOW


def test_unknown_rule_with_same_access_as_decider_is_decided() -> None:
    unknown_deny = rule("DenyRange", 200, direction="Outbound", access="Deny", dst="20.0.0.0/8")
    deny_all = rule("DenyAll", 300, direction="Outbound", access="Deny")
    v = ev(wac_out(), unknown_deny, deny_all)
    assert (v.access, v.rule) == (Access.DENY, "DenyAll")


def test_tag_rule_against_ip_flow() -> None:
    deny = rule("DenyStorage", 200, direction="Outbound", access="Deny", dst="Storage.WestEurope")
    tags = ServiceTags({"Storage.WestEurope": ["13.69.0.0/16"]})
    assert ev(wac_out("13.69.1.1"), deny, service_tags=tags).rule == "DenyStorage"
    assert ev(wac_out("13.70.1.1"), deny, service_tags=tags).rule == "AllowInternetOutBound"
    assert ev(wac_out("13.69.1.1"), deny).access is Access.UNKNOWN
    # a different tag with unknown prefixes: unknown; with prefixes on both sides: exact
    v = ev(wac_out("WindowsAdminCenter"), deny)
    assert v.access is Access.UNKNOWN
    tags2 = {"Storage.WestEurope": ["13.69.0.0/16"], "WindowsAdminCenter": ["20.0.0.0/24"]}
    assert ev(wac_out(), deny, service_tags=tags2).access is Access.ALLOW


def test_service_tags_from_fixture() -> None:
    tags = ServiceTags.from_arm(fixture_body("network.ServiceTagsList.json"))
    assert "apimanagement.australiacentral" in tags
    assert len(tags) == 5
    assert tags.change_number == "63"
    deny = rule("DenySB", 200, direction="Outbound", access="Deny", dst="ServiceBus.EastUS2")
    assert ev(wac_out("40.70.146.66"), deny, service_tags=tags).rule == "DenySB"
    assert ev(wac_out("40.70.146.80"), deny, service_tags=tags).rule == "AllowInternetOutBound"


# -- ASGs, ports, protocols, partial flows -----------------------------------------------


def test_asg_matches_only_members() -> None:
    allow = rule("AllowAsg", 100, dport="6516", dst=[])
    allow["properties"]["destinationApplicationSecurityGroups"] = [{"id": ASG}]
    del allow["properties"]["destinationAddressPrefixes"]
    member = ev(inbound("203.0.113.5"), allow, asgs=[ASG.upper()])
    assert (member.access, member.rule) == (Access.ALLOW, "AllowAsg")
    other = ev(inbound("203.0.113.5"), allow)
    assert (other.access, other.rule) == (Access.DENY, "DenyAllInBound")


def test_remote_asg_unknown_inside_vnet_no_match_outside() -> None:
    deny = rule("DenyFromAsg", 100, access="Deny", src=[])
    deny["properties"]["sourceApplicationSecurityGroups"] = [{"id": ASG}]
    del deny["properties"]["sourceAddressPrefixes"]
    assert ev(inbound("10.0.5.5"), deny).access is Access.UNKNOWN
    assert ev(inbound("203.0.113.5"), deny).rule == "DenyAllInBound"


def test_ports_and_protocols() -> None:
    r = rule("Range", 100, protocol="Udp", dport="6000-7000", src="203.0.113.5")
    assert ev(inbound("203.0.113.5"), r).rule == "DenyAllInBound"  # Tcp flow, Udp rule
    r = rule("Range", 100, protocol="*", dport=["22", "6000-7000"], src="203.0.113.5")
    assert ev(inbound("203.0.113.5"), r).rule == "Range"
    assert ev(inbound("203.0.113.5", port=7001), r).rule == "DenyAllInBound"
    # a specific source port: the flow's "any source port" is only partly allowed
    r = rule("SrcPort", 100, sport="1024-65535", src="203.0.113.5", dport="6516")
    assert ev(inbound("203.0.113.5"), r).rule == "DenyAllInBound"
    f = Flow("Inbound", "Tcp", "203.0.113.5", 50000, VM, 6516)
    assert evaluate(f, nic_nsg=nsg(r), vnet_prefixes=VNET).rule == "SrcPort"


def test_partial_flows() -> None:
    deny_part = rule("DenyPart", 100, access="Deny", src="203.0.113.0/28")
    allow_all = rule("AllowAll", 200, src="203.0.113.0/24", dport="6516")
    v = ev(inbound("203.0.113.0/24"), deny_part, allow_all)
    assert (v.access, v.rule) == (Access.DENY, "DenyPart")
    assert "part" in v.reason
    allow_part = rule("AllowPart", 100, src="203.0.113.0/28", dport="6516")
    v = ev(inbound("203.0.113.0/24"), allow_part)
    assert v.rule == "DenyAllInBound"
    assert ev(inbound("203.0.113.0/24"), allow_all).rule == "AllowAll"


def test_ipv6() -> None:
    allow = rule("V6", 100, src="2001:db8::/32", dport="6516")
    assert ev(inbound("2001:db8::5", dst="fd00::4"), allow).rule == "V6"
    assert ev(inbound("2001:db9::5", dst="fd00::4"), allow).rule == "DenyAllInBound"
    v4_any = rule("V4Any", 100, src="0.0.0.0/0", dport="6516")
    assert ev(inbound("2001:db9::5", dst="fd00::4"), v4_any).rule == "DenyAllInBound"
    assert ev(inbound("198.51.100.1"), v4_any).rule == "V4Any"


def test_flow_validation() -> None:
    for bad in (
        lambda: Flow("Up", "Tcp", VM, None, VM, 1),
        lambda: Flow("Inbound", "*", VM, None, VM, 1),
        lambda: Flow("Inbound", "Gre", VM, None, VM, 1),
        lambda: Flow("Inbound", "Tcp", "10.0.0.300", None, VM, 1),
        lambda: Flow("Inbound", "Tcp", VM, None, VM, 70000),
    ):
        with pytest.raises(InvalidInputError):
            bad()
    with pytest.raises(InvalidInputError):
        evaluate(inbound("1.2.3.4"), nic_nsg=nsg(), vnet_prefixes=("nope",))


# -- fixtures: effective rules cross-check -----------------------------------------------


def _effective() -> list[dict[str, Any]]:
    return list(
        fixture_body("network.NetworkInterfaceEffectiveNSGList.json")["value"][0][
            "effectiveSecurityRules"
        ]
    )


def test_effective_rules_parse_and_decide_like_azure() -> None:
    rules = [
        SecurityRule.from_arm(r, is_default=r["name"].startswith("default")) for r in _effective()
    ]
    custom = [r for r in rules if not r.is_default]
    group = NetworkSecurityGroup(id=NSG_ID, name="test-nsg", rules=tuple(custom))
    # rule1: Tcp 0.0.0.0:456 -> 0.0.0.0:6579
    f = Flow("Inbound", "Tcp", "0.0.0.0", 456, "0.0.0.0", 6579)
    assert evaluate(f, nic_nsg=group, vnet_prefixes=VNET).rule == "securityRules/rule1"
    f = Flow("Inbound", "Tcp", "0.0.0.0", 457, "0.0.0.0", 6579)
    assert evaluate(f, nic_nsg=group, vnet_prefixes=VNET).rule == "DenyAllInBound"
    f = Flow("Inbound", "Tcp", "1.1.1.1", None, VM, 3389)
    assert evaluate(f, nic_nsg=group, vnet_prefixes=VNET).rule == "securityRules/default-allow-rdp"


def test_internet_tag_agrees_with_azure_expansion() -> None:
    internet = next(r for r in _effective() if r["destinationAddressPrefix"] == "Internet")
    expanded = [ipaddress.ip_network(p) for p in internet["expandedDestinationAddressPrefix"]]
    tagged = SecurityRule.from_arm(
        rule("T", 200, direction="Outbound", access="Deny", dst="Internet")
    )
    literal = SecurityRule.from_arm(
        rule(
            "L",
            200,
            direction="Outbound",
            access="Deny",
            dst=[str(n) for n in expanded],
        )
    )
    for net in expanded:
        for ip in (net.network_address + 1, net.broadcast_address - 1, net.network_address):
            flow = wac_out(str(ip))
            by_tag = evaluate(flow, nic_nsg=nsg(tagged.to_arm()), vnet_prefixes=VNET)
            by_list = evaluate(flow, nic_nsg=nsg(literal.to_arm()), vnet_prefixes=VNET)
            assert by_tag.access is by_list.access is Access.DENY, ip
    # addresses Azure leaves out of Internet (the VNet, private space) stay out
    for ip in ("10.0.0.9", "192.168.0.1"):
        v = evaluate(wac_out(ip), nic_nsg=nsg(tagged.to_arm()), vnet_prefixes=VNET)
        assert v.rule != "T"


# -- rendering ---------------------------------------------------------------------------


def test_verdict_rendering_is_json_safe_and_escaped() -> None:
    import json

    evil = NetworkSecurityGroup.from_arm(
        {"id": NSG_ID.replace("nsg1", "x"), "name": "<b>nsg</b>", "properties": {}}
    )
    v = evaluate(inbound("203.0.113.5"), nic_nsg=evil, vnet_prefixes=VNET)
    data = json.loads(json.dumps(v.to_dict()))
    assert data["access"] == "Deny"
    assert data["steps"][0]["rule"] == "DenyAllInBound"
    html = v._repr_html_()
    assert "<b>nsg</b>" not in html
    assert "&lt;b&gt;nsg&lt;/b&gt;" in html
    assert "DenyAllInBound" in str(v)
