"""Pure planning: NetworkPlan from hand-built VmFacts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wac_azure import (
    ChangeAction,
    ConfigurationError,
    PrivateAccess,
    PublicAccess,
    VmTarget,
    plan_network,
)
from wac_azure._core.facts import NicFacts, PublicIpFacts, VmFacts
from wac_azure._core.nsg import Access, NetworkSecurityGroup
from wac_azure._core.plan import plan_many

from tests.core.nsg._helpers import rule

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network"
NIC_NSG = f"{RG}/networkSecurityGroups/vm1-nsg"
SUBNET_NSG = f"{RG}/networkSecurityGroups/vnet-default-nsg"


def group(nsg_id: str, *rules: dict[str, Any]) -> NetworkSecurityGroup:
    return NetworkSecurityGroup.from_arm(
        {"id": nsg_id, "etag": 'W/"e1"', "properties": {"securityRules": list(rules)}}
    )


def facts(
    name: str = "vm1",
    *,
    nic_nsg: NetworkSecurityGroup | None = None,
    subnet_nsg: NetworkSecurityGroup | None = None,
    public_ip: str | None = None,
    ip: str = "10.0.0.4",
) -> VmFacts:
    target = VmTarget.from_parts(SUB, "rg", name)
    pips = (
        (PublicIpFacts(id=f"{RG}/publicIPAddresses/{name}-ip", name=f"{name}-ip", sku=public_ip),)
        if public_ip
        else ()
    )
    nic = NicFacts(
        id=f"{RG}/networkInterfaces/{name}-nic",
        name=f"{name}-nic",
        primary=True,
        private_ips=(ip,),
        public_ips=pips,
        nsg_id=nic_nsg.id if nic_nsg else None,
        subnet_nsg_id=subnet_nsg.id if subnet_nsg else None,
    )
    nsgs = {n.id: n for n in (nic_nsg, subnet_nsg) if n is not None}
    return VmFacts(
        target=target,
        vm_resource_id=target.resource_id,
        location="westeurope",
        nics=(nic,),
        nsgs=nsgs,
        vnet_prefixes=("10.0.0.0/16",),
    )


def deny_out_internet(prio: int = 4000) -> dict[str, Any]:
    return rule("DenyInternetOut", prio, direction="Outbound", access="Deny", dst="Internet")


def assert_consistent(plan: Any) -> None:
    """Once applied, every needed flow is allowed (unless the plan is blocked)."""
    if not plan.blocking:
        for check in plan.checks:
            assert check.after.access is Access.ALLOW, (check.purpose, check.after.reason)
    json.loads(json.dumps(plan.to_dict()))


def test_defaults_only_private_access_is_noop() -> None:
    plan = plan_network(facts(nic_nsg=group(NIC_NSG)))
    assert plan.is_noop
    assert plan.changes == ()
    assert plan.blocking == ()
    assert "No changes" in str(plan)
    assert len(plan.checks) == 3  # WAC, AAD, inbound from VirtualNetwork
    assert all(c.before.access is Access.ALLOW for c in plan.checks)


def test_no_nsg_private_is_noop() -> None:
    assert plan_network(facts()).is_noop


def test_deny_at_200_gets_rule_below_200() -> None:
    deny = rule("Deny6516", 200, access="Deny", dport="6516")
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, deny)), entra=False)
    assert len(plan.changes) == 1
    c = plan.changes[0]
    assert c.action is ChangeAction.CREATE
    assert c.nsg_id == NIC_NSG
    assert c.rule_name == "PortForWAC"
    assert c.priority is not None
    assert c.priority < 200
    assert c.before == "Deny6516"
    assert c.rule is not None
    assert c.rule.is_managed
    assert c.body == {
        "properties": {
            "description": c.rule.description if c.rule else None,
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "6516",
            "sourceAddressPrefix": "VirtualNetwork",
            "destinationAddressPrefix": "10.0.0.4",  # the VM, not "*"
            "access": "Allow",
            "priority": c.priority,
            "direction": "Inbound",
        }
    }
    assert_consistent(plan)
    assert "+ PortForWAC" in str(plan)
    assert "Plan: 1 to add, 0 to delete." in str(plan)


def test_all_priorities_before_deny_taken_is_blocking() -> None:
    fillers = [rule(f"f{p}", p, dport=str(1000 + p)) for p in range(100, 200)]
    deny = rule("Deny6516", 200, access="Deny", dport="6516")
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, *fillers, deny)), entra=False)
    assert plan.changes == ()
    assert len(plan.blocking) == 1
    b = plan.blocking[0]
    assert b.code == "no-free-priority"
    assert b.rule == "Deny6516"
    assert b.priority == 200
    assert "Deny6516" in str(plan)
    assert "blocking" in str(plan)
    assert not plan.is_noop
    assert plan.is_blocked


def test_one_free_slot_is_used() -> None:
    fillers = [rule(f"f{p}", p, dport=str(1000 + p)) for p in range(100, 200) if p != 150]
    deny = rule("Deny6516", 200, access="Deny", dport="6516")
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, *fillers, deny)), entra=False)
    assert [c.priority for c in plan.changes] == [150]


def test_nic_and_subnet_both_get_rules() -> None:
    f = facts(
        nic_nsg=group(NIC_NSG, deny_out_internet()),
        subnet_nsg=group(SUBNET_NSG, deny_out_internet(300)),
    )
    plan = plan_network(f)
    got = {(c.nsg_id, c.rule_name, c.priority) for c in plan.changes}
    assert got == {
        (NIC_NSG, "PortForWACService", 100),
        (NIC_NSG, "PortForAADService", 101),
        (SUBNET_NSG, "PortForWACService", 100),
        (SUBNET_NSG, "PortForAADService", 101),
    }
    body = next(c for c in plan.changes if c.rule_name == "PortForAADService").body
    assert body["properties"]["destinationAddressPrefix"] == "AzureActiveDirectory"
    assert body["properties"]["destinationPortRange"] == "443"
    assert_consistent(plan)


def test_preferred_priority_taken_and_name_taken() -> None:
    other = rule(
        "PortForWACService",
        100,
        direction="Outbound",
        access="Deny",
        protocol="Udp",
        dst="198.51.100.1",
    )
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, other, deny_out_internet())))
    by_purpose = {c.rule_name: c.priority for c in plan.changes}
    assert by_purpose == {"PortForWACService-2": 101, "PortForAADService": 102}
    assert_consistent(plan)


def test_existing_allow_means_nothing_to_do() -> None:
    allow = rule(
        "MyWac", 150, direction="Outbound", dst="WindowsAdminCenter", dport="443", protocol="*"
    )
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, allow, deny_out_internet())), entra=False)
    assert plan.is_noop


def test_unknown_deny_at_100_blocks() -> None:
    # a CIDR deny at 100 may cover the service tag: nothing can go before it
    deny = rule("DenyRange", 100, direction="Outbound", access="Deny", dst="20.0.0.0/8")
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, deny)), entra=False)
    assert [(b.code, b.rule) for b in plan.blocking] == [("no-free-priority", "DenyRange")]


def test_unknown_match_is_planned_around() -> None:
    deny = rule("DenyRange", 300, direction="Outbound", access="Deny", dst="20.0.0.0/8")
    plan = plan_network(facts(nic_nsg=group(NIC_NSG, deny)), entra=False)
    wac = next(c for c in plan.checks if "WindowsAdminCenter" in c.purpose)
    assert wac.before.access is Access.UNKNOWN
    assert [(c.rule_name, c.before) for c in plan.changes] == [("PortForWACService", "DenyRange")]
    assert wac.after.access is Access.ALLOW
    # with the tag's prefixes known and outside the range: nothing to do
    known = plan_network(
        facts(nic_nsg=group(NIC_NSG, deny)),
        entra=False,
        service_tags={"WindowsAdminCenter": ["52.0.0.0/16"]},
    )
    assert known.is_noop


def test_public_access_opens_port_for_sources() -> None:
    plan = plan_network(
        facts(nic_nsg=group(NIC_NSG), public_ip="Standard"),
        access=PublicAccess(["203.0.113.7", "198.51.100.0/24"]),
        port=8443,
    )
    assert len(plan.changes) == 1
    props = plan.changes[0].body["properties"]
    assert props["sourceAddressPrefixes"] == ["203.0.113.7", "198.51.100.0/24"]
    assert props["destinationPortRange"] == "8443"
    assert props["priority"] == 100
    assert_consistent(plan)


def test_public_standard_ip_without_nsg_blocks_unless_create_nsg() -> None:
    f = facts(public_ip="Standard")
    access = PublicAccess(["203.0.113.7"])
    plan = plan_network(f, access=access)
    assert [b.code for b in plan.blocking] == ["nsg-required"]
    assert "create_nsg=True" in plan.blocking[0].reason
    plan = plan_network(f, access=access, create_nsg=True)
    assert plan.blocking == ()
    assert [c.action for c in plan.changes] == [ChangeAction.CREATE_NSG, ChangeAction.CREATE]
    new, port_rule = plan.changes
    assert new.nic_id == f.primary_nic.id
    assert new.nsg_name == "vm1-nsg"
    assert new.body == {"location": "westeurope", "properties": {}}
    assert port_rule.nsg_id == new.nsg_id
    assert port_rule.rule_name == "PortForWAC"
    assert_consistent(plan)


def test_basic_ip_without_nsg_is_open_with_warning() -> None:
    plan = plan_network(facts(public_ip="Basic"), access=PublicAccess(["203.0.113.7"]))
    assert plan.is_noop
    assert any("Basic" in w for w in plan.warnings)


def test_public_access_without_public_ip_is_blocking() -> None:
    plan = plan_network(facts(nic_nsg=group(NIC_NSG)), access=PublicAccess(["203.0.113.7"]))
    assert [b.code for b in plan.blocking] == ["no-public-ip"]


def test_anywhere_warns_and_opens_to_star() -> None:
    plan = plan_network(
        facts(nic_nsg=group(NIC_NSG), public_ip="Standard"),
        access=PublicAccess.anywhere(acknowledge_risk=True),
    )
    assert plan.warnings
    assert "every host" in plan.warnings[0]
    assert plan.changes[0].body["properties"]["sourceAddressPrefix"] == "*"
    assert "~ warning" in str(plan)
    assert_consistent(plan)


def test_shared_nsg_gets_each_rule_once() -> None:
    shared = group(SUBNET_NSG, deny_out_internet(), rule("DenyIn", 4000, access="Deny"))
    many = [facts(f"vm{i}", subnet_nsg=shared, ip=f"10.0.0.{i + 4}") for i in range(5)]
    plan = plan_many(many, access=PrivateAccess())
    names = sorted(c.rule_name or "" for c in plan.changes)
    assert names == ["PortForAADService", "PortForWAC", "PortForWACService"]
    assert len(plan.targets) == 5
    assert len(plan.checks) == 15
    assert_consistent(plan)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        plan_network(facts(), port=0)
    with pytest.raises(ConfigurationError):
        plan_network(facts(), access="public")  # type: ignore[arg-type]


def test_html_escapes_and_summarizes() -> None:
    evil = group(NIC_NSG.replace("vm1-nsg", "x"), rule("D<i>", 200, access="Deny", dport="6516"))
    evil = NetworkSecurityGroup(
        id=evil.id, name="<script>x</script>", rules=evil.rules, etag=evil.etag
    )
    plan = plan_network(facts(nic_nsg=evil), entra=False)
    html = plan._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "D&lt;i&gt;" in html
    assert html.index("Plan: 1 to add") < html.index("<table>")
    assert "<details>" in html


def test_unreadable_nsg_is_blocking_with_the_reason() -> None:
    f = facts(nic_nsg=group(NIC_NSG))
    broken = VmFacts(
        target=f.target,
        vm_resource_id=f.vm_resource_id,
        location=f.location,
        nics=f.nics,
        nsgs={},
        vnet_prefixes=("10.0.0.0/16", "not-a-prefix"),
        notes=(f"network security group {NIC_NSG} could not be parsed: bad rule",),
    )
    plan = plan_network(broken)
    assert [b.code for b in plan.blocking] == ["nsg-unreadable"]
    assert "bad rule" in plan.blocking[0].reason


def test_odd_vnet_prefix_does_not_sink_the_plan() -> None:
    import attrs

    f = attrs.evolve(facts(nic_nsg=group(NIC_NSG)), vnet_prefixes=("10.0.0.0/16", "bogus"))
    assert plan_network(f).is_noop
