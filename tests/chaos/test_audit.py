"""The audit itself can fail: each invariant catches the damage it is about."""

from __future__ import annotations

from typing import Any

from wac_azure import enable_many
from wac_azure.testing import ArmEmulator

from ._world import ONPREM, _rule, audit, build_world, nsg_ids, read_state, snapshot


async def _world_and_state(tamper: Any) -> Any:
    emu = ArmEmulator(seed=21)
    world = build_world(emu, 4, seed=21, groups=1)
    async with emu.session() as session:
        await snapshot(session, world)
        result = await enable_many(session, world.targets, access=ONPREM)
        enabled = [o.target.name for o in result.enabled]
        tamper(emu, world)
        state = await read_state(session, world)
    return audit(world, state, enabled=enabled), enabled


async def test_clean_run_passes() -> None:
    res, enabled = await _world_and_state(lambda emu, world: None)
    assert enabled
    assert res.problems() == {}
    assert res.managed_rules > 0


async def test_changed_preexisting_rule_is_a_lost_rule() -> None:
    def tamper(emu: ArmEmulator, world: Any) -> None:
        nsg = nsg_ids(emu, world.resource_groups, world.subscription)[0]
        emu.add_rule(
            nsg,
            _rule(
                "AllowRdpFromJumpbox",
                300,
                "Inbound",
                "Allow",
                sourceAddressPrefix="203.0.113.11",
                destinationAddressPrefix="*",
                destinationPortRange="3389",
            ),
        )

    res, _ = await _world_and_state(tamper)
    assert [r.rsplit("/", 1)[-1] for r in res.rules_lost] == ["allowrdpfromjumpbox"]


async def test_duplicate_clash_and_wide_open_are_caught() -> None:
    def tamper(emu: ArmEmulator, world: Any) -> None:
        nsg = nsg_ids(emu, world.resource_groups, world.subscription)[0]
        props = {"sourceAddressPrefix": "203.0.113.10", "destinationAddressPrefix": "*"}
        emu.add_rule(nsg, _rule("RdpAgain", 301, "Inbound", "Allow", **props,
                                destinationPortRange="3389"))  # fmt: skip
        emu.add_rule(nsg, _rule("SamePriority", 310, "Inbound", "Deny", **props,
                                destinationPortRange="22"))  # fmt: skip
        emu.add_rule(
            nsg,
            _rule(
                "OpenWac",
                320,
                "Inbound",
                "Allow",
                sourceAddressPrefixes=["0.0.0.0/1", "128.0.0.0/1"],
                destinationAddressPrefix="*",
                destinationPortRange="6000-7000",
            ),
        )

    res, _ = await _world_and_state(tamper)
    assert any("RdpAgain" in d for d in res.duplicates)
    assert any("SamePriority" in c for c in res.priority_clashes)
    assert [w.rsplit("/", 1)[-1] for w in res.wide_open] == ["openwac"]


async def test_missing_extension_and_unreachable_vm_are_caught() -> None:
    def tamper(emu: ArmEmulator, world: Any) -> None:
        vm = world.targets[0]
        emu.store.delete(vm.resource_id + "/extensions/AdminCenter")
        for nsg in nsg_ids(emu, world.resource_groups, world.subscription):
            doc = emu.store.get(nsg)
            doc["properties"]["securityRules"] = [
                r for r in doc["properties"]["securityRules"] if r["name"] != "PortForWAC"
            ]

    res, enabled = await _world_and_state(tamper)
    assert any(p.startswith(enabled[0]) for p in res.extension_problems)
    assert len(res.unreachable) == len(enabled) - 1  # vm0000 stops at its extension
