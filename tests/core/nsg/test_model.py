"""Parsing security rules and NSGs from ARM JSON."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest

from wac_azure import InvalidRuleError
from wac_azure._core.nsg import (
    DEFAULT_RULES,
    Access,
    Direction,
    NetworkSecurityGroup,
    PortRange,
    Protocol,
    SecurityRule,
)

from ._helpers import FIXTURES, NSG_ID, fixture_body, nsg, rule


def test_fixture_nsg_parses_custom_and_default_rules() -> None:
    body = fixture_body("network.NetworkSecurityGroupGet.json")
    parsed = NetworkSecurityGroup.from_arm(body)
    assert parsed.name == "testnsg"
    assert parsed.location == "westus"
    assert [r.name for r in parsed.rules] == ["rule1"]
    r1 = parsed.rules[0]
    assert (r1.priority, r1.direction, r1.access, r1.protocol) == (
        130,
        Direction.INBOUND,
        Access.ALLOW,
        Protocol.ANY,
    )
    assert r1.destination_ports == (PortRange(80, 80),)
    assert r1.source_ports == (PortRange(0, 65535),)
    assert not r1.is_default
    assert {r.name for r in parsed.default_rules} == {r.name for r in DEFAULT_RULES}
    assert all(r.is_default for r in parsed.default_rules)
    # the fixture's defaults equal the implied ones
    assert parsed.default_rules == NetworkSecurityGroup(id="x", name="x").default_rules


def test_defaults_implied_when_absent() -> None:
    parsed = NetworkSecurityGroup.from_arm({"id": NSG_ID, "properties": {}})
    assert parsed.name == "nsg1"
    inbound = [r.name for r in parsed.all_rules("Inbound")]
    outbound = [r.name for r in parsed.all_rules(Direction.OUTBOUND)]
    assert inbound == ["AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound"]
    assert outbound == ["AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"]


def test_default_rule_list_fixture_with_empty_plurals() -> None:
    values = fixture_body("network.DefaultSecurityRuleList.json")["value"]
    rules = [SecurityRule.from_arm(v) for v in values]
    assert all(r.is_default for r in rules)  # from the /defaultSecurityRules/ id
    by_name = {r.name: r for r in rules}
    assert by_name["AllowInternetOutBound"].destination_prefixes == ("Internet",)
    assert by_name["DenyAllInBound"].priority == 65500
    assert tuple(sorted(rules, key=lambda r: (r.direction.value, r.priority))) == tuple(
        sorted(DEFAULT_RULES, key=lambda r: (r.direction.value, r.priority))
    )


def test_rule_list_and_rule_get_fixtures() -> None:
    for v in fixture_body("network.NetworkSecurityGroupRuleList.json")["value"]:
        assert SecurityRule.from_arm(v).name
    got = SecurityRule.from_arm(fixture_body("network.NetworkSecurityGroupRuleGet.json"))
    assert got.name == "rule1"


def test_plural_fields_and_asgs() -> None:
    asg = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/w"
    )
    body = {
        "name": "multi",
        "properties": {
            "protocol": "udp",
            "access": "deny",
            "direction": "outbound",
            "priority": "300",
            "sourcePortRanges": ["1000-2000", "3000"],
            "destinationPortRanges": ["53", "*"],
            "sourceApplicationSecurityGroups": [{"id": asg}],
            "destinationAddressPrefixes": ["Storage.WestEurope", "2001:db8::/32", "1.2.3.4"],
        },
    }
    r = SecurityRule.from_arm(body)
    assert r.protocol is Protocol.UDP
    assert r.access is Access.DENY
    assert r.direction is Direction.OUTBOUND
    assert r.priority == 300
    assert r.source_ports == (PortRange(1000, 2000), PortRange(3000, 3000))
    assert r.destination_ports[1].is_any
    assert r.source_asgs == (asg,)
    assert r.source_prefixes == ()
    assert r.destination_prefixes == ("Storage.WestEurope", "2001:db8::/32", "1.2.3.4")
    # round trip through the wire form
    assert SecurityRule.from_arm(r.to_arm()) == r


@pytest.mark.parametrize("proto", ["Tcp", "UDP", "icmp", "Esp", "ah", "*"])
def test_every_protocol(proto: str) -> None:
    assert SecurityRule.from_arm(rule("p", 100, protocol=proto)).protocol.value.lower() == (
        proto.lower()
    )


def test_singular_and_empty_plural_equal_singular() -> None:
    a = rule("r", 200, src="10.0.0.0/8", dport="443")
    b = copy.deepcopy(a)
    b["properties"].update(
        {"sourceAddressPrefixes": [], "destinationPortRanges": [], "sourcePortRanges": []}
    )
    assert SecurityRule.from_arm(a) == SecurityRule.from_arm(b)


def test_empty_singular_next_to_plural() -> None:
    body = rule("r", 200, dport=["80", "443"], src=["1.2.3.4", "5.6.7.8"])
    body["properties"].update({"destinationPortRange": "", "sourceAddressPrefix": ""})
    r = SecurityRule.from_arm(body)
    assert [str(p) for p in r.destination_ports] == ["80", "443"]
    assert r.source_prefixes == ("1.2.3.4", "5.6.7.8")


def test_to_arm_uses_singular_for_one_and_plural_for_many() -> None:
    r = SecurityRule.from_arm(rule("r", 200, src=["1.1.1.1", "2.2.2.2"], dport="6516"))
    props = r.to_arm()["properties"]
    assert props["sourceAddressPrefixes"] == ["1.1.1.1", "2.2.2.2"]
    assert props["destinationPortRange"] == "6516"
    assert "sourceAddressPrefix" not in props


BAD: list[tuple[str, Any, str]] = [
    ("priority", "high", "priority"),
    ("priority", 50, "priority"),
    ("priority", 5000, "priority"),
    ("priority", True, "priority"),
    ("direction", "Sideways", "direction"),
    ("access", "Maybe", "access"),
    ("protocol", "Gre", "protocol"),
    ("destinationPortRange", "70000", "destinationPortRange"),
    ("destinationPortRange", "20-10", "destinationPortRange"),
    ("destinationPortRange", "80,443", "destinationPortRange"),
    ("destinationPortRange", ["80"], "destinationPortRange"),
    ("destinationPortRanges", "80", "destinationPortRanges"),
    ("sourceAddressPrefix", "10.0.0.300", "sourceAddressPrefix"),
    ("sourceAddressPrefix", "not a tag!", "sourceAddressPrefix"),
    ("sourceAddressPrefix", 12, "sourceAddressPrefix"),
    ("sourceAddressPrefixes", [None], "sourceAddressPrefixes"),
    ("description", 5, "description"),
    ("sourceApplicationSecurityGroups", [{"name": "x"}], "sourceApplicationSecurityGroups"),
]


@pytest.mark.parametrize(("field", "value", "named"), BAD)
def test_malformed_rules_name_rule_and_field(field: str, value: Any, named: str) -> None:
    body = rule("broken", 200)
    body["properties"][field] = value
    with pytest.raises(InvalidRuleError) as info:
        SecurityRule.from_arm(body)
    assert info.value.rule == "broken"
    assert info.value.field == named
    assert "broken" in str(info.value)


def test_missing_prefix_and_port_are_errors() -> None:
    body = rule("r", 200)
    del body["properties"]["sourceAddressPrefix"]
    with pytest.raises(InvalidRuleError, match="sourceAddressPrefix"):
        SecurityRule.from_arm(body)
    body = rule("r", 200)
    del body["properties"]["destinationPortRange"]
    with pytest.raises(InvalidRuleError, match="destinationPortRange"):
        SecurityRule.from_arm(body)


@pytest.mark.parametrize("junk", [None, 5, "rule", [], {"properties": {}}, {"name": 3}])
def test_junk_is_invalid_rule_error(junk: Any) -> None:
    with pytest.raises(InvalidRuleError):
        SecurityRule.from_arm(junk)


def test_duplicate_priority_or_name_in_one_nsg() -> None:
    with pytest.raises(InvalidRuleError, match="also used by rule 'a'"):
        nsg(rule("a", 200), rule("b", 200))
    # same number, other direction: fine
    assert len(nsg(rule("a", 200), rule("b", 200, direction="Outbound")).rules) == 2
    with pytest.raises(InvalidRuleError, match="share this name"):
        nsg(rule("a", 200), rule("A", 201))


def test_nsg_junk() -> None:
    for junk in (None, [], {"properties": []}, {"properties": {"securityRules": {}}}):
        with pytest.raises(InvalidRuleError):
            NetworkSecurityGroup.from_arm(junk)  # type: ignore[arg-type]


def test_managed_marker_and_str() -> None:
    plain = SecurityRule.from_arm(rule("m", 150, description="Managed by wac_azure", dport="6516"))
    assert plain.claims_managed
    assert not plain.is_managed  # the text alone proves nothing
    r = plain.marked()
    assert r.is_managed
    assert r.description is not None
    assert r.description.startswith("Managed by wac_azure (mark ")
    assert SecurityRule.from_arm(r.to_arm()).is_managed  # survives the wire
    assert "150 m: Allow Inbound Tcp" in str(r)
    assert not SecurityRule.from_arm(rule("n", 151)).is_managed


def test_a_copied_ownership_mark_does_not_carry_ownership() -> None:
    ours = SecurityRule.from_arm(rule("PortForWAC", 150, dport="6516")).marked()
    assert ours.is_managed
    # the description copied onto a user's rules: another name, access, port or source
    for changed in (
        attrs.evolve(ours, name="AllowRDP"),
        attrs.evolve(ours, access="Deny"),
        attrs.evolve(ours, destination_ports=(PortRange(445, 445),)),
        attrs.evolve(ours, source_prefixes=("10.0.0.0/8",)),
        attrs.evolve(ours, priority=151),
    ):
        assert changed.claims_managed
        assert not changed.is_managed, changed
    # Azure may spell the rule differently on read (case, list order): still ours
    wire = ours.to_arm()
    wire["name"] = "portforwac"
    wire["properties"]["protocol"] = "TCP"
    assert SecurityRule.from_arm(wire).is_managed


@pytest.mark.parametrize(
    "name",
    ["network.NetworkSecurityGroupCreate.json", "network.NetworkSecurityGroupCreateWithRule.json"],
)
@pytest.mark.parametrize("status", ["200", "201"])
def test_create_fixtures_parse(name: str, status: str) -> None:
    parsed = NetworkSecurityGroup.from_arm(fixture_body(name, status))
    assert len(parsed.all_rules("Inbound")) >= 3
    assert {r.name for r in parsed.default_rules} == {r.name for r in DEFAULT_RULES}
    for r in parsed.rules:  # the custom rules round-trip through the wire form
        assert SecurityRule.from_arm(r.to_arm()) == r


def test_rule_create_fixture_request_and_response_agree() -> None:
    import json

    doc = json.loads((FIXTURES / "network.NetworkSecurityGroupRuleCreate.json").read_text())
    sent = {"name": "rule1", **doc["parameters"]["securityRuleParameters"]}
    answered = doc["responses"]["201"]["body"]
    assert SecurityRule.from_arm(sent) == SecurityRule.from_arm(answered)
