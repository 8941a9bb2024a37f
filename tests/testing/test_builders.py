"""What add_windows_vm builds: subnets and their NSGs, subnet capacity, the OS build."""

from __future__ import annotations

import pytest

from wac_azure import AzureSession, VmTarget
from wac_azure.testing import ArmEmulator

from ._helpers import NSG_T, RG, SUB, nsg_id

# -- a subnet NSG never reaches VMs that did not ask for one -------------------------------


async def _subnet_of(session: AzureSession, vm: str) -> tuple[str, str | None]:
    """(subnet name, subnet NSG name) of a VM's NIC, read through the SDK."""
    network = session.network(SUB)
    nic = await network.network_interfaces.get(RG, f"{vm}-nic")
    sid = nic.ip_configurations[0].subnet.id
    parts = sid.split("/")
    subnet = await network.subnets.get(RG, parts[-3], parts[-1])
    nsg = subnet.network_security_group
    return subnet.name, (nsg.id.rsplit("/", 1)[1] if nsg is not None else None)


async def test_subnet_nsg_does_not_reach_nic_only_vms(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("a", nsg="subnet")
    emu.add_windows_vm("b", nsg="nic")
    emu.add_windows_vm("c", nsg=None)
    emu.add_windows_vm("d", nsg="both")
    assert await _subnet_of(session, "a") == ("default-nsg", "vnet-westeurope-default-nsg")
    assert await _subnet_of(session, "d") == ("default-nsg", "vnet-westeurope-default-nsg")
    assert await _subnet_of(session, "b") == ("default", None)
    assert await _subnet_of(session, "c") == ("default", None)
    # and the emulator's own judgement agrees: a subnet deny-all-out hits a and d only
    emu.add_rule(
        nsg_id("vnet-westeurope-default-nsg"),
        {
            "name": "deny-out",
            "properties": {
                "protocol": "*",
                "access": "Deny",
                "direction": "Outbound",
                "priority": 100,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "*",
            },
        },
    )
    for name, allowed in (("a", False), ("b", True), ("c", True), ("d", False)):
        vm = emu.store.get(VmTarget.from_parts(SUB, RG, name).resource_id)
        assert vm is not None
        assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is allowed, name


async def test_explicit_subnet_shares_its_nsg_with_every_vm_in_it(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("web", nsg="subnet", subnet="app")
    emu.add_windows_vm("api", nsg="nic", subnet="app")
    assert await _subnet_of(session, "web") == ("app", "vnet-westeurope-app-nsg")
    assert await _subnet_of(session, "api") == ("app", "vnet-westeurope-app-nsg")


def test_subnet_holds_250_nics_then_the_next_subnet_starts(emu: ArmEmulator) -> None:
    for i in range(251):
        emu.add_windows_vm(f"vm{i}", nsg=None)

    def ip_of(name: str) -> tuple[str, str]:
        nic = emu.resource(nsg_id(name).replace(NSG_T, "Microsoft.Network/networkInterfaces"))
        conf = nic["properties"]["ipConfigurations"][0]["properties"]
        return conf["privateIPAddress"], conf["subnet"]["id"].rsplit("/", 1)[1]

    assert ip_of("vm0-nic") == ("10.0.0.4", "default")
    assert ip_of("vm249-nic") == ("10.0.0.253", "default")
    assert ip_of("vm250-nic") == ("10.0.1.4", "default-2")
    vnet = emu.resource(
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/virtualNetworks/vnet-westeurope"
    )
    prefixes = {s["name"]: s["properties"]["addressPrefix"] for s in vnet["properties"]["subnets"]}
    assert prefixes == {"default": "10.0.0.0/24", "default-2": "10.0.1.0/24"}


# -- exactVersion matches the OS -----------------------------------------------------------


@pytest.mark.parametrize(
    ("os", "build"),
    [
        ("2012-R2", "9600"),
        ("2016", "14393"),
        ("2019", "17763"),
        ("2022", "20348"),
        ("2025", "26100"),
        ("windows-11", "22631"),
    ],
)
async def test_exact_version_is_the_os_build(
    emu: ArmEmulator, session: AzureSession, os: str, build: str
) -> None:
    t = emu.add_windows_vm("vm1", os=os)
    vm = await session.compute(SUB).virtual_machines.get(RG, "vm1", expand="instanceView")
    assert vm.storage_profile.image_reference.exact_version.split(".")[0] == build
    assert vm.instance_view.os_version.split(".")[2] == build
    assert t.name == "vm1"
