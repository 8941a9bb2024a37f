"""A saved plan applied later: strict refuses a stale one unwritten; else it re-plans, saying so."""

from __future__ import annotations

import json

import pytest

from wac_azure import (
    AzureSession,
    NetworkPlan,
    NetworkRulePlanner,
    PublicAccess,
    StalePlanError,
    WacAzureError,
)
from wac_azure.testing import ArmEmulator

from tests.azure.rules.test_scoped_rules import nsg_id, rules
from tests.core.nsg._helpers import rule

ACCESS = PublicAccess(["203.0.113.7"])


def _writes(emu: ArmEmulator, start: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.requests[start:] if r.method != "GET"]


async def test_a_saved_plan_loads_and_applies(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    planner = NetworkRulePlanner(session)
    saved = json.dumps((await planner.plan(t, access=ACCESS)).to_dict())
    plan = NetworkPlan.from_dict(json.loads(saved))
    result = await planner.apply(plan, strict=True)
    assert not result.replanned
    assert [c.rule_name for c in result.created] == [c.rule_name for c in plan.changes]
    assert (await planner.plan(t, access=ACCESS)).is_noop


@pytest.mark.parametrize("where", ["written", "read only"])
async def test_strict_apply_of_a_stale_plan_writes_nothing(
    emu: ArmEmulator, session: AzureSession, where: str
) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True, nsg="both")
    planner = NetworkRulePlanner(session)
    if where == "read only":
        # the subnet NSG allows everything the VM needs: the plan writes only the NIC's
        emu.add_rule(
            nsg_id(t, "vnet-westeurope-default-nsg"),
            rule("AllowWac", 150, src="203.0.113.7", dport="6516"),
        )
    plan = NetworkPlan.from_dict(
        json.loads(json.dumps((await planner.plan(t, access=ACCESS)).to_dict()))
    )
    changed = nsg_id(t, "vm1-nsg" if where == "written" else "vnet-westeurope-default-nsg")
    assert changed.lower() in plan.nsg_fingerprints
    emu.add_rule(changed, rule("SomeoneElse", 3000, access="Deny", src="198.51.100.0/24"))
    start = len(emu.requests)

    with pytest.raises(StalePlanError) as info:
        await planner.apply(plan, strict=True)

    assert isinstance(info.value, WacAzureError)
    assert [n.lower() for n in info.value.nsgs] == [changed.lower()]
    assert "nothing was written" in str(info.value)
    assert _writes(emu, start) == []


async def test_apply_without_strict_replans_a_stale_plan_and_says_so(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, access=ACCESS)
    nid = nsg_id(t, "vm1-nsg")
    emu.add_rule(nid, rule("SomeoneElse", 3000, access="Deny", src="198.51.100.0/24"))
    result = await planner.apply(plan)
    assert result.replanned
    assert result.to_dict()["replanned"] is True
    assert "re-planned" in result.summary()
    assert "SomeoneElse" in rules(emu, nid)
    assert (await planner.plan(t, access=ACCESS)).is_noop


async def test_strict_must_be_a_bool(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(t, access=ACCESS)
    with pytest.raises(WacAzureError):
        await planner.apply(plan, strict="yes")  # type: ignore[arg-type]
    assert _writes(emu) == []
