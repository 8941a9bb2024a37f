"""When a VM's address changes, enable moves its rules to the new one and disable removes both.

An old address another VM holds now is not stale: before dropping it, the library asks
Network (``GET …/virtualNetworks/{vnet}/CheckIPAddressAvailability``, spec example
VirtualNetworkCheckIPAddressAvailability.json) and keeps it when ``available`` is false.
"""

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
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

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

    # an address of the NIC's own subnet (10.0.0.0/24): Network answers
    # CheckIPAddressAvailability only for an address inside a subnet of the VNet
    _move(emu, t, "10.0.0.200")
    await go(t)
    assert "10.0.0.200" in _named(emu, nsg_id)
    assert old not in _named(emu, nsg_id), "the old address was left in the rules"
    assert kept in _named(emu, nsg_id)
    assert emu.resource(_nic_id(t))["tags"][TAG] == "10.0.0.200"

    _move(emu, t, "10.0.0.201")
    if fleet:
        assert (await disable_many(session, [t])).ok
    else:
        await disable(session, t)
    named = _named(emu, nsg_id)
    assert "10.0.0.200" not in named
    assert "10.0.0.201" not in named
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
    _move(emu, vm1, "10.0.0.211")
    _move(emu, vm2, old)
    assert (await enable_many(session, [vm1, vm2], access=ONPREM)).ok
    nsg_id = (
        f"/subscriptions/{vm1.subscription_id}/resourceGroups/{vm1.resource_group}{NET}"
        "/networkSecurityGroups/vnet-westeurope-default-nsg"
    )
    assert {old, "10.0.0.211"} <= _named(emu, nsg_id)


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


SOURCE = "10.10.0.5"  # inside ONPREM's sources


def _nsg_of(t: VmTarget) -> str:
    return (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
        "/networkSecurityGroups/vnet-westeurope-default-nsg"
    )


def _reachable(emu: ArmEmulator, t: VmTarget) -> bool:
    """Whether the emulator's own NSG evaluator lets ONPREM reach the VM's WAC port."""
    conf = emu.resource(_nic_id(t))["properties"]["ipConfigurations"][0]["properties"]
    subnet = emu.resource(conf["subnet"]["id"])
    vnet_id = conf["subnet"]["id"].rpartition("/subnets/")[0]
    return flow_allowed(
        [emu.resource(subnet["properties"]["networkSecurityGroup"]["id"])],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip=SOURCE),
        dst=Endpoint(ip=conf["privateIPAddress"]),
        dst_port=6516,
        vnet=tuple(emu.resource(vnet_id)["properties"]["addressSpace"]["addressPrefixes"]),
    ).allowed


def _checks(emu: ArmEmulator) -> list[str]:
    return [
        r.query.get("ipAddress", "")
        for r in emu.requests
        if r.path.lower().endswith("/checkipaddressavailability")
    ]


async def _handover(emu: ArmEmulator, session: AzureSession) -> tuple[VmTarget, VmTarget, str]:
    """vm1 is enabled; then vm1 moves off its address and vm2 (same subnet NSG) takes it,
    and vm2 is enabled: a no-op (the rules name the address already), no record on vm2."""
    vm1 = emu.add_windows_vm("vm1", nsg="subnet")
    vm2 = emu.add_windows_vm("vm2", nsg="subnet")
    await enable(session, vm1, access=ONPREM)
    old = _ip(emu, vm1)
    assert not _checks(emu), "a run with no stale address asks Network nothing"
    _move(emu, vm1, "10.0.0.210")
    _move(emu, vm2, old)
    before = len(emu.writes())
    await enable(session, vm2, access=ONPREM)
    assert not [w for w in emu.writes()[before:] if "/securityRules/" in w.path], "a rule write"
    assert TAG not in (emu.resource(_nic_id(vm2)).get("tags") or {})
    assert _reachable(emu, vm2)
    return vm1, vm2, old


@pytest.mark.parametrize("how", ["disable", "disable_many", "enable", "enable_many"])
async def test_an_old_address_another_vm_holds_now_stays_in_the_rules(
    emu: ArmEmulator,
    session: AzureSession,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    """The review's reproduction: vm1 gave 10.0.0.4 up, vm2 holds it and is enabled; a run
    over vm1 alone must not cut vm2 off (Network says the address is not available)."""
    vm1, vm2, old = await _handover(emu, session)
    warnings: tuple[str, ...] = ()
    if how == "disable":
        await disable(session, vm1)
    elif how == "disable_many":
        assert (await disable_many(session, [vm1])).ok
    elif how == "enable":
        warnings = (await enable(session, vm1, access=ONPREM)).plan.warnings
    else:
        assert (await enable_many(session, [vm1], access=ONPREM)).ok
    assert _reachable(emu, vm2), f"{how} of vm1 cut vm2 ({old}) off"
    if how == "enable":
        assert any(old in w and "another NIC" in w for w in warnings), warnings
    assert old in _named(emu, _nsg_of(vm1))
    assert _reachable(emu, vm1) is how.startswith("enable")
    assert _checks(emu) == [old], "one availability read for the one stale address"
    record = (emu.resource(_nic_id(vm1)).get("tags") or {}).get(TAG, "")
    # the record keeps the address while a rule of ours names it: the next run asks again
    assert old in record.split(",")
    assert any(
        r.levelno == logging.WARNING and old in r.getMessage() and "vm1" in r.getMessage()
        for r in caplog.records
    )


async def test_a_kept_address_is_dropped_once_nobody_holds_it(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """vm2 leaves the address vm1 gave up: vm1's next run finds it available and drops it."""
    vm1, vm2, old = await _handover(emu, session)
    await enable(session, vm1, access=ONPREM)
    assert old in _named(emu, _nsg_of(vm1))
    await disable(session, vm2)  # takes its own address (the old one) out
    _move(emu, vm2, "10.0.0.220")
    await enable(session, vm2, access=ONPREM)
    await enable(session, vm1, access=ONPREM)
    assert old not in _named(emu, _nsg_of(vm1))
    assert emu.resource(_nic_id(vm1))["tags"][TAG] == "10.0.0.210"
    assert _reachable(emu, vm1)
    assert _reachable(emu, vm2)


async def test_an_old_address_held_by_a_vm_never_enabled_is_dropped_when_it_moves_on(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """The address is kept while another NIC holds it, then dropped by vm1's next run."""
    vm1, vm2, old = await _handover(emu, session)
    await disable(session, vm1)
    _move(emu, vm2, "10.0.0.221")  # vm2 moves on; nobody holds the old address
    await disable(session, vm1)
    assert old not in _named(emu, _nsg_of(vm1))
    assert TAG not in (emu.resource(_nic_id(vm1)).get("tags") or {})


@pytest.mark.parametrize("fleet", [False, True], ids=["disable", "disable_many"])
async def test_an_unanswered_availability_check_keeps_the_address(
    emu: ArmEmulator,
    session: AzureSession,
    caplog: pytest.LogCaptureFixture,
    fleet: bool,
) -> None:
    """A refused CheckIPAddressAvailability leaves the address in the rules (the safe side)."""
    vm1 = emu.add_windows_vm("vm1", nsg="subnet")
    emu.add_windows_vm("vm2", nsg="subnet")
    await enable(session, vm1, access=ONPREM)
    old = _ip(emu, vm1)
    _move(emu, vm1, "10.0.0.230")
    refused = Fault("status", status=403, code="AuthorizationFailed", message="no check")
    emu.faults.add_scripted(1, refused, method="GET", path_regex=r"(?i)/CheckIPAddressAvailability")
    if fleet:
        assert (await disable_many(session, [vm1])).ok
    else:
        await disable(session, vm1)
    assert old in _named(emu, _nsg_of(vm1))
    assert any(
        r.levelno == logging.WARNING and old in (m := r.getMessage()) and "could not be read" in m
        for r in caplog.records
    )
