"""RequirementChecker's reads: given facts, service tags once per region, tags that decide."""

from __future__ import annotations

from wac_azure import AzureSession, CheckStatus, RequirementChecker, read_vm_facts
from wac_azure._core.checks import evaluate_requirements
from wac_azure.testing import ArmEmulator


def deny_cidr(emu: ArmEmulator, nsg_id: str, prefix: str) -> None:
    emu.add_rule(
        nsg_id,
        {
            "name": "DenyRange",
            "properties": {
                "protocol": "Tcp",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": prefix,
                "destinationPortRange": "443",
                "access": "Deny",
                "priority": 200,
                "direction": "Outbound",
            },
        },
    )


async def test_service_tags_decide_cidr_rules(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1")
    nsg = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    deny_cidr(emu, nsg, "13.66.201.0/24")  # covers a WindowsAdminCenter prefix, no Entra one
    facts = await read_vm_facts(session, t)
    offline = evaluate_requirements(facts)
    assert offline.check("network.outbound_wac").status is CheckStatus.UNKNOWN
    report = await RequirementChecker(session).check(t, facts=facts)
    assert report.check("network.outbound_wac").status is CheckStatus.FAIL
    assert "DenyRange" in report.check("network.outbound_wac").message
    assert report.check("network.outbound_entra").status is CheckStatus.PASS


async def test_given_facts_are_not_read_again_and_tags_are_cached(
    emu: ArmEmulator, session: AzureSession
) -> None:
    a = emu.add_windows_vm("a")
    b = emu.add_windows_vm("b")
    facts = await read_vm_facts(session, a)
    emu.requests.clear()
    checker = RequirementChecker(session)
    await checker.check(a, facts=facts)
    paths = [r.path.lower() for r in emu.requests]
    assert len(paths) == 1
    assert paths[0].endswith("/locations/westeurope/servicetags")
    emu.requests.clear()
    await checker.check(b)
    assert not [r for r in emu.requests if r.path.lower().endswith("/servicetags")]


async def test_unreadable_service_tags_leave_cidr_rules_unknown(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    nsg = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    deny_cidr(emu, nsg, "13.66.201.0/24")
    emu.deny("Microsoft.Network/locations/serviceTags/read")
    report = await RequirementChecker(session).check(t)
    assert report.check("network.outbound_wac").status is CheckStatus.UNKNOWN
    assert not report.passed
