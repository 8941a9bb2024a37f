"""Managed rules are scoped to the enabled VMs' private IPs (emulator + real SDK).

A shared (subnet) NSG must never open the port to a VM that was not enabled,
removing one VM must not cut off the others, and a port change updates our rule
in place instead of adding a second one.
"""

from __future__ import annotations

import json
from typing import Any

from wac_azure import (
    AzureSession,
    ChangeAction,
    NetworkRulePlanner,
    PrivateAccess,
    VmTarget,
    read_vm_facts,
)
from wac_azure._core.nsg import Access, Flow, evaluate
from wac_azure.testing import ArmEmulator

from tests.core.nsg._helpers import rule

NET = "/providers/Microsoft.Network/networkSecurityGroups/"
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))  # denied by default: every NSG needs a rule
SUBNET_NSG = "vnet-westeurope-default-nsg"
DENY_OUT = rule("DenyOut", 4000, direction="Outbound", access="Deny", dst="Internet")


def nsg_id(target: VmTarget, name: str) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}{NET}{name}"
    )


def rules(emu: ArmEmulator, nid: str) -> dict[str, dict[str, Any]]:
    doc = emu.resource(nid)
    return {r["name"]: r["properties"] for r in doc["properties"].get("securityRules") or []}


def destinations(props: dict[str, Any]) -> list[str]:
    return props.get("destinationAddressPrefixes") or [props["destinationAddressPrefix"]]


async def inbound(session: AzureSession, target: VmTarget, port: int = 6516) -> Access:
    facts = await read_vm_facts(session, target)
    nic = facts.primary_nic
    assert nic is not None
    assert nic.private_ip is not None
    flow = Flow("Inbound", "Tcp", "10.10.0.9", None, nic.private_ip, port)
    return evaluate(
        flow,
        nic_nsg=facts.nsg(nic.nsg_id),
        subnet_nsg=facts.nsg(nic.subnet_nsg_id),
        vnet_prefixes=facts.vnet_prefixes,
    ).access


async def ip_of(session: AzureSession, target: VmTarget) -> str:
    nic = (await read_vm_facts(session, target)).primary_nic
    assert nic is not None
    assert nic.private_ip is not None
    return nic.private_ip


async def test_shared_nsg_opens_the_port_to_enabled_vms_only(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vm1, vm2, vm3 = (emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in (1, 2, 3))
    nid = nsg_id(vm1, SUBNET_NSG)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(vm1, access=ONPREM, entra=False))
    got = rules(emu, nid)["PortForWAC"]
    assert destinations(got) == [await ip_of(session, vm1)]
    assert await inbound(session, vm1) is Access.ALLOW
    assert await inbound(session, vm2) is Access.DENY  # behind the same NSG, never enabled

    # the second VM grows OUR rule (one update), no second rule
    plan = await planner.plan(vm2, access=ONPREM, entra=False)
    inbound_changes = [c for c in plan.changes if c.direction and c.direction.value == "Inbound"]
    assert [(c.action, c.rule_name) for c in inbound_changes] == [
        (ChangeAction.UPDATE, "PortForWAC")
    ]
    assert "~ PortForWAC" in str(plan)
    result = await planner.apply(plan)
    assert [
        c.rule_name for c in result.updated if c.rule and c.rule.direction.value == "Inbound"
    ] == ["PortForWAC"]
    want = sorted([await ip_of(session, vm1), await ip_of(session, vm2)])
    got = rules(emu, nid)["PortForWAC"]
    assert sorted(destinations(got)) == want
    assert await inbound(session, vm3) is Access.DENY
    assert [n for n in rules(emu, nid) if n.startswith("PortForWAC-")] == []


async def test_planning_many_vms_on_one_nsg_yields_one_rule_listing_all_ips(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vms = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(4)]
    nid = nsg_id(vms[0], SUBNET_NSG)
    emu.add_rule(nid, DENY_OUT)
    planner = NetworkRulePlanner(session)
    plan = await planner.plan_many(vms, access=ONPREM)
    by_name = {c.rule_name: c for c in plan.changes}
    assert sorted(by_name) == ["PortForAADService", "PortForWAC", "PortForWACService"]
    ips = [await ip_of(session, t) for t in vms]
    port_rule = by_name["PortForWAC"].rule
    assert port_rule is not None
    assert list(port_rule.destination_prefixes) == sorted(set(ips))
    assert len(by_name["PortForWAC"].vms) == 4
    # outbound rules are scoped the same way: the VMs' IPs as sources
    out_rule = by_name["PortForWACService"].rule
    assert out_rule is not None
    assert list(out_rule.source_prefixes) == sorted(set(ips))
    await planner.apply(plan)
    assert sorted(destinations(rules(emu, nid)["PortForWAC"])) == sorted(ips)
    assert (await planner.plan_many(vms, access=ONPREM)).is_noop


async def test_removing_one_vm_keeps_the_others_open(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vm1, vm2 = (emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in (1, 2))
    nid = nsg_id(vm1, SUBNET_NSG)
    emu.add_rule(nid, DENY_OUT)
    foreign = emu.add_rule(
        nid, rule("Theirs", 300, src="10.20.0.0/16", dport="6516", description="Managed by ops")
    )
    keep = json.dumps(emu.resource(foreign["id"]), sort_keys=True)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan_many([vm1, vm2], access=ONPREM))
    ip2 = await ip_of(session, vm2)

    removal = await planner.plan_removal(vm1)
    assert {(c.action, c.rule_name) for c in removal.changes} == {
        (ChangeAction.UPDATE, "PortForWAC"),
        (ChangeAction.UPDATE, "PortForWACService"),
        (ChangeAction.UPDATE, "PortForAADService"),
    }
    result = await planner.remove(vm1)
    assert not result.deleted
    assert destinations(rules(emu, nid)["PortForWAC"]) == [ip2]
    assert await inbound(session, vm2) is Access.ALLOW  # still reachable
    assert await inbound(session, vm1) is Access.DENY

    # the last VM out deletes our rules; a rule we did not create is never touched
    result = await planner.remove(vm2)
    assert sorted(c.rule_name or "" for c in result.deleted) == [
        "PortForAADService",
        "PortForWAC",
        "PortForWACService",
    ]
    assert set(rules(emu, nid)) == {"Theirs", "DenyOut"}
    assert json.dumps(emu.resource(foreign["id"]), sort_keys=True) == keep


async def test_legacy_wildcard_managed_rule_is_deleted_on_removal(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(
        nid,
        rule(
            "PortForWAC", 100, src="10.10.0.0/16", dport="6516", description="Managed by wac_azure"
        ),
    )
    removal = await NetworkRulePlanner(session).plan_removal(t)
    assert [(c.action, c.rule_name) for c in removal.changes] == [
        (ChangeAction.DELETE, "PortForWAC")
    ]


async def test_port_change_updates_our_rule_in_place(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, rule("DenyIn", 200, access="Deny", src="10.10.0.0/16", dport="*"))
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(t, access=ONPREM, entra=False))
    before = rules(emu, nid)["PortForWAC"]
    plan = await planner.plan(t, access=ONPREM, port=7000, entra=False)
    assert [(c.action, c.rule_name) for c in plan.changes] == [(ChangeAction.UPDATE, "PortForWAC")]
    await planner.apply(plan)
    names = rules(emu, nid)
    assert sorted(names) == ["DenyIn", "PortForWAC"]  # no PortForWAC-2, 6516 no longer open
    assert names["PortForWAC"]["destinationPortRange"] == "7000"
    assert names["PortForWAC"]["priority"] == before["priority"]  # still before the deny
    assert await inbound(session, t, 7000) is Access.ALLOW
    assert await inbound(session, t, 6516) is Access.DENY
    assert (await planner.plan(t, access=ONPREM, port=7000, entra=False)).is_noop


async def test_two_ports_on_one_nsg_get_one_rule_per_port(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vm1, vm2 = (emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in (1, 2))
    nid = nsg_id(vm1, SUBNET_NSG)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(vm1, access=ONPREM, entra=False))
    await planner.apply(await planner.plan(vm2, access=ONPREM, port=7000, entra=False))
    got = rules(emu, nid)
    assert got["PortForWAC"]["destinationPortRange"] == "6516"
    assert destinations(got["PortForWAC"]) == [await ip_of(session, vm1)]
    assert got["PortForWAC-7000"]["destinationPortRange"] == "7000"
    assert destinations(got["PortForWAC-7000"]) == [await ip_of(session, vm2)]
    assert await inbound(session, vm1) is Access.ALLOW
    assert await inbound(session, vm2, 7000) is Access.ALLOW
    assert await inbound(session, vm2) is Access.DENY
    # vm1 moves to 7000 too: it leaves the 6516 rule (deleted: nobody left) and joins 7000
    plan = await planner.plan(vm1, access=ONPREM, port=7000, entra=False)
    assert sorted((c.action.value, c.rule_name) for c in plan.changes) == [
        ("delete", "PortForWAC"),
        ("update", "PortForWAC-7000"),
    ]
    await planner.apply(plan)
    got = rules(emu, nid)
    assert "PortForWAC" not in got
    assert len(destinations(got["PortForWAC-7000"])) == 2


async def test_the_portals_rule_of_the_same_name_is_never_modified(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    portal = emu.add_rule(nid, rule("PortForWAC", 4000, src="203.0.113.5", dport="6516"))
    keep = json.dumps(emu.resource(portal["id"]), sort_keys=True)
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, access=ONPREM, entra=False)
    assert [(c.action, c.rule_name) for c in plan.changes] == [
        (ChangeAction.CREATE, "PortForWAC-6516")
    ]
    await planner.apply(plan)
    assert json.dumps(emu.resource(portal["id"]), sort_keys=True) == keep
    await planner.remove(t)
    assert set(rules(emu, nid)) == {"PortForWAC"}
    assert json.dumps(emu.resource(portal["id"]), sort_keys=True) == keep
