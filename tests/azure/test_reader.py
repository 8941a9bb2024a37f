"""read_vm_facts against the emulator: reads, budget, caching, errors, real fixtures."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wac_azure import (
    AuthorizationError,
    AzureSession,
    CheckStatus,
    RequirementChecker,
    ResourceGroupNotFoundError,
    VmNotFoundError,
    VmTarget,
    read_vm_facts,
)
from wac_azure._core.access import PublicAccess
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator

from tests._shared import ARM_FIXTURES

FIXTURES = ARM_FIXTURES


def body(name: str, **replace: str) -> dict[str, Any]:
    text = (FIXTURES / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    doc: dict[str, Any] = json.loads(text)["responses"]["200"]["body"]
    return doc


def gets(emu: ArmEmulator) -> list[str]:
    return [r.path.lower() for r in emu.requests if r.method == "GET"]


def size_reads(emu: ArmEmulator) -> list[str]:
    """The location of each size list read: Compute's resource SKUs, or the deprecated
    VM sizes list where the SKUs list answered 404 (that 404 is part of the same read)."""
    out = []
    for r in emu.requests:
        path = r.path.lower()
        if r.method != "GET":
            continue
        if path.endswith("/providers/microsoft.compute/skus") and r.status != 404:
            out.append(r.query.get("$filter", "").split("'")[1])
        elif path.endswith("/vmsizes"):
            out.append(path.split("/locations/")[1].split("/")[0])
    return out


def budget_reads(emu: ArmEmulator) -> tuple[int, int]:
    """(resource reads, size-list reads) the emulator answered."""
    paths = gets(emu)
    sizes = sum(p.endswith(("/vmsizes", "/microsoft.compute/skus")) for p in paths)
    tags = sum(p.endswith("/servicetags") for p in paths)
    return len(paths) - sizes - tags, len(size_reads(emu))


@pytest.mark.parametrize(
    "build",
    [
        {"nsg": "nic"},
        {"nsg": "subnet"},
        {"nsg": "both", "public_ip": True},
        {"nsg": None},
        {"nsg": "both", "nics": 3, "public_ip": True},
    ],
    ids=["nic", "subnet", "both+ip", "none", "3nics"],
)
async def test_read_budget(emu: ArmEmulator, session: AzureSession, build: dict[str, Any]) -> None:
    t = emu.add_windows_vm("vm1", **build)
    emu.requests.clear()
    facts = await read_vm_facts(session, t)
    nics = len(facts.nics)
    pips = sum(len(n.public_ips) for n in facts.nics)
    subnets = len({n.subnet_id.lower() for n in facts.nics if n.subnet_id})
    nsgs = len(facts.nsgs)
    reads, sizes = budget_reads(emu)
    assert reads <= 1 + nics + pips + subnets + nsgs
    assert sizes == 1
    # The VM GET carries the instance view (no separate instanceView read).
    vm_gets = [r for r in emu.requests if r.path.lower().endswith("/virtualmachines/vm1")]
    assert len(vm_gets) == 1
    assert vm_gets[0].query.get("$expand") == "instanceView"
    # A second read of the same VM reuses the cached size list.
    emu.requests.clear()
    await read_vm_facts(session, t)
    assert budget_reads(emu)[1] == 0


async def test_concurrent_readers_share_one_size_list_read(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}", nsg=None) for i in range(5)]
    targets.append(emu.add_windows_vm("far", location="eastus", nsg=None))
    emu.requests.clear()
    all_facts = await asyncio.gather(*(read_vm_facts(session, t) for t in targets))
    assert [f.memory_mib for f in all_facts] == [8192] * 6
    assert sorted(size_reads(emu)) == ["eastus", "westeurope"]


async def test_shared_nsg_is_read_once_when_read_concurrently(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(4)]
    emu.requests.clear()
    await asyncio.gather(*(read_vm_facts(session, t) for t in targets))
    nsg_reads = [p for p in gets(emu) if "/networksecuritygroups/" in p]
    vnet_reads = [p for p in gets(emu) if p.endswith("/virtualnetworks/vnet-westeurope")]
    # Four VMs in one subnet: the in-flight VNet and NSG reads are shared.
    assert len(nsg_reads) == 1
    assert len(vnet_reads) == 1


async def test_missing_vm(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    t = VmTarget.from_parts(DEFAULT_SUBSCRIPTION, "rg-wac", "nope")
    with pytest.raises(VmNotFoundError) as info:
        await read_vm_facts(session, t)
    assert isinstance(info.value, LookupError)
    assert "nope" in str(info.value)


async def test_missing_resource_group(emu: ArmEmulator, session: AzureSession) -> None:
    t = VmTarget.from_parts(DEFAULT_SUBSCRIPTION, "no-such-rg", "vm1")
    with pytest.raises(ResourceGroupNotFoundError) as info:
        await read_vm_facts(session, t)
    assert "no-such-rg" in str(info.value)
    assert isinstance(info.value, LookupError)


async def test_forbidden_vm_read(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1")
    emu.deny("Microsoft.Compute/virtualMachines/read")
    with pytest.raises(AuthorizationError) as info:
        await read_vm_facts(session, t)
    assert info.value.action == "Microsoft.Compute/virtualMachines/read"
    assert info.value.role == "Reader"
    assert "Microsoft.Compute/virtualMachines/read" in str(info.value)


async def test_forbidden_nsg_read(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1")
    emu.deny("Microsoft.Network/networkSecurityGroups/read")
    with pytest.raises(AuthorizationError) as info:
        await read_vm_facts(session, t)
    assert info.value.action == "Microsoft.Network/networkSecurityGroups/read"


async def test_string_target_is_parsed(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1")
    facts = await read_vm_facts(session, t.resource_id)
    assert facts.target == t


def _extension(
    t: VmTarget, name: str, publisher: str, settings: dict[str, Any], state: str = "Succeeded"
) -> dict[str, Any]:
    return {
        "id": f"{t.resource_id}/extensions/{name}",
        "name": name,
        "type": "Microsoft.Compute/virtualMachines/extensions",
        "location": "westeurope",
        "properties": {
            "publisher": publisher,
            "type": "AdminCenter",
            "typeHandlerVersion": "0.0",
            "autoUpgradeMinorVersion": True,
            "provisioningState": state,
            "settings": settings,
            "instanceView": {
                "name": name,
                "type": f"{publisher}.AdminCenter",
                "typeHandlerVersion": "0.31.0.0",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                    }
                ],
                "substatuses": [],
            },
        },
    }


async def test_extension_comes_from_the_vm_get(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1", os="windows-11")
    emu.seed(_extension(t, "AdminCenter", "Microsoft.AdminCenter", {"port": "6516", "salt": "abc"}))
    emu.requests.clear()
    facts = await read_vm_facts(session, t)
    assert not [p for p in gets(emu) if "/extensions/" in p]
    ext = facts.extension
    assert ext is not None
    assert (ext.port, ext.salt, ext.provisioning_state) == (6516, "abc", "Succeeded")
    assert ext.handler_version == "0.31.0.0"
    assert ext.statuses[0].display_status == "Provisioning succeeded"
    report = await RequirementChecker(session).check(t, facts=facts)
    # Windows 11 is fine once the running extension is 0.31.0.0 or newer.
    assert report.check("os.supported").status is CheckStatus.PASS
    assert report.check("extension.conflict").status is CheckStatus.PASS


async def test_another_admin_center_extension_is_a_conflict(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    emu.seed(_extension(t, "WAC", "Microsoft.AdminCenter", {"port": 443}))
    report = await RequirementChecker(session).check(t)
    assert report.facts is not None
    assert [e.name for e in report.facts.other_extensions] == ["WAC"]
    check = report.check("extension.conflict")
    assert check.status is CheckStatus.FAIL
    assert "WAC" in check.message


async def test_bastion_subnet_is_noticed(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("vm1")
    vnet = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        "/providers/Microsoft.Network/virtualNetworks/vnet-westeurope"
    )
    emu.seed(
        {
            "id": f"{vnet}/subnets/AzureBastionSubnet",
            "name": "AzureBastionSubnet",
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": {"addressPrefix": "10.0.250.0/26"},
        }
    )
    report = await RequirementChecker(session).check(t)
    assert report.check("connect.bastion").status is CheckStatus.WARN


async def test_missing_nic_is_noted_and_network_is_unknown(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    doc = emu.resource(t.resource_id)
    gone = doc["properties"]["networkProfile"]["networkInterfaces"][0]["id"] + "-gone"
    doc["properties"]["networkProfile"]["networkInterfaces"][0]["id"] = gone
    emu.seed(doc)
    report = await RequirementChecker(session).check(t)
    assert report.facts is not None
    assert report.facts.nics == ()
    assert any("vm1-nic-gone" in n for n in report.facts.notes)
    check = report.check("network.outbound_wac")
    assert check.status is CheckStatus.UNKNOWN
    assert "vm1-nic-gone" in check.message


# -- the real fixtures -------------------------------------------------------------------------


def fixture_vm(sub: str) -> dict[str, Any]:
    vm = body("compute.VirtualMachine_Get.json", **{"{subscription-id}": sub})
    vm.pop("managedBy", None)
    vm["properties"]["instanceView"] = body("compute.VirtualMachine_Get_InstanceView.json")
    return vm


async def test_fixture_vm_as_published(emu: ArmEmulator, session: AzureSession) -> None:
    """The published VM example references a NIC named "{myNIC}" that does not exist."""
    emu.seed(fixture_vm(DEFAULT_SUBSCRIPTION))
    t = VmTarget.from_parts(DEFAULT_SUBSCRIPTION, "myResourceGroup", "myVM")
    report = await RequirementChecker(session).check(t)
    facts = report.facts
    assert facts is not None
    assert facts.location == "westus"
    assert (facts.os.release, facts.os.build, facts.os.source) == ("2016", 14393, "instanceView")
    assert facts.memory_mib == 14336  # Standard_DS3_v2
    assert facts.agent_version == "2.7.41491.949"
    assert facts.extension is None
    statuses = {c.code: c.status.value for c in report.checks}
    assert statuses == {
        "os.supported": "pass",
        "memory.minimum": "pass",
        "cloud.public": "pass",
        "vm.running": "pass",
        "vm.agent_ready": "pass",
        "vm.recently_started": "pass",
        "network.outbound_wac": "unknown",
        "network.outbound_entra": "unknown",
        "network.source_family": "pass",
        "network.inbound_path": "unknown",
        "network.exposure": "unknown",
        "extension.conflict": "pass",
        "connect.bastion": "pass",
    }
    assert "{myNIC}" in report.check("network.outbound_wac").message
    assert not report.passed
    assert not report.failed


async def test_fixture_vm_with_its_network(emu: ArmEmulator, session: AzureSession) -> None:
    """The VM, NIC, public IP, NSG and VNet examples wired together by id."""
    sub = DEFAULT_SUBSCRIPTION
    nic_id = (
        f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Network"
        "/networkInterfaces/test-nic"
    )
    vm = fixture_vm(sub)
    vm["properties"]["networkProfile"]["networkInterfaces"] = [{"id": nic_id}]
    emu.seed(vm)
    emu.seed(
        body(
            "network.NetworkInterfaceGet.json",
            subid=sub,
            **{
                "networkSecurityGroups/nsg": "networkSecurityGroups/testnsg",
                "publicIPAddresses/test-ip": "publicIPAddresses/testDNS-ip",
            },
        )
    )
    emu.seed(body("network.PublicIpAddressGet.json", subid=sub))
    emu.seed(body("network.NetworkSecurityGroupGet.json", subid=sub))
    emu.seed(
        body(
            "network.VirtualNetworkGet.json",
            subid=sub,
            **{"test-vnet": "rg1-vnet", "subnet1": "default"},
        )
    )
    t = VmTarget.from_parts(sub, "myResourceGroup", "myVM")
    emu.requests.clear()
    facts = await read_vm_facts(session, t)
    reads, sizes = budget_reads(emu)
    assert (reads, sizes) == (5, 1)  # VM, NIC, public IP, VNet, NSG; one size list
    nic = facts.primary_nic
    assert nic is not None
    assert nic.private_ips == ("172.20.2.4", "172.20.2.16")
    assert nic.public_ips[0].name == "testDNS-ip"
    assert nic.public_ips[0].address is None  # Dynamic, unassigned in the example
    assert nic.subnet_nsg_id is None
    assert facts.vnet_prefixes == ("10.0.0.0/16",)
    nsg = facts.nsg(nic.nsg_id)
    assert nsg is not None
    assert [r.name for r in nsg.rules] == ["rule1"]

    private = await RequirementChecker(session).check(t, facts=facts)
    statuses = {c.code: c.status.value for c in private.checks}
    # Outbound: the default AllowInternetOutBound lets 443 out. rule1 opens port 80 only,
    # so 6516 is not open to the internet. The NIC's 172.20.2.4 lies outside the VNet
    # example's 10.0.0.0/16 (the examples were written separately), so AllowVnetInBound
    # does not cover it: only the default DenyAllInBound decides -> the plan adds a rule.
    assert statuses["network.outbound_wac"] == "pass"
    assert statuses["network.outbound_entra"] == "pass"
    assert statuses["network.exposure"] == "pass"
    assert statuses["network.inbound_path"] == "warn"
    public = await RequirementChecker(session).check(
        t, facts=facts, access=PublicAccess(["203.0.113.7"])
    )
    assert public.check("network.inbound_path").status is CheckStatus.WARN
    assert "DenyAllInBound" in public.check("network.inbound_path").message
