"""enable_many(dry_run=True) reads and decides, writes nothing, plans what a real run writes."""

from __future__ import annotations

import re
from typing import Any

from wac_azure import (
    AzureSession,
    FleetPlan,
    OutcomeStatus,
    PrivateAccess,
    ProgressEvent,
    ProgressStage,
    VmPlan,
    VmTarget,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator

from tests.workflows.fleet.test_fleet_nsg import ONPREM, nsg_id

EXT_PUT = re.compile(r"/extensions/AdminCenter$", re.IGNORECASE)


def _deny(name: str, priority: int, direction: str, dest: str, port: str) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": dest,
            "destinationPortRange": port,
        },
    }


def _world(emu: ArmEmulator) -> list[VmTarget]:
    """Two resource groups, a subnet NSG shared in each, deny rules to route around, a VM
    that does not qualify, one already enabled, one that does not exist."""
    targets = []
    for rg in ("rg-a", "rg-b"):
        for i in range(3):
            targets.append(emu.add_windows_vm(f"{rg}-vm{i}", resource_group=rg, nsg="subnet"))
    locked = emu.add_windows_vm("locked", resource_group="rg-a", nsg="nic")
    emu.add_rule(nsg_id(locked, "locked-nsg"), _deny("DenyOut", 200, "Outbound", "Internet", "*"))
    emu.add_rule(nsg_id(locked, "locked-nsg"), _deny("DenyIn", 300, "Inbound", "*", "*"))
    legacy = emu.add_windows_vm("legacy", resource_group="rg-b", os="2012-R2")
    ready = emu.add_windows_vm("ready", resource_group="rg-b", nsg=None)
    missing = VmTarget.parse(targets[0].resource_id.rsplit("/", 1)[0] + "/nope")
    return [*targets, locked, legacy, ready, missing]


async def test_dry_run_writes_nothing_and_plans_what_a_real_run_writes(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = _world(emu)
    await enable(session, targets[-2], access=ONPREM)  # "ready": nothing left to write
    emu.requests.clear()
    events: list[ProgressEvent] = []

    plan = await enable_many(session, targets, access=ONPREM, dry_run=True, progress=events.append)

    assert isinstance(plan, FleetPlan)
    assert plan.dry_run
    assert [r for r in emu.requests if r.method in ("PUT", "PATCH", "DELETE", "POST")] == []
    assert emu.writes() == []
    assert (plan.writes, plan.deletes) == (0, 0)
    assert plan.reads == len(emu.requests) > 0
    by_name = {o.target.name: o for o in plan.plans}
    assert len(by_name) == len(targets)
    assert by_name["legacy"].status is OutcomeStatus.SKIPPED
    assert by_name["nope"].status is OutcomeStatus.FAILED
    ready = by_name["ready"]
    assert (ready.status, ready.changed, ready.changes, ready.extension) == (
        OutcomeStatus.ENABLED,
        False,
        (),
        None,
    )
    locked = by_name["locked"]
    assert {c.rule_name for c in locked.changes} == {
        "PortForWACService",
        "PortForAADService",
        "PortForWAC",
    }
    assert all(c.priority is not None and c.priority < 200 for c in locked.changes)
    assert locked.extension is not None
    assert locked.extension["properties"]["settings"]["port"] == "6516"
    # a shared subnet NSG gets its rule once over the fleet, listed for each VM it serves
    shared = [c for c in plan.changes if c.nsg_name == "vnet-westeurope-default-nsg"]
    assert len({(c.nsg_id.lower(), c.rule_name) for c in shared}) == len(shared) == 2
    assert by_name["rg-a-vm0"].rules == by_name["rg-a-vm1"].rules
    # progress: planned, then done, for a VM that would go on; nothing says "rules applied"
    stages = [e.stage for e in events if e.target.name == "locked"]
    assert stages == [ProgressStage.READING, ProgressStage.PLANNED, ProgressStage.DONE]
    assert ProgressStage.RULES_APPLIED not in {e.stage for e in events}
    doc = plan.to_dict()
    assert doc["dry_run"] is True
    assert doc["counts"]["enabled"] == len(targets) - 2
    assert "would write" in str(plan)
    assert "Dry run: nothing was written" in plan._repr_html_()

    # The same world, for real: every VM ends as planned, with the rules and installs planned.
    emu.requests.clear()
    real = await enable_many(session, targets, access=ONPREM)
    assert not isinstance(real, FleetPlan)
    ext_puts = {r.path.split("/")[-3].lower() for r in emu.writes() if EXT_PUT.search(r.path)}
    for outcome in real.outcomes:
        planned = by_name[outcome.target.name]
        assert isinstance(planned, VmPlan)
        assert outcome.status is planned.status, outcome
        assert set(outcome.rules) == set(planned.rules), outcome.target.name
        assert outcome.changed == planned.changed, outcome.target.name
        assert (outcome.target.name.lower() in ext_puts) == (planned.extension is not None)
        if planned.extension is not None:
            ext = emu.resource(f"{outcome.target.resource_id}/extensions/AdminCenter")
            settings = dict(ext["properties"]["settings"])
            wanted = dict(planned.extension["properties"]["settings"])
            assert settings.pop("salt")
            assert wanted.pop("salt") == "(new random salt)"
            assert settings == wanted
        if outcome.status is OutcomeStatus.ENABLED:
            assert outcome.url == planned.url
    written = {r.path.lower() for r in emu.writes() if "/securityrules/" in r.path.lower()}
    assert written == {
        c.lower() for c in (f"{x.nsg_id}/securityRules/{x.rule_name}" for x in plan.changes)
    }


async def test_dry_run_of_an_enabled_fleet_plans_nothing(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]
    await enable_many(session, targets)
    emu.requests.clear()
    plan = await enable_many(session, targets, access=PrivateAccess(), dry_run=True)
    assert isinstance(plan, FleetPlan)
    assert emu.writes() == []
    assert plan.changes == ()
    assert [(o.status, o.changed, o.extension) for o in plan.plans] == [
        (OutcomeStatus.ENABLED, False, None)
    ] * 3
