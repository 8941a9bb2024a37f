"""NetworkRulePlanner against the ARM emulator: real aio SDK clients, real wire format."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from wac_azure import (
    AzureRequestError,
    AzureSession,
    NetworkRulePlanner,
    OperationTimeoutError,
    PlanBlockedError,
    PrivateAccess,
    PublicAccess,
    VmTarget,
    read_vm_facts,
)
from wac_azure._core.nsg import Access, Flow, evaluate
from wac_azure.testing import ArmEmulator, Fault

from tests.core.nsg._helpers import rule

NET = "/providers/Microsoft.Network/networkSecurityGroups/"


def nsg_id(target: VmTarget, name: str) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}{NET}{name}"
    )


def writes(emu: ArmEmulator) -> list[Any]:
    return list(emu.writes())


def rule_names(emu: ArmEmulator, nid: str) -> dict[str, dict[str, Any]]:
    doc = emu.resource(nid)
    return {r["name"]: r for r in doc["properties"].get("securityRules") or []}


def deny_6516(prio: int = 200) -> dict[str, Any]:
    return rule("Deny6516", prio, access="Deny", protocol="*", dport="6516")


async def allowed(session: AzureSession, target: VmTarget, flow_of: Any) -> Access:
    facts = await read_vm_facts(session, target)
    nic = facts.primary_nic
    assert nic is not None
    flow = flow_of(nic.private_ip)
    v = evaluate(
        flow,
        nic_nsg=facts.nsg(nic.nsg_id),
        subnet_nsg=facts.nsg(nic.subnet_nsg_id),
        vnet_prefixes=facts.vnet_prefixes,
    )
    return v.access


async def test_deny_at_200_rule_planned_below_and_applied(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic", public_ip=True)
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, deny_6516())
    planner = NetworkRulePlanner(session)
    access = PublicAccess(["203.0.113.7"])
    plan = await planner.plan(t, access=access)
    assert [(c.rule_name, c.before) for c in plan.changes] == [("PortForWAC", "Deny6516")]
    assert plan.changes[0].priority is not None
    assert plan.changes[0].priority < 200

    def inbound(ip: str) -> Flow:
        return Flow("Inbound", "Tcp", "203.0.113.7", None, ip, 6516)

    assert await allowed(session, t, inbound) is Access.DENY
    before = len(emu.requests)
    result = await planner.apply(plan)
    assert [c.rule_name for c in result.created] == ["PortForWAC"]
    assert not result.replanned
    # one rule PUT per rule, never a whole-NSG PUT
    puts = [r for r in emu.requests[before:] if r.method == "PUT"]
    assert len(puts) == 1
    assert puts[0].path.endswith("/securityRules/PortForWAC")
    stored = rule_names(emu, nid)["PortForWAC"]["properties"]
    assert stored["description"].startswith("Managed by wac_azure (mark ")
    assert stored["priority"] < 200
    assert stored["sourceAddressPrefix"] == "203.0.113.7"
    assert await allowed(session, t, inbound) is Access.ALLOW
    json.loads(json.dumps(result.to_dict()))
    assert "1 created" in str(result)


async def test_priorities_taken_is_blocking_and_apply_refuses(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    for p in range(100, 200):
        emu.add_rule(nid, rule(f"f{p}", p, dport=str(1000 + p)))
    emu.add_rule(nid, deny_6516())
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, entra=False)
    assert [(b.code, b.rule) for b in plan.blocking] == [("no-free-priority", "Deny6516")]
    before = len(writes(emu))
    with pytest.raises(PlanBlockedError) as info:
        await planner.apply(plan)
    assert info.value.plan is plan
    assert "Deny6516" in str(info.value)
    assert len(writes(emu)) == before


async def test_nic_and_subnet_nsgs_both_get_rules_and_second_run_writes_nothing(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="both")
    nic_nsg, subnet_nsg = nsg_id(t, "vm1-nsg"), nsg_id(t, "vnet-westeurope-default-nsg")
    deny_out = rule("DenyInternet", 4000, direction="Outbound", access="Deny", dst="Internet")
    emu.add_rule(nic_nsg, deny_out)
    emu.add_rule(subnet_nsg, deny_out)
    vm_doc = emu.resource(t.resource_id)
    # the emulator's own (independent) evaluator agrees: blocked before, open after
    assert not emu.outbound_verdict(vm_doc, "WindowsAdminCenter").allowed
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t)
    assert {(c.nsg_name, c.rule_name) for c in plan.changes} == {
        ("vm1-nsg", "PortForWACService"),
        ("vm1-nsg", "PortForAADService"),
        ("vnet-westeurope-default-nsg", "PortForWACService"),
        ("vnet-westeurope-default-nsg", "PortForAADService"),
    }
    await planner.apply(plan)
    for nid in (nic_nsg, subnet_nsg):
        got = rule_names(emu, nid)
        assert got["PortForWACService"]["properties"]["priority"] == 100
        assert got["PortForAADService"]["properties"]["priority"] == 101

    def wac(ip: str) -> Flow:
        return Flow("Outbound", "Tcp", ip, None, "WindowsAdminCenter", 443)

    assert await allowed(session, t, wac) is Access.ALLOW
    for tag in ("WindowsAdminCenter", "AzureActiveDirectory"):
        assert emu.outbound_verdict(emu.resource(t.resource_id), tag).allowed
    # a plan after apply is a no-op, and applying it writes nothing
    n = len(writes(emu))
    again = await planner.plan(t)
    assert again.is_noop
    result = await planner.apply(again)
    assert not result.changed
    assert len(writes(emu)) == n


async def test_concurrent_applies_keep_every_rule(emu: ArmEmulator, session: AzureSession) -> None:
    vm1 = emu.add_windows_vm("vm1", nsg="subnet", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="subnet", public_ip=True)
    shared = nsg_id(vm1, "vnet-westeurope-default-nsg")
    pre = [
        rule("AllowRdpFromOffice", 300, src="198.51.100.0/24", dport="3389"),
        rule("DenyTelnet", 310, access="Deny", dport="23"),
        rule("DenyInternet", 4000, direction="Outbound", access="Deny", dst="Internet"),
        rule(
            "AllowDns", 120, direction="Outbound", protocol="Udp", dst="168.63.129.16", dport="53"
        ),
    ]
    ids = [emu.add_rule(shared, r)["id"] for r in pre]
    snapshot = {i: json.dumps(emu.resource(i), sort_keys=True) for i in ids}
    planner = NetworkRulePlanner(session)
    p1 = await planner.plan(vm1, access=PublicAccess(["203.0.113.7"]))
    p2 = await planner.plan(vm2, access=PublicAccess(["192.0.2.8"]))
    # both were planned against the same NSG: same names and priorities
    assert {c.rule_name for c in p1.changes} == {c.rule_name for c in p2.changes}
    before = len(emu.requests)
    r1, r2 = await asyncio.gather(planner.apply(p1), planner.apply(p2))
    assert r1.replanned != r2.replanned  # the second saw the first's rules and re-planned
    got = rule_names(emu, shared)
    inbound = [r for r in got.values() if r["properties"].get("direction") == "Inbound"]
    sources = set()
    for r in inbound:
        props = r["properties"]
        if str(props.get("description") or "").startswith("Managed by wac_azure"):
            sources |= {props.get("sourceAddressPrefix")} | set(
                props.get("sourceAddressPrefixes") or []
            )
    assert {"203.0.113.7", "192.0.2.8"} <= sources
    outbound_ours = [r for r in got.values() if r["name"].startswith("PortForWACService")]
    assert len(outbound_ours) == 1  # the second plan found the first one's rule
    for i in ids:
        assert json.dumps(emu.resource(i), sort_keys=True) == snapshot[i]
    whole_nsg_puts = [
        r
        for r in emu.requests[before:]
        if r.method == "PUT" and re.search(r"Groups/[^/]+$", r.path)
    ]
    assert whole_nsg_puts == []
    for vm, ip in ((vm1, "203.0.113.7"), (vm2, "192.0.2.8")):

        def inbound_flow(addr: str, src: str = ip) -> Flow:
            return Flow("Inbound", "Tcp", src, None, addr, 6516)

        assert await allowed(session, vm, inbound_flow) is Access.ALLOW


async def test_replans_when_nsg_changed_after_planning(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, deny_6516())
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, entra=False)
    assert plan.changes[0].priority == 100
    # someone else takes priority 100 in between
    emu.add_rule(nid, rule("SomeoneElse", 100, dport="8080"))
    result = await planner.apply(plan)
    assert result.replanned
    got = rule_names(emu, nid)
    assert got["SomeoneElse"]["properties"]["priority"] == 100
    assert got["PortForWAC"]["properties"]["priority"] == 101
    assert [(c.rule_name, c.priority) for c, _ in result.skipped] == [("PortForWAC", 100)]
    assert [(c.rule_name, c.priority) for c in result.created] == [("PortForWAC", 101)]


async def test_rule_conflict_at_write_time_replans_a_few_times(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.add_rule(nsg_id(t, "vm1-nsg"), deny_6516())
    conflict = Fault(
        "status",
        status=400,
        code="SecurityRuleConflict",
        message="Rules cannot have the same Priority and Direction.",
    )
    emu.faults.add_scripted(1, conflict, method="PUT", path_regex=r"/securityRules/")
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, entra=False)
    result = await planner.apply(plan)
    assert result.replanned
    assert [c.rule_name for c in result.created] == ["PortForWAC"]
    # conflicts after every re-plan are not retried forever
    t2 = emu.add_windows_vm("vm2", nsg="nic")
    emu.add_rule(nsg_id(t2, "vm2-nsg"), deny_6516())
    for n in range(1, 5):  # the first write and three re-plans (_MAX_REPLANS) all conflict
        emu.faults.add_scripted(n, conflict, method="PUT", path_regex=r"/vm2-nsg/securityRules/")
    with pytest.raises(AzureRequestError) as info:
        await planner.apply(await planner.plan(t2, entra=False))
    assert info.value.code == "SecurityRuleConflict"


async def test_remove_deletes_only_managed_rules(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic", public_ip=True)
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, deny_6516())
    lookalike = emu.add_rule(
        nid, rule("PortForWAC-mine", 150, src="198.51.100.9", dport="6516", description="mine")
    )
    keep = {
        lookalike["id"]: json.dumps(emu.resource(lookalike["id"]), sort_keys=True),
    }
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(t, access=PublicAccess(["203.0.113.7"])))
    assert "PortForWAC" in rule_names(emu, nid)
    removal = await planner.plan_removal(t)
    assert [c.rule_name for c in removal.changes] == ["PortForWAC"]
    assert "- PortForWAC" in str(removal)
    result = await planner.remove(t)
    assert [c.rule_name for c in result.deleted] == ["PortForWAC"]
    names = set(rule_names(emu, nid))
    assert names == {"Deny6516", "PortForWAC-mine"}
    for i, text in keep.items():
        assert json.dumps(emu.resource(i), sort_keys=True) == text
    deletes = [r for r in emu.requests if r.method == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0].path.endswith("/securityRules/PortForWAC")
    # nothing left to remove: no writes
    n = len(writes(emu))
    assert not (await planner.remove(t)).changed
    assert len(writes(emu)) == n


async def test_409_another_operation_is_retried(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.add_rule(nsg_id(t, "vm1-nsg"), deny_6516())
    emu.faults.add_scripted(1, "409", method="PUT", path_regex=r"/securityRules/")
    planner = NetworkRulePlanner(session)
    result = await planner.apply(await planner.plan(t, entra=False))
    assert [c.rule_name for c in result.created] == ["PortForWAC"]
    puts = [r for r in emu.requests if r.method == "PUT"]
    assert [p.status for p in puts] == [409, 201]


async def test_preempted_operation_is_retried(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.add_rule(nsg_id(t, "vm1-nsg"), deny_6516())
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT", path_regex=r"/securityRules/")
    planner = NetworkRulePlanner(session)
    result = await planner.apply(await planner.plan(t, entra=False))
    assert [c.rule_name for c in result.created] == ["PortForWAC"]
    assert len([r for r in emu.requests if r.method == "PUT"]) == 2
    assert "PortForWAC" in rule_names(emu, nsg_id(t, "vm1-nsg"))


async def test_service_tags_read_once_per_location(emu: ArmEmulator, session: AzureSession) -> None:
    vm1 = emu.add_windows_vm("vm1", nsg="nic")
    vm2 = emu.add_windows_vm("vm2", nsg="nic")
    # a CIDR deny that does not cover the WindowsAdminCenter prefixes: only the tag list tells
    emu.add_rule(
        nsg_id(vm1, "vm1-nsg"),
        rule("DenyOther", 200, direction="Outbound", access="Deny", dst="100.100.0.0/16"),
    )
    planner = NetworkRulePlanner(session)
    p1 = await planner.plan(vm1)
    await planner.plan(vm2)
    tag_reads = [r for r in emu.requests if r.path.lower().endswith("/servicetags")]
    assert len(tag_reads) == 1
    assert p1.is_noop  # prefixes known: the deny does not touch the service


async def test_service_tags_unavailable_gives_unknown_not_failure(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.add_rule(
        nsg_id(t, "vm1-nsg"),
        rule("DenyRange", 200, direction="Outbound", access="Deny", dst="100.100.0.0/16"),
    )
    refused = Fault("status", status=403, code="AuthorizationFailed", message="no serviceTags/read")
    emu.faults.add_scripted(1, refused, method="GET", path_regex=r"/serviceTags")
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, entra=False)
    assert any("service tag list" in w for w in plan.warnings)
    wac = next(c for c in plan.checks if "WindowsAdminCenter" in c.purpose)
    assert wac.before.access is Access.UNKNOWN
    assert [c.rule_name for c in plan.changes] == ["PortForWACService"]


async def test_create_nsg_for_standard_public_ip(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", nsg=None, public_ip=True)
    planner = NetworkRulePlanner(session)
    access = PublicAccess(["203.0.113.7"])
    blocked = await planner.plan(t, access=access)
    assert [b.code for b in blocked.blocking] == ["nsg-required"]
    plan = await planner.plan(t, access=access, create_nsg=True)
    result = await planner.apply(plan)
    assert len(result.created) == 2
    facts = await read_vm_facts(session, t)
    nic = facts.primary_nic
    assert nic is not None
    assert nic.nsg_id is not None
    assert nic.nsg_id.lower() == nsg_id(t, "vm1-nsg").lower()
    assert "PortForWAC" in rule_names(emu, nic.nsg_id)
    assert (await planner.plan(t, access=access, create_nsg=True)).is_noop


async def test_private_access_default_is_noop_on_fresh_vm(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="both")
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, access=PrivateAccess())
    assert plan.is_noop
    assert (await planner.apply(plan)).changed is False
    assert writes(emu) == []


async def test_plan_many_shared_nsg_once(emu: ArmEmulator, session: AzureSession) -> None:
    vms = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(4)]
    shared = nsg_id(vms[0], "vnet-westeurope-default-nsg")
    emu.add_rule(
        shared, rule("DenyInternet", 4000, direction="Outbound", access="Deny", dst="Internet")
    )
    planner = NetworkRulePlanner(session)
    plan = await planner.plan_many(vms)
    assert sorted(c.rule_name or "" for c in plan.changes) == [
        "PortForAADService",
        "PortForWACService",
    ]
    await planner.apply(plan)
    assert (await planner.plan_many(vms)).is_noop


async def test_apply_timeout_raises_and_releases_the_nsg_lock() -> None:
    emu = ArmEmulator(seed=0, lro_seconds=20, time_scale=0.05)  # operations take 1 s
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, deny_6516())
    async with emu.session() as session:
        planner = NetworkRulePlanner(session)
        plan = await planner.plan(t, entra=False)
        with pytest.raises(OperationTimeoutError):
            await planner.apply(plan, timeout=0.1)
        assert not planner.nsg_lock(nid).locked()
