"""NetworkRulePlanner changes rules make-before-break, then checks them by reading them back."""

from __future__ import annotations

import asyncio

import pytest

from wac_azure import (
    AzureSession,
    ChangeAction,
    NetworkRulePlanner,
    NetworkVerificationError,
    PublicAccess,
)
from wac_azure.testing import ArmEmulator

from tests.azure.rules.test_scoped_rules import SUBNET_NSG, nsg_id, rules
from tests.core.nsg._helpers import rule

WIDE = PublicAccess(["203.0.113.0/24"])
NARROW = PublicAccess(["203.0.113.7"])


def _rule_writes(emu: ArmEmulator, start: int) -> list[tuple[str, str]]:
    return [
        (r.method, r.path.rsplit("/", 1)[-1].split("?")[0])
        for r in emu.requests[start:]
        if r.method in ("PUT", "DELETE") and "/securityrules/" in r.path.lower()
    ]


async def test_the_plan_shows_a_change_as_before_and_after(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(t, access=WIDE))
    plan = await planner.plan(t, access=NARROW)
    (change,) = [c for c in plan.changes if c.rule_name == "PortForWAC"]
    assert change.action is ChangeAction.UPDATE
    assert change.previous is not None
    assert change.describe().startswith("~ PortForWAC  sources: 203.0.113.0/24 → 203.0.113.7")
    assert "~ PortForWAC  sources: 203.0.113.0/24 → 203.0.113.7" in str(plan)
    result = await planner.apply(plan)
    assert [c.rule_name for c in result.updated] == ["PortForWAC"]
    assert (await planner.plan(t, access=NARROW)).is_noop


async def test_a_rule_shared_with_another_vm_is_split_new_rule_first(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vm1, vm2 = (emu.add_windows_vm(f"vm{i}", nsg="subnet", public_ip=True) for i in (1, 2))
    shared = nsg_id(vm1, SUBNET_NSG)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan_many([vm1, vm2], access=WIDE))
    assert sorted(n for n in rules(emu, shared) if n.startswith("PortForWAC-")) == []
    start = len(emu.requests)

    plan = await planner.plan(vm1, access=NARROW)
    kinds = [(c.action, c.rule_name) for c in plan.changes]
    assert kinds == [
        (ChangeAction.CREATE, "PortForWAC-6516"),  # vm1 from its new source...
        (ChangeAction.UPDATE, "PortForWAC"),  # ...then out of the rule it shares with vm2
    ]
    await planner.apply(plan)

    writes = _rule_writes(emu, start)
    assert writes[0] == ("PUT", "PortForWAC-6516")
    assert writes[-1] == ("PUT", "PortForWAC")
    got = rules(emu, shared)
    assert got["PortForWAC-6516"]["sourceAddressPrefix"] == "203.0.113.7"
    assert got["PortForWAC"]["sourceAddressPrefix"] == "203.0.113.0/24"
    assert (await planner.plan(vm1, access=NARROW)).is_noop
    assert (await planner.plan(vm2, access=WIDE)).is_noop


async def test_a_port_move_of_a_rule_only_this_vm_uses_is_one_atomic_put(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """vm1 alone in PortForWAC moves to port 7000: the rule is replaced in place (one PUT
    of the same name, which Azure applies whole), never deleted and created again."""
    vm1, vm2 = (emu.add_windows_vm(f"vm{i}", nsg="subnet", public_ip=True) for i in (1, 2))
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan_many([vm1, vm2], access=WIDE))
    await planner.remove(vm2)
    start = len(emu.requests)
    plan = await planner.plan(vm1, access=WIDE, port=7000)
    inbound = [c for c in plan.changes if (c.rule_name or "").startswith("PortForWAC")]
    assert [(c.action, c.rule_name) for c in inbound] == [(ChangeAction.UPDATE, "PortForWAC")]
    assert "ports: 6516 → 7000" in inbound[0].describe()
    await planner.apply(plan)
    writes = [w for w in _rule_writes(emu, start) if w[1].startswith("PortForWAC")]
    assert writes == [("PUT", "PortForWAC")]
    assert rules(emu, nsg_id(vm1, SUBNET_NSG))["PortForWAC"]["destinationPortRange"] == "7000"


async def test_a_change_another_writer_undoes_is_not_reported_done(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """Another writer denies the new source right after our write: the read-back finds the
    flow not allowed and apply raises instead of reporting success."""
    t = emu.add_windows_vm("vm1", public_ip=True)
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(t, access=WIDE))
    nsg = emu.resource(
        emu.resource(
            f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/vm1-nic"
        )["properties"]["networkSecurityGroup"]["id"]
    )
    plan = await planner.plan(t, access=NARROW)
    ours = next(r for r in rules(emu, nsg["id"]).values() if r.get("direction") == "Inbound")
    start = len(emu.requests)

    async def other_writer() -> None:
        while not _rule_writes(emu, start):  # noqa: ASYNC110 (the emulator has no event)
            await asyncio.sleep(0)
        emu.add_rule(
            nsg["id"],
            rule("TheirDeny", ours["priority"] - 1, access="Deny", src="203.0.113.7", dport="*"),
        )

    writer = asyncio.create_task(other_writer())
    with pytest.raises(NetworkVerificationError) as info:
        await planner.apply(plan)
    await writer
    assert info.value.problems
    assert "TheirDeny" in str(info.value) or "denied" in str(info.value)
