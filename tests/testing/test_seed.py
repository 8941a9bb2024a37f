"""Every resource fixture in shared/fixtures/arm can be seeded and read back through the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "arm"
if not FIXTURES.is_dir():  # pragma: no cover - layout of a checkout without shared/
    FIXTURES = Path("/work/shared/fixtures/arm")

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="ARM fixtures not available")

#: fixture → the status whose body is a single resource
SINGLE = {
    "compute.VirtualMachine_Get.json": "200",
    "compute.VirtualMachine_Get_WithVMSizeProperties.json": "200",
    "compute.VirtualMachineExtension_Get_MaximumSet_Gen.json": "200",
    "compute.VirtualMachineExtension_CreateOrUpdate_MaximumSet_Gen.json": "200",
    "compute.VirtualMachineRunCommand_Get.json": "200",
    "compute.VirtualMachineRunCommand_CreateOrUpdate.json": "200",
    "network.NetworkInterfaceGet.json": "200",
    "network.NetworkSecurityGroupGet.json": "200",
    "network.NetworkSecurityGroupCreate.json": "200",
    "network.NetworkSecurityGroupCreateWithRule.json": "200",
    "network.NetworkSecurityGroupRuleGet.json": "200",
    "network.NetworkSecurityGroupRuleCreate.json": "200",
    "network.PublicIpAddressGet.json": "200",
    "network.SubnetGet.json": "200",
    "network.VirtualNetworkGet.json": "200",
}

#: fields never given back, as in Azure
SECRET = {"protectedSettings", "protectedParameters"}


def body(name: str, status: str = "200") -> dict[str, Any]:
    doc = json.loads((FIXTURES / name).read_text())
    result: dict[str, Any] = doc["responses"][status]["body"]
    return result


def parts(resource_id: str) -> list[str]:
    return [p for p in resource_id.split("/") if p]


def assert_subset(expected: Any, actual: Any, where: str = "$") -> None:
    """Everything in ``expected`` is in ``actual`` (dict keys recursively, lists item-wise)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            if key in SECRET:
                continue
            assert key in actual, f"{where}.{key} missing"
            assert_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: {len(actual)} != {len(expected)} items"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


async def read_back(session: AzureSession, doc: dict[str, Any]) -> Any:
    p = parts(doc["id"])
    sub, rg = p[1], p[3]
    rest = p[6:]
    compute, network = session.compute(sub), session.network(sub)
    kind = p[5].lower() + "/" + "/".join(rest[0::2]).lower()
    if kind == "virtualmachines/virtualmachines":  # pragma: no cover - guard
        raise AssertionError(kind)
    if kind == "microsoft.compute/virtualmachines":
        return await compute.virtual_machines.get(rg, rest[1], expand="instanceView")
    if kind == "microsoft.compute/virtualmachines/extensions":
        return await compute.virtual_machine_extensions.get(
            rg, rest[1], rest[3], expand="instanceView"
        )
    if kind == "microsoft.compute/virtualmachines/runcommands":
        return await compute.virtual_machine_run_commands.get_by_virtual_machine(
            rg, rest[1], rest[3], expand="instanceView"
        )
    if kind == "microsoft.network/networkinterfaces":
        return await network.network_interfaces.get(rg, rest[1])
    if kind == "microsoft.network/networksecuritygroups":
        return await network.network_security_groups.get(rg, rest[1])
    if kind == "microsoft.network/networksecuritygroups/securityrules":
        return await network.security_rules.get(rg, rest[1], rest[3])
    if kind == "microsoft.network/publicipaddresses":
        return await network.public_ip_addresses.get(rg, rest[1])
    if kind == "microsoft.network/virtualnetworks":
        return await network.virtual_networks.get(rg, rest[1])
    if kind == "microsoft.network/virtualnetworks/subnets":
        return await network.subnets.get(rg, rest[1], rest[3])
    raise AssertionError(f"no reader for {kind}")


@pytest.mark.parametrize("name", sorted(SINGLE))
async def test_fixture_round_trip(emu: ArmEmulator, session: AzureSession, name: str) -> None:
    doc = body(name, SINGLE[name])
    if name.startswith("compute.VirtualMachine") and "/virtualMachines/myVM/" in doc["id"]:
        emu.seed(body("compute.VirtualMachine_Get.json"))  # the parent VM, as in Azure
    emu.seed(doc)
    model = await read_back(session, doc)
    got = model.as_dict()
    if "resources" in doc:  # a VM's extensions come back as `resources`
        assert_subset(doc["resources"], got["resources"], "$.resources")
    expected = {k: v for k, v in doc.items() if k != "resources"}
    assert_subset(expected, got)
    stored = emu.resource(doc["id"])
    assert stored["name"] == doc["name"]


async def test_seeded_vm_fields_the_library_reads(emu: ArmEmulator, session: AzureSession) -> None:
    vm_doc = body("compute.VirtualMachine_Get.json")
    vm_doc["properties"]["instanceView"] = body("compute.VirtualMachine_Get_InstanceView.json")
    emu.seed(vm_doc)
    p = parts(vm_doc["id"])
    compute = session.compute(p[1])
    vm = await compute.virtual_machines.get(p[3], p[7], expand="instanceView")
    assert vm.storage_profile.image_reference.sku == "2016-Datacenter"
    assert vm.storage_profile.os_disk.os_type == "Windows"
    assert vm.hardware_profile.vm_size == "Standard_DS3_v2"
    assert vm.network_profile.network_interfaces[0].id.endswith("/networkInterfaces/{myNIC}")
    view = vm.instance_view
    assert view.os_name == "Windows Server 2016 Datacenter"
    assert view.vm_agent.vm_agent_version == "2.7.41491.949"
    assert [s.code for s in view.statuses][-1] == "PowerState/running"
    assert view.extensions[0].name == "IaaSAntiMalware-ext0"
    # the instance-view route gives the same seeded view
    alone = await compute.virtual_machines.instance_view(p[3], p[7])
    assert alone.os_version == "Microsoft Windows NT 10.0.14393.0"
    # an extension install on a seeded 2016 VM with 14 GiB and no NSG succeeds
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        p[3],
        p[7],
        "AdminCenter",
        {
            "location": "westus",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "settings": {"port": 6516},
            },
        },
    )
    ext = await poller.result()
    assert ext.provisioning_state == "Succeeded"


async def test_seeded_network_fields_the_library_reads(
    emu: ArmEmulator, session: AzureSession
) -> None:
    for name in (
        "network.NetworkInterfaceGet.json",
        "network.NetworkSecurityGroupGet.json",
        "network.PublicIpAddressGet.json",
        "network.VirtualNetworkGet.json",
    ):
        emu.seed(body(name))
    network = session.network("subid")
    nic = await network.network_interfaces.get("rg1", "test-nic")
    assert [c.private_ip_address for c in nic.ip_configurations] == ["172.20.2.4", "172.20.2.16/28"]
    assert nic.network_security_group.id.endswith("/networkSecurityGroups/nsg")
    nsg = await network.network_security_groups.get("rg1", "testnsg")
    assert [r.name for r in nsg.security_rules] == ["rule1"]
    assert len(nsg.default_security_rules) == 6
    pip = await network.public_ip_addresses.get("rg1", "testDNS-ip")
    assert pip.public_ip_address_version == "IPv4"
    vnet = await network.virtual_networks.get("rg1", "test-vnet")
    assert vnet.address_space.address_prefixes == ["10.0.0.0/16"]
    subnet = await network.subnets.get("rg1", "test-vnet", "subnet1")
    assert subnet.address_prefix == "10.0.1.0/24"
    # a seeded rule lands inside its NSG
    emu.seed(body("network.NetworkSecurityGroupRuleGet.json"))
    rule = body("network.NetworkSecurityGroupRuleGet.json")
    rp = parts(rule["id"])
    listed = [r.name async for r in network.security_rules.list(rp[3], rp[7])]
    assert rule["name"] in listed


async def test_seeded_bastion_hosts_are_listed(emu: ArmEmulator, session: AzureSession) -> None:
    hosts = body("network.BastionHostListBySubscription.json")["value"]
    for host in hosts:
        emu.seed(host)
    sub = parts(hosts[0]["id"])[1]
    names = [b.name async for b in session.network(sub).bastion_hosts.list()]
    assert names == [h["name"] for h in hosts]


def test_seed_rejects_documents_without_id() -> None:
    emu = ArmEmulator()
    with pytest.raises(ValueError, match="id"):
        emu.seed({"name": "x"})
    with pytest.raises(ValueError, match="resource-group-scoped"):
        emu.seed({"id": "/subscriptions/s/providers/Microsoft.Network/serviceTags/x"})
