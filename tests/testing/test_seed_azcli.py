"""``emu.seed`` accepts the Azure CLI's flattened JSON (``az vm show -d -o json``...)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import wac_azure
from wac_azure import CheckStatus, RequirementChecker, VmTarget
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.azcli import AZ_ONLY_KEYS, is_flattened, to_wire

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "arm"
if not FIXTURES.is_dir():  # pragma: no cover - layout of a checkout without shared/
    FIXTURES = Path("/work/shared/fixtures/arm")

SUB = "11111111-2222-3333-4444-555555555555"
NET = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Network"
NETWORK_CHECKS = (
    "network.outbound_wac",
    "network.outbound_entra",
    "network.inbound_path",
    "network.exposure",
)


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return doc


def az_flatten(value: Any) -> Any:
    """What the Azure CLI prints for a wire document: ``properties`` hoisted (recursively,
    ``type`` renamed ``typePropertiesType``), ``resourceGroup`` beside every ``id``."""
    if isinstance(value, list):
        return [az_flatten(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "properties" and isinstance(item, dict):
            for pkey, pitem in item.items():
                out["typePropertiesType" if pkey == "type" else pkey] = az_flatten(pitem)
        else:
            out[key] = az_flatten(item)
    if isinstance(out.get("id"), str):
        out["resourceGroup"] = out["id"].split("/")[4]
    return out


def walk(value: Any, path: str = "$") -> list[tuple[str, Any]]:
    """Every (path, value) pair in a JSON document."""
    found = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += walk(item, f"{path}[{i}]")
    return found


def seeded_vm(*names: str) -> tuple[ArmEmulator, VmTarget]:
    emu = ArmEmulator()
    vm = load("az_vm_show_d.json")
    emu.seed(vm)
    for name in names:
        emu.seed(load(name))
    return emu, VmTarget.parse(vm["id"])


NETWORK_DOCS = ("az_network_nic_show.json", "az_network_nsg_show.json", "az_network_vnet_show.json")


# -- the normalizer ------------------------------------------------------------------


def test_the_data_is_cli_shaped() -> None:
    """The hand-built documents really have the CLI's quirks (else the tests prove nothing)."""
    vm = load("az_vm_show_d.json")
    assert "properties" not in vm
    assert vm["hardwareProfile"]["vmSize"] == "Standard_D4s_v5"
    assert {"resourceGroup", "powerState", "publicIps", "privateIps", "fqdns"} <= set(vm)
    assert vm["userData"] is None
    assert vm["storageProfile"]["imageReference"]["id"] is None
    assert vm["resources"][0]["typePropertiesType"] == "AzureMonitorWindowsAgent"
    assert vm["networkProfile"]["networkInterfaces"][0]["primary"] is True
    nsg = load("az_network_nsg_show.json")
    assert nsg["securityRules"][0]["destinationPortRange"] == "3389"
    assert all(is_flattened(load(n)) for n in ("az_vm_show_d.json", *NETWORK_DOCS))


def test_vm_is_normalized_to_wire_shape() -> None:
    wire = to_wire(load("az_vm_show_d.json"))
    envelope = {"id", "name", "type", "location", "tags", "resources", "properties"}
    assert set(wire) == envelope
    props = wire["properties"]
    assert props["hardwareProfile"] == {"vmSize": "Standard_D4s_v5"}
    # flat in the wire format too: not wrapped in "properties"
    ref = props["storageProfile"]["imageReference"]
    assert ref["sku"] == "2022-datacenter-azure-edition-hotpatch"
    assert "properties" not in ref
    disk = props["storageProfile"]["osDisk"]["managedDisk"]
    assert disk["storageAccountType"] == "Premium_LRS"
    assert "properties" not in disk
    assert "resourceGroup" not in disk
    nic_ref = props["networkProfile"]["networkInterfaces"][0]
    assert set(nic_ref) == {"id", "properties"}
    assert nic_ref["properties"] == {"primary": True, "deleteOption": "Detach"}
    assert props["instanceView"]["osName"] == "Windows Server 2022 Datacenter Azure Edition"
    assert props["vmId"] == "3f0e6b3a-9c1d-4f7b-8a2e-5d4c3b2a1f0e"
    (ext,) = wire["resources"]
    assert ext["properties"]["type"] == "AzureMonitorWindowsAgent"
    assert ext["type"] == "Microsoft.Compute/virtualMachines/extensions"
    assert "typePropertiesType" not in ext["properties"]
    for path, value in walk(wire):
        assert value is not None, f"{path} is null"
        if isinstance(value, dict):
            assert not (AZ_ONLY_KEYS & set(value)), f"{path} keeps a CLI-only key"


@pytest.mark.parametrize(
    ("name", "collection"),
    [
        ("az_network_nic_show.json", "ipConfigurations"),
        ("az_network_nsg_show.json", "securityRules"),
        ("az_network_nsg_show.json", "defaultSecurityRules"),
        ("az_network_vnet_show.json", "subnets"),
    ],
)
def test_sub_resources_are_wrapped(name: str, collection: str) -> None:
    flat = load(name)
    wire = to_wire(flat)
    items = wire["properties"][collection]
    assert len(items) == len(flat[collection]) > 0
    for before, after in zip(flat[collection], items, strict=True):
        assert after["id"] == before["id"]
        assert after["name"] == before["name"]
        assert set(after) <= {"id", "name", "type", "etag", "properties"}
        moved = {k for k, v in before.items() if v is not None} - {
            "id",
            "name",
            "type",
            "etag",
            "resourceGroup",
        }
        assert set(after["properties"]) == moved


def test_wire_documents_are_untouched() -> None:
    emu = ArmEmulator()
    emu.add_windows_vm("vm1", public_ip=True, nsg="both")
    docs = list(emu.store)
    assert docs
    for doc in docs:
        snapshot = copy.deepcopy(doc)
        assert to_wire(doc) is doc
        assert doc == snapshot
    minimal = {"id": "/subscriptions/x/resourceGroups/rg", "name": "rg", "location": "westus"}
    assert to_wire(minimal) is minimal


def test_builder_resources_survive_a_cli_round_trip() -> None:
    emu = ArmEmulator()
    emu.add_windows_vm("vm1", public_ip=True, nsg="both", nics=2)
    docs = list(emu.store)
    assert {d["type"].lower() for d in docs} >= {
        "microsoft.compute/virtualmachines",
        "microsoft.network/networkinterfaces",
        "microsoft.network/networksecuritygroups",
        "microsoft.network/virtualnetworks",
        "microsoft.network/publicipaddresses",
    }
    for doc in docs:
        flat = az_flatten(doc)
        assert is_flattened(flat)
        assert to_wire(flat) == doc, doc["id"]


def _fixture_bodies() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        for status, answer in (json.loads(path.read_text()).get("responses") or {}).items():
            body = answer.get("body") if isinstance(answer, dict) else None
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                continue
            if isinstance(body.get("properties"), dict):
                out.append((f"{path.name}:{status}", body))
    return out


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="ARM fixtures not available")
def test_fixtures_survive_a_cli_round_trip() -> None:
    bodies = _fixture_bodies()
    assert len(bodies) >= 10
    for where, body in bodies:
        assert to_wire(az_flatten(body)) == body, where


# -- through the real SDK -------------------------------------------------------------


async def test_az_vm_show_d_reads_back_through_the_sdk() -> None:
    emu, target = seeded_vm()
    async with emu.session() as session:
        compute = session.compute(SUB)
        vm = await compute.virtual_machines.get("rg-prod", "app01", expand="instanceView")
        assert vm.hardware_profile.vm_size == "Standard_D4s_v5"
        ref = vm.storage_profile.image_reference
        assert (ref.publisher, ref.offer, ref.sku, ref.exact_version) == (
            "MicrosoftWindowsServer",
            "WindowsServer",
            "2022-datacenter-azure-edition-hotpatch",
            "20348.2582.240703",
        )
        os_disk = vm.storage_profile.os_disk
        # the CLI prints "diskSizeGb", "provisionVmAgent"...; the wire names are back
        assert os_disk.os_type == "Windows"
        assert os_disk.disk_size_gb == 127
        windows = vm.os_profile.windows_configuration
        assert windows.provision_vm_agent is True
        assert windows.enable_vm_agent_platform_updates is False
        assert os_disk.managed_disk.storage_account_type == "Premium_LRS"
        assert os_disk.managed_disk.id.endswith(
            "/disks/app01_OsDisk_1_6c1b2f0e8a4d4c7e9f3a2b1c0d9e8f7a"
        )
        (nic,) = vm.network_profile.network_interfaces
        assert nic.primary is True
        assert nic.delete_option == "Detach"
        assert nic.id.endswith("/networkInterfaces/app01-nic")
        assert vm.os_profile.computer_name == "app01"
        assert vm.os_profile.admin_username == "azureadmin"
        assert vm.os_profile.windows_configuration.patch_settings.patch_mode == (
            "AutomaticByPlatform"
        )
        assert vm.security_profile.uefi_settings.secure_boot_enabled is True
        assert vm.license_type == "Windows_Server"
        assert vm.tags == {"env": "prod"}
        assert vm.instance_view.os_name == "Windows Server 2022 Datacenter Azure Edition"
        assert vm.instance_view.vm_agent.vm_agent_version == "2.7.41491.1141"
        assert "PowerState/running" in [s.code for s in vm.instance_view.statuses]
        ext = await compute.virtual_machine_extensions.get(
            "rg-prod", "app01", "AzureMonitorWindowsAgent"
        )
        assert (ext.publisher, ext.properties.type) == (
            "Microsoft.Azure.Monitor",
            "AzureMonitorWindowsAgent",
        )
    stored = emu.resource(target.resource_id)
    assert "resourceGroup" not in stored
    assert "powerState" not in stored
    assert "userData" not in stored["properties"]


async def test_requirements_without_the_nic_leave_network_checks_unknown() -> None:
    emu, target = seeded_vm()
    async with emu.session() as session:
        report = await RequirementChecker(session).check(target)
    assert not report.passed
    for code in NETWORK_CHECKS:
        check = report.check(code)
        assert check.status is CheckStatus.UNKNOWN, check
        assert "app01-nic" in check.message
    unknown = {c.code for c in report.checks if c.status is CheckStatus.UNKNOWN}
    assert unknown == set(NETWORK_CHECKS)
    assert report.check("os.supported").status is CheckStatus.PASS
    assert report.check("memory.minimum").status is CheckStatus.PASS
    assert report.check("vm.running").status is CheckStatus.PASS
    assert "2022" in report.check("os.supported").message


async def test_requirements_with_the_cli_network_documents_pass() -> None:
    emu, target = seeded_vm(*NETWORK_DOCS)
    async with emu.session() as session:
        report = await RequirementChecker(session).check(target)
        nsg = await session.network(SUB).network_security_groups.get("rg-prod", "app01-nsg")
        nic = await session.network(SUB).network_interfaces.get("rg-prod", "app01-nic")
        subnet = await session.network(SUB).subnets.get("rg-prod", "vnet-prod", "app")
    assert report.passed, str(report)
    assert "10.1.0.4" in report.check("network.outbound_wac").message
    (rule,) = nsg.security_rules
    assert (rule.name, rule.priority, rule.destination_port_range) == (
        "AllowRdpFromOffice",
        300,
        "3389",
    )
    assert len(nsg.default_security_rules) == 6
    assert nic.ip_configurations[0].private_ip_address == "10.1.0.4"
    assert nic.ip_configurations[0].subnet.id == subnet.id
    assert nic.network_security_group.id == nsg.id
    assert subnet.address_prefix == "10.1.0.0/24"


async def test_older_cli_names_of_a_nic_are_understood() -> None:
    """Before ``az network`` moved to AAZ it printed SDK names: ``privateIpAddress``..."""
    old_names = {
        "privateIPAddress": "privateIpAddress",
        "privateIPAllocationMethod": "privateIpAllocationMethod",
        "privateIPAddressVersion": "privateIpAddressVersion",
        "enableIPForwarding": "enableIpForwarding",
    }

    def rename(value: Any) -> Any:
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {old_names.get(k, k): rename(v) for k, v in value.items()}
        return value

    nic = rename(load("az_network_nic_show.json"))
    assert "privateIpAddress" in nic["ipConfigurations"][0]
    emu, target = seeded_vm("az_network_nsg_show.json", "az_network_vnet_show.json")
    emu.seed(nic)
    stored = emu.resource(nic["id"])["properties"]
    assert stored["enableIPForwarding"] is False
    assert stored["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.4"
    async with emu.session() as session:
        got = await session.network(SUB).network_interfaces.get("rg-prod", "app01-nic")
        report = await RequirementChecker(session).check(target)
    assert got.ip_configurations[0].private_ip_address == "10.1.0.4"
    assert got.ip_configurations[0].private_ip_allocation_method == "Dynamic"
    assert report.passed, str(report)


async def test_a_cli_rule_in_the_seeded_nsg_is_judged() -> None:
    nsg = load("az_network_nsg_show.json")
    deny = copy.deepcopy(nsg["securityRules"][0])
    deny.update(
        name="DenyWacOut",
        id=deny["id"].replace("AllowRdpFromOffice", "DenyWacOut"),
        access="Deny",
        direction="Outbound",
        priority=100,
        sourceAddressPrefix="*",
        destinationAddressPrefix="WindowsAdminCenter",
        destinationPortRange="443",
    )
    nsg["securityRules"].append(deny)
    emu = ArmEmulator()
    emu.seed(load("az_vm_show_d.json"))
    for doc in (load("az_network_nic_show.json"), nsg, load("az_network_vnet_show.json")):
        emu.seed(doc)
    target = VmTarget.parse(load("az_vm_show_d.json")["id"])
    async with emu.session() as session:
        report = await RequirementChecker(session).check(target)
    check = report.check("network.outbound_wac")
    assert check.status is CheckStatus.FAIL
    assert "DenyWacOut" in check.message
    assert report.check("network.outbound_entra").status is CheckStatus.PASS


async def test_power_state_of_az_vm_show_d_without_instance_view() -> None:
    doc = load("az_vm_show_d.json")
    doc["instanceView"] = None
    doc["powerState"] = "VM deallocated"
    emu = ArmEmulator()
    emu.seed(doc)
    async with emu.session() as session:
        vm = await session.compute(SUB).virtual_machines.get(
            "rg-prod", "app01", expand="instanceView"
        )
    assert "PowerState/deallocated" in [s.code for s in vm.instance_view.statuses]
    assert emu.vm_runtime(doc["id"]).power_state == "deallocated"


async def test_az_vm_show_without_d_and_get_instance_view() -> None:
    """``az vm show`` (no ``-d``): no CLI-only VM keys, ``instanceView`` null."""
    doc = load("az_vm_show_d.json")
    view = doc["instanceView"]
    for key in ("powerState", "publicIps", "privateIps", "fqdns", "macAddresses"):
        del doc[key]
    doc["instanceView"] = None
    emu = ArmEmulator()
    emu.seed(doc)
    assert emu.resource(doc["id"])["properties"]["hardwareProfile"]["vmSize"] == "Standard_D4s_v5"
    # ``az vm get-instance-view`` prints the same with the instance view filled in
    view["statuses"][1] = {
        "code": "PowerState/stopped",
        "displayStatus": "VM stopped",
        "level": "Info",
    }
    doc["instanceView"] = view
    emu.seed(doc)
    assert emu.vm_runtime(doc["id"]).power_state == "stopped"


async def test_az_vm_extension_show_and_public_ip_show() -> None:
    vm = load("az_vm_show_d.json")
    ext = {
        "autoUpgradeMinorVersion": True,
        "enableAutomaticUpgrade": None,
        "forceUpdateTag": None,
        "id": vm["id"] + "/extensions/AdminCenter",
        "instanceView": None,
        "location": "westeurope",
        "name": "AdminCenter",
        "protectedSettings": None,
        "protectedSettingsFromKeyVault": None,
        "provisionAfterExtensions": None,
        "provisioningState": "Succeeded",
        "publisher": "Microsoft.AdminCenter",
        "resourceGroup": "rg-prod",
        "settings": {"port": "6516", "salt": "abc123"},
        "suppressFailures": None,
        "tags": None,
        "type": "Microsoft.Compute/virtualMachines/extensions",
        "typeHandlerVersion": "0.0",
        "typePropertiesType": "AdminCenter",
    }
    pip = {
        "ddosSettings": None,
        "dnsSettings": None,
        "etag": 'W/"11111111-0000-4000-8000-000000000000"',
        "id": f"{NET}/publicIPAddresses/app01-ip",
        "idleTimeoutInMinutes": 4,
        "ipAddress": "20.50.60.70",
        "ipConfiguration": {
            "id": f"{NET}/networkInterfaces/app01-nic/ipConfigurations/ipconfig1",
            "resourceGroup": "rg-prod",
        },
        "ipTags": [],
        "location": "westeurope",
        "name": "app01-ip",
        "provisioningState": "Succeeded",
        "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": "Static",
        "resourceGroup": "rg-prod",
        "resourceGuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": {},
        "type": "Microsoft.Network/publicIPAddresses",
        "zones": ["1", "2", "3"],
    }
    emu = ArmEmulator()
    emu.seed(vm)
    emu.seed(ext)
    emu.seed(pip)
    stored = emu.resource(pip["id"])
    assert stored["sku"] == {"name": "Standard", "tier": "Regional"}
    assert stored["zones"] == ["1", "2", "3"]
    assert stored["properties"]["ipAddress"] == "20.50.60.70"
    async with emu.session() as session:
        got = await session.compute(SUB).virtual_machine_extensions.get(
            "rg-prod", "app01", "AdminCenter"
        )
        ip = await session.network(SUB).public_ip_addresses.get("rg-prod", "app01-ip")
        facts = await wac_azure.read_vm_facts(session, VmTarget.parse(vm["id"]))
    assert got.properties.type == "AdminCenter"
    assert got.settings == {"port": "6516", "salt": "abc123"}
    assert ip.ip_address == "20.50.60.70"
    assert ip.sku.name == "Standard"
    assert ip.ip_configuration.id.endswith("/ipConfigurations/ipconfig1")
    assert facts.extension is not None
    assert facts.extension.port == 6516


async def test_az_subnet_show_and_nsg_rule_show() -> None:
    emu = ArmEmulator()
    for name in NETWORK_DOCS:
        emu.seed(load(name))
    subnet = load("az_network_vnet_show.json")["subnets"][0]
    subnet["networkSecurityGroup"] = {
        "id": f"{NET}/networkSecurityGroups/app01-nsg",
        "resourceGroup": "rg-prod",
    }
    emu.seed(subnet)  # `az network vnet subnet show`
    rule = copy.deepcopy(load("az_network_nsg_show.json")["securityRules"][0])
    rule.update(priority=310, destinationPortRange="6516", description=None)
    emu.seed(rule)  # `az network nsg rule show`
    async with emu.session() as session:
        network = session.network(SUB)
        got = await network.subnets.get("rg-prod", "vnet-prod", "app")
        got_rule = await network.security_rules.get("rg-prod", "app01-nsg", "AllowRdpFromOffice")
        vnet = await network.virtual_networks.get("rg-prod", "vnet-prod")
    assert got.network_security_group.id.endswith("/app01-nsg")
    assert [s.name for s in vnet.subnets] == ["app"]
    assert (got_rule.priority, got_rule.destination_port_range) == (310, "6516")
    assert got_rule.description is None
