"""The other VM facts parsers: sizes, power state, agent, extensions, NICs, VNets, cloud."""

from __future__ import annotations

import datetime as dt
import json
import types
from typing import Any

import attrs
import pytest

from wac_azure import ExtensionFacts, VmFacts, VmTarget
from wac_azure._core.facts import (
    _vnet_prefixes,
    cloud_for,
    normalize_location,
    parse_agent,
    parse_extensions,
    parse_nic,
    parse_power_state,
    parse_public_ip,
    parse_vm_sizes,
    split_resource_id,
)

from tests._shared import ARM_FIXTURES

FIXTURES = ARM_FIXTURES
SUB = "00000000-0000-0000-0000-000000000001"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["responses"]["200"]["body"]


def test_sizes_from_the_real_fixture() -> None:
    sizes = parse_vm_sizes(fixture("compute.VirtualMachineSizes_List_MaximumSet_Gen.json"))
    assert sizes["standard_a1_v2"] == (2048, 1)
    assert sizes["standard_a2_v2"] == (4096, 2)


def test_sizes_skip_junk_entries() -> None:
    sizes = parse_vm_sizes(
        [{"name": "X", "memoryInMB": "3584"}, {"name": None}, 3, {"memoryInMB": 1}]
    )
    assert dict(sizes) == {"x": (3584, None)}


def test_power_state_and_start_time() -> None:
    doc = {
        "properties": {
            "instanceView": {
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "time": "2024-05-01T10:00:00.1234567+00:00",
                    },
                    {"code": "PowerState/running", "time": "2024-05-01T10:00:05Z"},
                ]
            }
        }
    }
    state, started = parse_power_state(doc)
    assert state == "running"
    assert started == dt.datetime(2024, 5, 1, 10, 0, 5, tzinfo=dt.UTC)


def test_start_time_falls_back_to_the_last_provisioning_time() -> None:
    iv = fixture("compute.VirtualMachine_Get_InstanceView.json")
    state, started = parse_power_state({"properties": {"instanceView": iv}})
    assert state == "running"
    assert started is not None
    assert started.year == 2019


def test_deallocated_has_no_start_time() -> None:
    doc = {"properties": {"instanceView": {"statuses": [{"code": "PowerState/deallocated"}]}}}
    assert parse_power_state(doc) == ("deallocated", None)


def test_agent_from_fixture() -> None:
    iv = fixture("compute.VirtualMachine_Get_InstanceView.json")
    assert parse_agent({"properties": {"instanceView": iv}}) == ("Ready", "2.7.41491.949")
    assert parse_agent({"properties": {}}) == (None, None)


def test_extensions_join_resources_and_instance_view() -> None:
    doc = {
        "resources": [
            {
                "name": "AdminCenter",
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "properties": {
                    "publisher": "Microsoft.AdminCenter",
                    "type": "AdminCenter",
                    "typeHandlerVersion": "0.0",
                    "autoUpgradeMinorVersion": True,
                    "provisioningState": "Succeeded",
                    "settings": {"port": 6516, "salt": "abc"},
                },
            }
        ],
        "properties": {
            "instanceView": {
                "extensions": [
                    {
                        "name": "AdminCenter",
                        "type": "Microsoft.AdminCenter.AdminCenter",
                        "typeHandlerVersion": "0.31.0.0",
                        "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"}],
                        "substatuses": [{"code": "ComponentStatus/x", "message": "m"}],
                    },
                    {"name": "Other", "type": "Contoso.Tools.Agent", "typeHandlerVersion": "1.2"},
                ]
            }
        },
    }
    exts = {e.name: e for e in parse_extensions(doc)}
    admin = exts["AdminCenter"]
    assert admin.is_admin_center
    assert (admin.port, admin.salt, admin.handler_version, admin.auto_upgrade) == (
        6516,
        "abc",
        "0.31.0.0",
        True,
    )
    assert admin.substatuses[0].message == "m"
    other = exts["Other"]
    assert (other.publisher, other.type) == ("Contoso.Tools", "Agent")


@pytest.mark.parametrize(
    ("port", "want"), [("6516", 6516), (443, 443), ("x", None), (0, None), (None, None)]
)
def test_extension_port_is_read_from_string_or_int(port: Any, want: int | None) -> None:
    doc = {"resources": [{"name": "AdminCenter", "properties": {"settings": {"port": port}}}]}
    assert parse_extensions(doc)[0].port == want


def test_extension_settings_are_read_only() -> None:
    ext = ExtensionFacts(name="AdminCenter", settings={"port": "6516"})
    with pytest.raises(TypeError):
        ext.settings["port"] = "1"  # type: ignore[index]


def test_nic_from_the_real_fixture() -> None:
    nic = parse_nic(fixture("network.NetworkInterfaceGet.json"), "fallback")
    assert nic.private_ips == ("172.20.2.4", "172.20.2.16")
    assert nic.public_ip_ids == (
        "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/test-ip",
    )
    assert nic.nsg_id is not None
    assert nic.nsg_id.endswith("/networkSecurityGroups/nsg")
    assert nic.subnet_id is not None
    assert nic.subnet_id.endswith("/subnets/default")
    assert nic.primary is True


def test_public_ip_from_the_real_fixture() -> None:
    pip = parse_public_ip(fixture("network.PublicIpAddressGet.json"), "x")
    assert (pip.name, pip.address, pip.sku, pip.version) == ("testDNS-ip", None, None, "IPv4")


def test_vnet_prefixes_include_connected_peerings() -> None:
    doc = fixture("network.VirtualNetworkGet.json")
    assert _vnet_prefixes(doc) == ["10.0.0.0/16"]
    doc["properties"]["virtualNetworkPeerings"] = [
        {
            "properties": {
                "peeringState": "Connected",
                "remoteAddressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
            }
        },
        {
            "properties": {
                "peeringState": "Disconnected",
                "remoteAddressSpace": {"addressPrefixes": ["10.8.0.0/16"]},
            }
        },
    ]
    assert _vnet_prefixes(doc) == ["10.0.0.0/16", "10.9.0.0/16"]


@pytest.mark.parametrize(
    ("location", "cloud"),
    [
        ("westeurope", "AzurePublicCloud"),
        ("West US", "AzurePublicCloud"),
        ("chinaeast2", "AzureChinaCloud"),
        ("China North 3", "AzureChinaCloud"),
        ("usgovvirginia", "AzureUSGovernment"),
        ("usdodcentral", "AzureUSGovernment"),
    ],
)
def test_cloud_from_region(location: str, cloud: str) -> None:
    from azure.core import AzureClouds

    assert cloud_for(location, AzureClouds.AZURE_PUBLIC_CLOUD) == cloud


def test_cloud_falls_back_to_the_session() -> None:
    from azure.core import AzureClouds

    assert cloud_for("", AzureClouds.AZURE_CHINA_CLOUD) == "AzureChinaCloud"
    assert cloud_for("westeurope", None) == "Unknown"


def test_location_and_id_helpers() -> None:
    assert normalize_location("West Europe") == "westeurope"
    assert normalize_location(None) == ""
    assert split_resource_id(
        "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/d"
    ) == (
        "s",
        "r",
        [("virtualNetworks", "v"), ("subnets", "d")],
    )
    assert split_resource_id("{myNIC}") is None


def test_vm_facts_is_frozen_and_keys_nsgs_case_insensitively() -> None:
    t = VmTarget.from_parts(SUB, "rg", "vm")
    facts = VmFacts(
        target=t, vm_resource_id=t.resource_id, location="westeurope", nsgs={"/A/NSG": "x"}
    )  # type: ignore[dict-item]
    assert facts.nsg("/a/nsg") == "x"
    assert facts.nsg(None) is None
    assert isinstance(facts.nsgs, types.MappingProxyType)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        facts.size = "x"  # type: ignore[misc]
    hash(facts)
