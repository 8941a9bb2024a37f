"""Two sessions (two processes, in effect) enabling two VMs behind one subnet NSG at once.

Each session has its own NSG locks, so only ARM can keep their rule writes apart:
a read-modify-write of one rule must not overwrite what the other session wrote.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wac_azure import PublicAccess, enable, enable_many
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

SOURCE = "203.0.113.7"
NET = "/providers/Microsoft.Network"


def _reachable(emu: ArmEmulator, vm: Any) -> bool:
    rg = f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}{NET}"
    nic = emu.resource(f"{rg}/networkInterfaces/{vm.name}-nic")
    ipconf = nic["properties"]["ipConfigurations"][0]["properties"]
    subnet = emu.resource(ipconf["subnet"]["id"])
    nsgs = [emu.resource(subnet["properties"]["networkSecurityGroup"]["id"])]
    vnet_id = ipconf["subnet"]["id"].rpartition("/subnets/")[0]
    vnet = tuple(emu.resource(vnet_id)["properties"]["addressSpace"]["addressPrefixes"])
    return flow_allowed(
        nsgs,
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip=SOURCE),
        dst=Endpoint(ip=ipconf["privateIPAddress"]),
        dst_port=6516,
        vnet=vnet,
    ).allowed


@pytest.mark.parametrize("seed", range(6))
async def test_two_sessions_one_subnet_nsg_both_reachable(seed: int) -> None:
    emu = ArmEmulator(seed=seed, lro_seconds=0.2)
    vm1 = emu.add_windows_vm("vm1", nsg="subnet", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="subnet", public_ip=True)
    s1, s2 = emu.session(), emu.session()
    access = PublicAccess([SOURCE])
    r1, r2 = await asyncio.gather(enable(s1, vm1, access=access), enable(s2, vm2, access=access))
    assert r1.url is not None
    assert r2.url is not None
    assert _reachable(emu, vm1), f"seed {seed}: vm1 reported enabled but is unreachable"
    assert _reachable(emu, vm2), f"seed {seed}: vm2 reported enabled but is unreachable"


@pytest.mark.parametrize("seed", range(6))
async def test_a_fleet_and_a_single_enable_on_one_subnet_nsg(seed: int) -> None:
    """The fleet's own rule writes are conditional too."""
    emu = ArmEmulator(seed=seed, lro_seconds=0.2)
    vm1 = emu.add_windows_vm("vm1", nsg="subnet", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="subnet", public_ip=True)
    s1, s2 = emu.session(), emu.session()
    access = PublicAccess([SOURCE])
    fleet, single = await asyncio.gather(
        enable_many(s1, [vm1], access=access, poll_interval=0.05),
        enable(s2, vm2, access=access),
    )
    assert fleet.ok, fleet.outcomes
    assert single.url is not None
    assert _reachable(emu, vm1), f"seed {seed}: vm1 reported enabled but is unreachable"
    assert _reachable(emu, vm2), f"seed {seed}: vm2 reported enabled but is unreachable"
