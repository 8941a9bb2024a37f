"""When a VM's address changes, enable moves its rules to the new one and disable removes both."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    PrivateAccess,
    VmTarget,
    disable,
    disable_many,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator, Fault

NET = "/providers/Microsoft.Network"
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))  # needs a rule naming the VM's address
TAG = "wac_azure-rule-addresses"


def _nic_id(t: VmTarget, name: str | None = None) -> str:
    rg = f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
    return f"{rg}/networkInterfaces/{name or t.name}-nic"


def _ip(emu: ArmEmulator, t: VmTarget) -> str:
    nic = emu.resource(_nic_id(t))
    return str(nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"])


def _move(emu: ArmEmulator, t: VmTarget, address: str) -> None:
    """The VM's NIC gets another private address (a deallocation, a static IP set by hand)."""
    nic = emu.resource(_nic_id(t))
    nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = address
    emu.seed(nic)


def _named(emu: ArmEmulator, nsg_id: str) -> set[str]:
    """Every address a rule of the NSG names as a destination or source."""
    out: set[str] = set()
    for r in emu.resource(nsg_id)["properties"].get("securityRules") or []:
        p: dict[str, Any] = r["properties"]
        for key in ("sourceAddressPrefix", "destinationAddressPrefix"):
            out |= {v for v in [p.get(key), *(p.get(key + "es") or [])] if v}
    return out


@pytest.mark.parametrize("fleet", [False, True], ids=["enable", "enable_many"])
async def test_an_address_change_moves_the_rules_and_disable_removes_both(
    emu: ArmEmulator, session: AzureSession, fleet: bool
) -> None:
    t = emu.add_windows_vm("vm1", nsg="subnet")
    other = emu.add_windows_vm("vm2", nsg="subnet")  # shares the subnet NSG, keeps its rules
    shared = emu.resource(_nic_id(t))["properties"]["ipConfigurations"][0]["properties"]
    nsg_id = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
        "/networkSecurityGroups/vnet-westeurope-default-nsg"
    )
    assert shared["subnet"]["id"]

    async def go(*vms: VmTarget) -> None:
        if fleet:
            assert (await enable_many(session, list(vms), access=ONPREM)).ok
        else:
            for vm in vms:
                await enable(session, vm, access=ONPREM)

    await go(t, other)
    old, kept = _ip(emu, t), _ip(emu, other)
    assert {old, kept} <= _named(emu, nsg_id)
    assert emu.resource(_nic_id(t))["tags"][TAG] == old

    _move(emu, t, "10.0.1.200")
    await go(t)
    assert "10.0.1.200" in _named(emu, nsg_id)
    assert old not in _named(emu, nsg_id), "the old address was left in the rules"
    assert kept in _named(emu, nsg_id)
    assert emu.resource(_nic_id(t))["tags"][TAG] == "10.0.1.200"

    _move(emu, t, "10.0.1.201")
    if fleet:
        assert (await disable_many(session, [t])).ok
    else:
        await disable(session, t)
    named = _named(emu, nsg_id)
    assert "10.0.1.200" not in named
    assert "10.0.1.201" not in named
    assert kept in named  # vm2 keeps its access
    assert TAG not in (emu.resource(_nic_id(t)).get("tags") or {})


async def test_an_address_another_vm_of_the_run_now_holds_is_kept(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """vm1 moves off an address that vm2 now holds: a run over both keeps it for vm2."""
    vm1 = emu.add_windows_vm("vm1", nsg="subnet")
    vm2 = emu.add_windows_vm("vm2", nsg="subnet")
    assert (await enable_many(session, [vm1], access=ONPREM)).ok
    old = _ip(emu, vm1)
    _move(emu, vm1, "10.0.1.210")
    _move(emu, vm2, old)
    assert (await enable_many(session, [vm1, vm2], access=ONPREM)).ok
    nsg_id = (
        f"/subscriptions/{vm1.subscription_id}/resourceGroups/{vm1.resource_group}{NET}"
        "/networkSecurityGroups/vnet-westeurope-default-nsg"
    )
    assert {old, "10.0.1.210"} <= _named(emu, nsg_id)


@pytest.mark.parametrize("fleet", [False, True], ids=["enable", "enable_many"])
async def test_a_failed_address_record_does_not_fail_the_vm(
    emu: ArmEmulator,
    session: AzureSession,
    caplog: pytest.LogCaptureFixture,
    fleet: bool,
) -> None:
    """The record is bookkeeping: a refused NIC write is logged at WARNING, the VM is enabled."""
    t = emu.add_windows_vm("vm1", nsg="nic")
    refused = Fault("status", status=403, code="AuthorizationFailed", message="no NIC write")
    emu.faults.add_scripted(1, refused, method="PUT", path_regex=r"/networkInterfaces/")
    if fleet:
        result = await enable_many(session, [t], access=ONPREM)
        assert result.ok, str(result)
    else:
        await enable(session, t, access=ONPREM)
    assert TAG not in (emu.resource(_nic_id(t)).get("tags") or {})
    assert any(r.levelno == logging.WARNING and TAG in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
