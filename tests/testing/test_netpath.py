"""A VM's outbound path as the emulator judges it (primary NIC, NSGs, service tags)."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator

from ._helpers import ADMIN_CENTER, RG, SUB, nsg_id

DENY_AZURE_CLOUD_OUT = {
    "name": "deny-azurecloud",
    "properties": {
        "protocol": "Tcp",
        "access": "Deny",
        "direction": "Outbound",
        "priority": 100,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "AzureCloud",
        "destinationPortRange": "443",
    },
}


async def test_deny_to_a_containing_service_tag_blocks_the_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    emu.add_rule(nsg_id("vm1-nsg"), DENY_AZURE_CLOUD_OUT)
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    verdict = emu.outbound_verdict(vm, "WindowsAdminCenter")
    assert (verdict.allowed, verdict.rule) == (False, "deny-azurecloud")
    poller = await session.compute(SUB).virtual_machine_extensions.begin_create_or_update(
        RG, "vm1", "AdminCenter", ADMIN_CENTER
    )
    with pytest.raises(HttpResponseError, match="VMExtensionProvisioningError"):
        await poller.result()


def test_deny_to_a_disjoint_service_tag_does_not_match(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1")
    deny_storage = json.loads(json.dumps(DENY_AZURE_CLOUD_OUT))
    deny_storage["properties"]["destinationAddressPrefix"] = "Storage"
    emu.add_rule(nsg_id("vm1-nsg"), deny_storage)
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is True
    assert emu.outbound_verdict(vm, "Storage").allowed is False


def test_outbound_verdict_uses_the_primary_nic(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1", nics=2)
    emu.add_rule(nsg_id("vm1-nsg"), DENY_AZURE_CLOUD_OUT)  # on vm1-nic only
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is False
    # make the second NIC (no NSG) the primary one, as ARM would after a swap
    refs = vm["properties"]["networkProfile"]["networkInterfaces"]
    refs[0]["properties"]["primary"], refs[1]["properties"]["primary"] = False, True
    for ref, primary in zip(refs, (False, True), strict=True):
        nic = emu.store.get(ref["id"])
        assert nic is not None
        nic["properties"]["primary"] = primary
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is True
