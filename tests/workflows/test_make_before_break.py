"""Changing an enabled VM's sources writes the new rule before removing the old one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    NetworkVerificationError,
    PrivateAccess,
    PublicAccess,
    VmTarget,
    disable,
    disable_many,
    enable,
    enable_many,
)
from wac_azure._core.access import AccessMode
from wac_azure.testing import ArmEmulator, Fault
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

NET = "/providers/Microsoft.Network"
PORT = 6516


def _nic(emu: ArmEmulator, t: VmTarget) -> dict[str, Any]:
    rg = f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
    return emu.resource(f"{rg}/networkInterfaces/{t.name}-nic")


def _inbound_allowed(emu: ArmEmulator, t: VmTarget, source: str) -> bool:
    """The emulator's own verdict on TCP PORT from ``source`` to the VM, from the NSG JSON
    left behind (the NIC's NSG; the VM has no subnet NSG)."""
    nic = _nic(emu, t)
    ipconf = nic["properties"]["ipConfigurations"][0]["properties"]
    vm_ip = ipconf["privateIPAddress"]
    vnet_id = ipconf["subnet"]["id"].rpartition("/subnets/")[0]
    vnet = tuple(emu.resource(vnet_id)["properties"]["addressSpace"]["addressPrefixes"])
    nsg = emu.resource(nic["properties"]["networkSecurityGroup"]["id"])
    verdict = flow_allowed(
        [nsg],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip=source),
        dst=Endpoint(ip=vm_ip),
        dst_port=PORT,
        vnet=vnet,
    )
    return verdict.allowed


NARROWING: list[tuple[str, AccessMode, AccessMode, str, str]] = [
    # (id, first access, second access, a source only the second allows... kept, dropped)
    (
        "public",
        PublicAccess(["203.0.113.0/24"]),
        PublicAccess(["203.0.113.7"]),
        "203.0.113.7",
        "203.0.113.9",
    ),
    (
        "private",
        PrivateAccess(sources=("10.10.0.0/16",)),
        PrivateAccess(sources=("10.10.5.7",)),
        "10.10.5.7",
        "10.10.9.9",
    ),
]


async def _enable(session: AzureSession, t: VmTarget, access: AccessMode, fleet: bool) -> None:
    if fleet:
        result = await enable_many(session, [t], access=access, port=PORT)
        assert result.ok, str(result)
    else:
        await enable(session, t, access=access, port=PORT)


@pytest.mark.parametrize("fleet", [False, True], ids=["enable", "enable_many"])
@pytest.mark.parametrize(
    ("first", "second", "kept", "dropped"),
    [case[1:] for case in NARROWING],
    ids=[case[0] for case in NARROWING],
)
async def test_narrowing_the_sources_keeps_the_new_ones_allowed(
    emu: ArmEmulator,
    session: AzureSession,
    first: AccessMode,
    second: AccessMode,
    kept: str,
    dropped: str,
    fleet: bool,
) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    await _enable(session, t, first, fleet)
    assert _inbound_allowed(emu, t, kept)
    assert _inbound_allowed(emu, t, dropped)

    await _enable(session, t, second, fleet)  # reported enabled...

    # ...and so it is, as the NSG JSON left behind says
    assert _inbound_allowed(emu, t, kept), "narrowed sources left the VM unreachable"
    assert not _inbound_allowed(emu, t, dropped), "the dropped sources are still allowed"
    if fleet:
        assert (await disable_many(session, [t])).ok
    else:
        await disable(session, t)
    assert not _inbound_allowed(emu, t, kept)


@pytest.mark.parametrize("fleet", [False, True], ids=["enable", "enable_many"])
async def test_a_narrowing_another_writer_undoes_is_not_reported_enabled(
    emu: ArmEmulator, session: AzureSession, fleet: bool
) -> None:
    """Right after our narrowing write, another writer denies the new source before our
    rule: the read-back sees it, and the VM is not reported enabled."""
    t = emu.add_windows_vm("vm1", public_ip=True)
    nsg_id = _nic(emu, t)["properties"]["networkSecurityGroup"]["id"]
    # someone's rule at 100, so that there is room before ours
    emu.add_rule(
        nsg_id,
        {
            "name": "Dns",
            "properties": {
                "priority": 100,
                "direction": "Inbound",
                "access": "Allow",
                "protocol": "Udp",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "53",
            },
        },
    )
    await _enable(session, t, PublicAccess(["203.0.113.0/24"]), fleet)
    assert _inbound_allowed(emu, t, "203.0.113.7")
    start = len(emu.requests)

    async def other_writer() -> None:
        while not any(  # noqa: ASYNC110 (the emulator has no event to wait on)
            r.method == "PUT" and "/securityrules/" in r.path.lower() for r in emu.requests[start:]
        ):
            await asyncio.sleep(0)
        emu.add_rule(  # their rule at 100 becomes a deny of the new source
            nsg_id,
            {
                "name": "Dns",
                "properties": {
                    "priority": 100,
                    "direction": "Inbound",
                    "access": "Deny",
                    "protocol": "*",
                    "sourceAddressPrefix": "203.0.113.7",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": "*",
                },
            },
        )

    writer = asyncio.create_task(other_writer())
    narrow = PublicAccess(["203.0.113.7"])
    if fleet:
        result = await enable_many(session, [t], access=narrow, port=PORT)
        (outcome,) = result.outcomes
        assert isinstance(outcome.error, NetworkVerificationError), outcome
    else:
        with pytest.raises(NetworkVerificationError):
            await enable(session, t, access=narrow, port=PORT)
    await writer


async def test_a_fleet_never_narrows_a_shared_rule_after_the_new_rule_failed(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """Two VMs share one subnet NSG's rule; narrowing vm1's sources splits it (create vm1's
    new rule, then take vm1 out of the shared one). When the create fails, the shared
    rule must keep vm1: the "break" is never written without the "make"."""
    vm1 = emu.add_windows_vm("vm1", nsg="subnet", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="subnet", public_ip=True)
    wide = PublicAccess(["203.0.113.0/24"])
    assert (await enable_many(session, [vm1, vm2], access=wide, port=PORT)).ok
    nic = _nic(emu, vm1)["properties"]["ipConfigurations"][0]["properties"]
    nsg_id = emu.resource(nic["subnet"]["id"])["properties"]["networkSecurityGroup"]["id"]
    vm1_ip = nic["privateIPAddress"]

    def inbound(source: str) -> bool:
        verdict = flow_allowed(
            [emu.resource(nsg_id)],
            direction="Inbound",
            protocol="Tcp",
            src=Endpoint(ip=source),
            dst=Endpoint(ip=vm1_ip),
            dst_port=PORT,
            vnet=("10.0.0.0/16",),
        )
        return verdict.allowed

    assert inbound("203.0.113.7")
    start = len(emu.requests)
    denied = {"error": {"code": "AuthorizationFailed", "message": "denied (injected)"}}
    emu.faults.add_scripted(
        1, Fault.recorded(403, denied), method="PUT", path_regex="/securityRules/"
    )
    result = await enable_many(session, [vm1], access=PublicAccess(["203.0.113.7"]), port=PORT)

    assert not result.ok
    rule_writes = [
        r
        for r in emu.requests[start:]
        if r.method in {"PUT", "DELETE"} and "/securityRules/" in r.path
    ]
    assert [r.status for r in rule_writes] == [403], [(r.method, r.path) for r in rule_writes]
    assert inbound("203.0.113.7"), "vm1 lost the access it had: the break went out alone"
