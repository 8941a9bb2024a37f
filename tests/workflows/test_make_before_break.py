"""Changing an enabled VM's sources writes the new rule before removing the old one."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure import AzureSession, PrivateAccess, PublicAccess, VmTarget, disable, enable
from wac_azure._core.access import AccessMode
from wac_azure.testing import ArmEmulator
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
) -> None:
    t = emu.add_windows_vm("vm1", public_ip=True)
    await enable(session, t, access=first, port=PORT)
    assert _inbound_allowed(emu, t, kept)
    assert _inbound_allowed(emu, t, dropped)

    result = await enable(session, t, access=second, port=PORT)

    assert result.port == PORT or result.port is not None
    assert _inbound_allowed(emu, t, kept), "narrowed sources left the VM unreachable"
    assert not _inbound_allowed(emu, t, dropped), "the dropped sources are still allowed"
    await disable(session, t)
    assert not _inbound_allowed(emu, t, kept)
