"""Fleet reads: legal per-VM reads and ARM's generic list of a group's VM extensions."""

from __future__ import annotations

from wac_azure import AzureSession
from wac_azure._azure.inventory import (
    EXTENSION_EXPAND,
    EXTENSION_FILTER,
    get_extension,
    get_vm,
    list_extensions,
)
from wac_azure._core.facts import EXTENSION_NAME
from wac_azure.testing import ArmEmulator


async def test_generic_list_shows_extensions_with_top_level_provisioning_state(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.add_windows_vm("vm2", nsg="nic")
    sub, rg = t.subscription_id, t.resource_group
    assert [d async for d in list_extensions(session, sub, rg)] == []
    body = {
        "location": "eastus",
        "properties": {
            "publisher": "Microsoft.AdminCenter",
            "type": "AdminCenter",
            "typeHandlerVersion": "0.0",
            "settings": {"port": "6516"},
        },
    }
    poller = await session.compute(sub).virtual_machine_extensions.begin_create_or_update(
        rg, "vm1", EXTENSION_NAME, body
    )
    await poller.result()
    items = [d async for d in list_extensions(session, sub, rg)]
    assert len(items) == 1
    item = items[0]
    # GenericResourceExpanded: provisioningState/changedTime at the top level, no properties
    assert item["id"].lower() == (t.resource_id + "/extensions/AdminCenter").lower()
    assert item["type"] == "Microsoft.Compute/virtualMachines/extensions"
    assert item["provisioningState"] == "Succeeded"
    assert "changedTime" in item
    assert "createdTime" not in item
    assert "properties" not in item
    # the SDK's own call reads the same answer
    listed = [
        r
        async for r in session.resources(sub).resources.list_by_resource_group(
            rg, filter=EXTENSION_FILTER, expand=EXTENSION_EXPAND
        )
    ]
    assert [r.provisioning_state for r in listed] == ["Succeeded"]
    ext = await get_extension(session, sub, rg, "vm1", EXTENSION_NAME)
    assert ext is not None
    assert ext["properties"]["instanceView"]["name"] == EXTENSION_NAME
    assert await get_extension(session, sub, rg, "vm2", EXTENSION_NAME) is None


async def test_get_vm_reads_its_instance_view_and_none_when_missing(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    doc = await get_vm(session, t.subscription_id, t.resource_group, "vm1")
    assert doc is not None
    assert doc["properties"]["instanceView"]["statuses"]
    assert await get_vm(session, t.subscription_id, t.resource_group, "nope") is None
    sent = [r for r in emu.requests if r.method == "GET"]
    assert all(r.query.get("$expand") == "instanceView" for r in sent)
    assert all("/virtualMachines/" in r.path for r in sent)
