"""Hypothesis properties of the rule parser and the evaluator."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wac_azure import InvalidRuleError
from wac_azure._core.nsg import Access, Flow, NetworkSecurityGroup, SecurityRule, evaluate

from ._helpers import NSG_ID, VNET

PREFIXES = [
    "*",
    "0.0.0.0/0",
    "10.0.0.0/16",
    "10.0.0.4",
    "10.0.1.0/24",
    "203.0.113.0/24",
    "203.0.113.5",
    "52.1.0.0/16",
    "VirtualNetwork",
    "Internet",
    "AzureLoadBalancer",
    "WindowsAdminCenter",
    "AzureActiveDirectory",
    "Storage.WestEurope",
]
PORTS = ["*", "443", "6516", "6000-7000", "1-1024", "3389"]
ENDPOINTS = [
    "10.0.0.4",
    "10.0.1.9",
    "203.0.113.5",
    "203.0.113.0/24",
    "52.1.2.3",
    "VirtualNetwork",
    "WindowsAdminCenter",
    "AzureActiveDirectory",
    "Internet",
]
TAGS = {"WindowsAdminCenter": ["52.1.0.0/24"], "Storage.WestEurope": ["13.69.0.0/16"]}

directions = st.sampled_from(["Inbound", "Outbound"])
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rule_json(draw: st.DrawFn, name: str, priority: int, direction: str) -> dict[str, Any]:
    def field(pool: list[str]) -> str | list[str]:
        values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        return values[0] if len(values) == 1 and draw(st.booleans()) else values

    props: dict[str, Any] = {
        "protocol": draw(st.sampled_from(["Tcp", "Udp", "*", "Icmp"])),
        "access": draw(st.sampled_from(["Allow", "Deny"])),
        "priority": priority,
        "direction": direction,
    }
    for key, pool in (
        ("sourceAddressPrefix", PREFIXES),
        ("destinationAddressPrefix", PREFIXES),
        ("sourcePortRange", ["*", "*", "1024-65535"]),
        ("destinationPortRange", PORTS),
    ):
        value = field(pool)
        plural = key + ("es" if key.endswith("x") else "s")
        if isinstance(value, list):
            props[plural] = value
        else:
            props[key] = value
    return {"name": name, "properties": props}


@st.composite
def rule_sets(draw: st.DrawFn, max_size: int = 12) -> list[dict[str, Any]]:
    n = draw(st.integers(0, max_size))
    slots = draw(
        st.lists(st.tuples(directions, st.integers(100, 4096)), min_size=n, max_size=n, unique=True)
    )
    return [draw(rule_json(f"r{i}", prio, d)) for i, (d, prio) in enumerate(slots)]


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    return Flow(
        draw(directions),
        draw(st.sampled_from(["Tcp", "Udp"])),
        draw(st.sampled_from(ENDPOINTS)),
        draw(st.sampled_from([None, 50000])),
        draw(st.sampled_from(ENDPOINTS)),
        draw(st.sampled_from([443, 6516, 3389, 22])),
    )


def group(rules: list[dict[str, Any]]) -> NetworkSecurityGroup:
    return NetworkSecurityGroup.from_arm({"id": NSG_ID, "properties": {"securityRules": rules}})


def verdict(flow: Flow, rules: list[dict[str, Any]], tags: Any = TAGS) -> Any:
    return evaluate(flow, nic_nsg=group(rules), vnet_prefixes=VNET, service_tags=tags)


@PROFILE
@given(rule_sets(), flows(), st.randoms(use_true_random=False), st.booleans())
def test_rule_order_in_input_does_not_matter(
    rules: list[dict[str, Any]], flow: Flow, rnd: Any, tags: bool
) -> None:
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    assert group(shuffled) == group(rules)
    assert verdict(flow, shuffled, TAGS if tags else None) == verdict(
        flow, rules, TAGS if tags else None
    )


def _to_plural(rule: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(rule)
    props = out["properties"]
    for key in (
        "sourceAddressPrefix",
        "destinationAddressPrefix",
        "sourcePortRange",
        "destinationPortRange",
    ):
        if key in props:
            plural = key + ("es" if key.endswith("x") else "s")
            props[plural] = [props.pop(key)]
            # Azure answers with the singular empty and the plural filled, or the reverse
    return out


@PROFILE
@given(rule_sets(), flows())
def test_singular_equals_plural_with_one(rules: list[dict[str, Any]], flow: Flow) -> None:
    plural = [_to_plural(r) for r in rules]
    for a, b in zip(rules, plural, strict=True):
        assert SecurityRule.from_arm(a) == SecurityRule.from_arm(b)
    assert verdict(flow, plural) == verdict(flow, rules)


@PROFILE
@given(rule_sets(), flows(), st.data())
def test_rule_after_the_deciding_one_never_changes_the_verdict(
    rules: list[dict[str, Any]], flow: Flow, data: st.DataObject
) -> None:
    before = verdict(flow, rules)
    assume(before.access is not Access.UNKNOWN)
    deciding = next(
        (r for r in group(rules).all_rules(flow.direction) if r.name == before.rule), None
    )
    assert deciding is not None
    assume(deciding.priority < 4096)
    taken = {
        r["properties"]["priority"]
        for r in rules
        if r["properties"]["direction"] == flow.direction.value
    }
    free = [p for p in range(deciding.priority + 1, 4097) if p not in taken]
    assume(free)
    prio = data.draw(st.sampled_from(free))
    extra = data.draw(rule_json("extra", prio, flow.direction.value))
    after = verdict(flow, [*rules, extra])
    assert (after.access, after.rule) == (before.access, before.rule)


@PROFILE
@given(rule_sets(), flows())
def test_defaults_decide_when_nothing_else_matches(rules: list[dict[str, Any]], flow: Flow) -> None:
    # make every custom rule miss the flow: a destination port the flow never uses
    missing = copy.deepcopy(rules)
    for r in missing:
        props = r["properties"]
        props.pop("destinationPortRanges", None)
        props["destinationPortRange"] = "9-10"
    v = verdict(flow, missing)
    if v.rule is not None:
        assert v.rule in {
            "AllowVnetInBound",
            "AllowAzureLoadBalancerInBound",
            "DenyAllInBound",
            "AllowVnetOutBound",
            "AllowInternetOutBound",
            "DenyAllOutBound",
        }
    assert v == verdict(flow, [])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "name",
    "properties",
    "protocol",
    "access",
    "priority",
    "direction",
    "sourceAddressPrefix",
    "sourceAddressPrefixes",
    "destinationAddressPrefix",
    "destinationAddressPrefixes",
    "sourcePortRange",
    "sourcePortRanges",
    "destinationPortRange",
    "destinationPortRanges",
    "sourceApplicationSecurityGroups",
    "destinationApplicationSecurityGroups",
    "description",
    "id",
]


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parser_raises_only_invalid_rule_error_on_junk(junk: Any) -> None:
    for parse in (SecurityRule.from_arm, NetworkSecurityGroup.from_arm):
        with contextlib.suppress(InvalidRuleError):
            parse(junk)


@settings(max_examples=200, deadline=None)
@given(
    rule_json("r", 200, "Inbound"),
    st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3),
)
def test_parser_on_mutated_rules(rule: dict[str, Any], edits: list[tuple[str, Any]]) -> None:
    for field, value in edits:
        if field in ("name", "properties", "id"):
            rule[field] = value
        elif isinstance(rule.get("properties"), dict):
            rule["properties"][field] = value
    error: InvalidRuleError | None = None
    try:
        parsed = SecurityRule.from_arm(rule)
    except InvalidRuleError as exc:
        error = exc
    if error is not None:
        assert error.rule
        assert isinstance(error.field, str)
        return
    # what parses also round-trips through the wire form and evaluates
    assert SecurityRule.from_arm(parsed.to_arm()) == parsed
    nsg = NetworkSecurityGroup(id=NSG_ID, name="n", rules=(parsed,))
    evaluate(Flow("Inbound", "Tcp", "1.2.3.4", None, "10.0.0.4", 6516), nic_nsg=nsg)
