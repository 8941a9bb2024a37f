"""Fuzz the whole pure pipeline on mutated, *coherent* ARM documents.

tests/core/facts feeds the individual parsers junk, and tests/core/nsg the rule parser
mutated rules; here the seeds are a coherent VM (its NIC, public IP, VNet and two NSGs,
read through the SDK from the emulator) with the real NSG fixture's rules spliced in,
and the mutations (missing fields, nulls, wrong types, key and value case, singular and
plural swapped, unknown enum values, duplicated list items) run through
``facts_from_arm`` → ``evaluate_requirements`` → ``plan_network`` → ``to_dict``/``str``.
The library gives a result or raises a ``WacAzureError``, never a bare Python error, and
what it plans never opens the port wider than the access mode asked.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wac_azure import PrivateAccess, PublicAccess, VmTarget, WacAzureError
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.facts import facts_from_arm, parse_vm_sizes
from wac_azure._core.nsg import Flow, NetworkSecurityGroup, SecurityRule, evaluate
from wac_azure._core.plan import ChangeAction, plan_network
from wac_azure.testing import ArmEmulator

from ._strategies import fixture_body, fuzz_settings, mutated


def _world() -> tuple[VmTarget, dict[str, Any], dict[str, dict[str, Any]], Any]:
    emu = ArmEmulator(seed=3)
    t = emu.add_windows_vm("vm1", nsg="both", public_ip=True)

    async def read() -> tuple[dict[str, Any], Any]:
        async with emu.session() as s:
            vm = await s.compute(t.subscription_id).virtual_machines.get(
                t.resource_group, t.name, expand="instanceView"
            )
            sizes = [
                x.as_dict()
                async for x in s.compute(t.subscription_id).virtual_machine_sizes.list("westeurope")
            ]
        return vm.as_dict(), sizes

    vm, sizes = asyncio.run(read())
    resources: dict[str, dict[str, Any]] = {}
    for doc in emu.store:
        rid = str(doc.get("id") or "").lower()
        if "/providers/microsoft.network/" in rid:
            resources[rid] = copy.deepcopy(doc)
    # Splice the real NSG fixture's rules into the NIC NSG (its ids made to fit).
    real = fixture_body("network.NetworkSecurityGroupGet.json")
    nic_nsg = next(v for k, v in resources.items() if k.endswith("/vm1-nsg"))
    nic_nsg["properties"]["securityRules"] = [
        {**r, "id": f"{nic_nsg['id']}/securityRules/{r['name']}"}
        for r in real["properties"].get("securityRules", [])
    ] + list(nic_nsg["properties"].get("securityRules") or [])
    nic_nsg["properties"]["defaultSecurityRules"] = real["properties"].get(
        "defaultSecurityRules", []
    )
    return t, vm, resources, parse_vm_sizes(sizes)


TARGET, VM, RESOURCES, SIZES = _world()
KEYS = sorted(RESOURCES)
ACCESS = st.sampled_from(
    [
        PrivateAccess(),
        PrivateAccess(sources=("10.10.0.0/16", "192.168.0.0/24")),
        PublicAccess(["203.0.113.7", "2001:db8::/48"]),
        PublicAccess.anywhere(acknowledge_risk=True),
    ]
)
EVERYONE = {"*", "internet", "any", "0.0.0.0/0", "::/0"}


def _wide(prefixes: tuple[str, ...]) -> bool:
    for p in prefixes:
        if p.strip().lower() in EVERYONE:
            return True
        try:
            if ipaddress.ip_network(p, strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def _pipeline(vm: Any, resources: dict[str, Any], access: Any) -> None:
    try:
        facts = facts_from_arm(TARGET, vm, resources=resources, sizes=SIZES)
    except WacAzureError:
        return
    report = evaluate_requirements(facts, access=access)
    assert str(report)
    json.dumps(report.to_dict())
    report._repr_html_()
    try:
        plan = plan_network(facts, access=access)
    except WacAzureError:
        return
    json.dumps(plan.to_dict())
    assert str(plan)
    plan._repr_html_()
    everyone = getattr(access, "open_to_everyone", False)
    for change in plan.changes:
        if change.action is not ChangeAction.CREATE or change.rule is None:
            continue
        rule = change.rule
        # every planned rule survives its own wire form
        assert SecurityRule.from_arm({"name": rule.name, **change.body}) == rule
        if rule.direction.value == "Inbound" and not everyone:
            assert not _wide(rule.source_prefixes), rule
            assert set(rule.source_prefixes) <= set(access.sources), (rule, access)


@fuzz_settings()
@given(vm=mutated(VM), access=ACCESS)
def test_mutated_vm_document(vm: Any, access: Any) -> None:
    _pipeline(vm, RESOURCES, access)


@fuzz_settings()
@given(which=st.sampled_from(KEYS), data=st.data(), access=ACCESS)
def test_mutated_network_documents(which: str, data: st.DataObject, access: Any) -> None:
    resources = dict(RESOURCES)
    resources[which] = data.draw(mutated(RESOURCES[which], max_edits=5))
    if data.draw(st.booleans()):  # sometimes a second one too
        other = data.draw(st.sampled_from(KEYS))
        resources[other] = data.draw(mutated(RESOURCES[other]))
    _pipeline(VM, resources, access)


@fuzz_settings(0.5)
@given(which=st.sampled_from(KEYS), drop=st.booleans(), access=ACCESS)
def test_missing_documents(which: str, drop: bool, access: Any) -> None:
    resources = {k: v for k, v in RESOURCES.items() if k != which}
    if drop:
        resources = {k: v for k, v in resources.items() if "securitygroups" not in k}
    _pipeline(VM, resources, access)


REAL_NSGS = [
    fixture_body("network.NetworkSecurityGroupGet.json"),
    fixture_body("network.NetworkSecurityGroupCreateWithRule.json"),
    fixture_body("network.NetworkSecurityGroupCreate.json"),
    {"id": "/x", "properties": fixture_body("network.DefaultSecurityRuleList.json")},
]


@fuzz_settings()
@given(base=st.sampled_from(REAL_NSGS), data=st.data())
def test_mutated_real_nsgs(base: Any, data: st.DataObject) -> None:
    nsg_json = data.draw(mutated(base, max_edits=5))
    try:
        nsg = NetworkSecurityGroup.from_arm(nsg_json)
    except WacAzureError:
        return
    for rule in (*nsg.rules, *nsg.default_rules):
        assert SecurityRule.from_arm(rule.to_arm(), is_default=rule.is_default) == rule
    # no two custom rules share a priority and a direction (ARM refuses that)
    slots = [(r.direction, r.priority) for r in nsg.rules]
    assert len(slots) == len(set(slots))
    for flow in (
        Flow("Inbound", "Tcp", "203.0.113.7", None, "10.0.0.4", 6516),
        Flow("Outbound", "Tcp", "10.0.0.4", None, "WindowsAdminCenter", 443),
    ):
        verdict = evaluate(flow, nic_nsg=nsg, vnet_prefixes=["10.0.0.0/16"])
        assert verdict.reason


REAL_RULES = [
    *fixture_body("network.NetworkSecurityGroupRuleList.json")["value"],
    fixture_body("network.NetworkSecurityGroupRuleGet.json"),
    *fixture_body("network.DefaultSecurityRuleList.json")["value"],
]


@fuzz_settings()
@given(base=st.sampled_from(REAL_RULES), data=st.data())
def test_mutated_real_rules(base: Any, data: st.DataObject) -> None:
    rule_json = data.draw(mutated(base, max_edits=4))
    try:
        rule = SecurityRule.from_arm(rule_json)
    except WacAzureError as exc:
        error: WacAzureError | None = exc
    else:
        error = None
    if error is not None:
        assert str(error)
        return
    assert SecurityRule.from_arm(rule.to_arm(), is_default=rule.is_default) == rule
    assert 0 <= rule.priority <= 65500 or rule.is_default


def test_vnet_prefixes_that_are_not_a_list() -> None:
    """Found by the fuzzer: ``addressPrefixes: 1`` raised TypeError, and a string was read
    character by character ("1", "0", ...) as prefixes."""
    for bad in (1, "10.0.0.0/16", None, {"a": 1}):
        resources = copy.deepcopy(RESOURCES)
        for key, doc in resources.items():
            if "/virtualnetworks/" in key:
                doc["properties"]["addressSpace"]["addressPrefixes"] = bad
                peering = {
                    "properties": {
                        "peeringState": "Connected",
                        "remoteAddressSpace": {"addressPrefixes": bad},
                    }
                }
                doc["properties"]["virtualNetworkPeerings"] = [peering]
        facts = facts_from_arm(TARGET, VM, resources=resources, sizes=SIZES)
        assert all("/" in p for p in facts.vnet_prefixes), facts.vnet_prefixes
