"""NetworkPlan.to_dict() / from_dict() round-trip through JSON; bad input names its field."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wac_azure import InvalidInputError, InvalidPlanError, NetworkPlan, PrivateAccess, PublicAccess
from wac_azure._core.access import AccessMode
from wac_azure._core.facts import VmFacts
from wac_azure._core.plan import nsgs_after, plan_many, removal_plan

from tests.core.nsg._helpers import rule
from tests.core.test_plan import NIC_NSG, SUBNET_NSG, facts, group

ACCESS: list[AccessMode] = [
    PrivateAccess(),
    PrivateAccess(sources=("10.10.0.0/16", "VirtualNetwork")),
    PublicAccess(["203.0.113.0/24"]),
    PublicAccess(["203.0.113.7", "198.51.100.0/28"]),
    PublicAccess.anywhere(acknowledge_risk=True),
]


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few rules of any kind: denies in the way, other writers' allows, rules of ours
    (marked or an earlier version's), copies of our description."""
    out = []
    used: set[tuple[str, int]] = set()
    for i in range(draw(st.integers(0, 6))):
        direction = draw(st.sampled_from(["Inbound", "Outbound"]))
        priority = draw(st.integers(100, 400))
        if (direction, priority) in used:
            continue
        used.add((direction, priority))
        description = draw(
            st.sampled_from([None, "Managed by wac_azure", "Managed by wac_azure (mark 00)"])
        )
        extra = {"description": description} if description else {}
        out.append(
            rule(
                draw(st.sampled_from([f"r{i}", f"PortForWAC-{i}", f"PortForWACx{i}"])),
                priority,
                direction=direction,
                access=draw(st.sampled_from(["Allow", "Deny"])),
                protocol=draw(st.sampled_from(["Tcp", "*"])),
                src=draw(st.sampled_from(["*", "203.0.113.0/24", "VirtualNetwork", "10.0.0.4"])),
                dst=draw(st.sampled_from(["*", "10.0.0.4", "Internet", "WindowsAdminCenter"])),
                dport=draw(st.sampled_from(["*", "6516", "443", "7000-7010"])),
                **extra,
            )
        )
    return out


@st.composite
def plans(draw: st.DrawFn) -> NetworkPlan:
    where = draw(st.sampled_from(["nic", "subnet", "both"]))
    nic = group(NIC_NSG, *draw(rules())) if where != "subnet" else None
    subnet = group(SUBNET_NSG, *draw(rules())) if where != "nic" else None
    public_ip = draw(st.sampled_from([None, "Standard"]))
    vm = facts(nic_nsg=nic, subnet_nsg=subnet, public_ip=public_ip)

    def enabling(vm: VmFacts) -> NetworkPlan:
        return plan_many(
            [vm],
            access=draw(st.sampled_from(ACCESS)),
            port=draw(st.sampled_from([6516, 7000, 443])),
            entra=draw(st.booleans()),
            create_nsg=draw(st.booleans()),
            service_tags={"WindowsAdminCenter": ["20.1.2.0/24"]},
        )

    if draw(st.booleans()):
        # a VM enabled once already: its NSGs carry our marked rules, so the next plan
        # updates (before -> after) or removes them
        first = enabling(vm)
        after = {n.id.lower(): n for n in nsgs_after(vm, first)}
        vm = facts(
            nic_nsg=after.get(NIC_NSG.lower()) if nic is not None else None,
            subnet_nsg=after.get(SUBNET_NSG.lower()) if subnet is not None else None,
            public_ip=public_ip,
        )
    return removal_plan([vm]) if draw(st.booleans()) else enabling(vm)


def test_the_drawn_plans_cover_updates_deletes_and_previous_states() -> None:
    """The round trip below is only as good as the plans it draws: they must include
    updates with a before state and deletions of our own rules, not only creations."""
    seen: set[str] = set()
    previous = False

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plans())
    def collect(plan: NetworkPlan) -> None:
        nonlocal previous
        for change in plan.changes:
            seen.add(change.action.value)
            previous = previous or change.previous is not None

    collect()
    assert {"create", "update", "delete"} <= seen, seen
    assert previous


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_a_plan_round_trips_through_json(plan: NetworkPlan) -> None:
    text = json.dumps(plan.to_dict())
    loaded = NetworkPlan.from_dict(json.loads(text))
    assert loaded == plan
    assert dict(loaded.nsg_etags) == dict(plan.nsg_etags)
    assert dict(loaded.nsg_fingerprints) == dict(plan.nsg_fingerprints)
    assert loaded.to_dict() == plan.to_dict()
    assert str(loaded) == str(plan)


def _plan() -> dict[str, Any]:
    deny = rule("Deny6516", 200, access="Deny", dport="6516")
    plan = plan_many([facts(nic_nsg=group(NIC_NSG, deny))], entra=False)
    assert plan.changes
    return json.loads(json.dumps(plan.to_dict()))


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    where: Any = doc
    for key in path[:-1]:
        where = where[key]
    if value is _DROP:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return doc


_DROP = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["port"], "6516", "port"),
        (["port"], 70000, "port"),
        (["targets"], _DROP, None),  # targets default to none: still loads
        (["access"], _DROP, "access"),
        (["access", "mode"], "sideways", "access.mode"),
        (["access", "sources"], ["*"], "access"),
        (["kind"], "destroy", "kind"),
        (["changes"], {}, "changes"),
        (["changes", 0, "action"], "replace", "changes[0].action"),
        (["changes", 0, "nsgId"], _DROP, "changes[0].nsgId"),
        (["changes", 0, "body"], _DROP, "changes[0].body"),
        (["changes", 0, "body", "properties", "priority"], "high", "changes[0].body.properties"),
        (["checks", 0, "flow", "destinationPort"], "x", "checks[0].flow.destinationPort"),
        (["checks", 0, "after", "access"], "Maybe", "checks[0].after.access"),
        (["nsgEtags"], [], "nsgEtags"),
        (["nsgFingerprints"], {"x": 1}, "nsgFingerprints"),
    ],
)
def test_a_bad_saved_plan_is_refused_naming_the_field(
    path: list[Any], value: Any, field: str | None
) -> None:
    doc = _set(_plan(), path, value)
    if field is None:
        NetworkPlan.from_dict(doc)
        return
    with pytest.raises(InvalidPlanError) as info:
        NetworkPlan.from_dict(doc)
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, InvalidInputError)


@pytest.mark.parametrize("junk", [None, [], "plan", 3])
def test_not_an_object_is_refused(junk: object) -> None:
    with pytest.raises(InvalidPlanError):
        NetworkPlan.from_dict(junk)


def test_snake_case_keys_load_too() -> None:
    doc = _plan()

    def snake(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = "".join("_" + c.lower() if c.isupper() else c for c in k)
                # a rule's wire body keeps Azure's names
                out[key] = v if k in ("body", "previous") else snake(v)
            return out
        if isinstance(value, list):
            return [snake(v) for v in value]
        return value

    assert NetworkPlan.from_dict(snake(doc)) == NetworkPlan.from_dict(doc)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_junk_anywhere_in_a_saved_plan_is_refused_as_invalid_plan(data: st.DataObject) -> None:
    """Replace any node of a saved plan with junk: it loads, or raises InvalidPlanError
    (never a KeyError, TypeError or AttributeError from deep inside)."""
    doc = _plan()
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    _set(doc, list(path), data.draw(JUNK))
    with contextlib.suppress(InvalidPlanError):
        NetworkPlan.from_dict(doc)
