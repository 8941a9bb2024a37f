"""The emulator's Compute routes, through the real aio SDK clients."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from wac_azure import AzureSession, VmTarget
from wac_azure.testing import ArmEmulator

from ._helpers import ADMIN_CENTER, RG, SUB

MARKER_PORT = "# wac-azure-guest-script: port v2"
MARKER_DIAG = "# wac-azure-guest-script: diagnose v2"


def _ext_body(port: str = "6516", **props: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "publisher": "Microsoft.AdminCenter",
        "type": "AdminCenter",
        "typeHandlerVersion": "0.0",
        "autoUpgradeMinorVersion": True,
        "settings": {"port": port, "salt": "salt-1"},
        "protectedSettings": {"secret": "do-not-echo"},
    }
    properties.update(props)
    return {"location": "westeurope", "properties": properties}


async def _install(session: AzureSession, target: VmTarget, **kw: Any) -> Any:
    compute = session.compute(target.subscription_id)
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        target.resource_group, target.name, "AdminCenter", _ext_body(**kw)
    )
    return await poller.result()


async def _run(session: AzureSession, target: VmTarget, lines: list[str], **params: str) -> Any:
    compute = session.compute(target.subscription_id)
    body = {
        "commandId": "RunPowerShellScript",
        "script": lines,
        "parameters": [{"name": k, "value": v} for k, v in params.items()],
    }
    poller = await compute.virtual_machines.begin_run_command(
        target.resource_group, target.name, body
    )
    return await poller.result()


def _stdout(result: Any) -> str:
    values = result.as_dict()["value"]
    return str(next(v["message"] for v in values if "StdOut" in v["code"]))


def _stderr(result: Any) -> str:
    values = result.as_dict()["value"]
    return str(next(v["message"] for v in values if "StdErr" in v["code"]))


# -- VMs ---------------------------------------------------------------------------------


async def test_vm_get_reads_profiles_and_instance_view(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1", os="2019", size="Standard_DS1_v2")
    compute = session.compute(target.subscription_id)
    vm = await compute.virtual_machines.get(target.resource_group, "vm1")
    assert vm.hardware_profile.vm_size == "Standard_DS1_v2"
    assert vm.storage_profile.image_reference.sku == "2019-Datacenter-gensecond"
    assert vm.storage_profile.os_disk.os_type == "Windows"
    assert vm.network_profile.network_interfaces[0].id.endswith("/networkInterfaces/vm1-nic")
    assert vm.instance_view is None

    vm = await compute.virtual_machines.get(target.resource_group, "vm1", expand="instanceView")
    view = vm.instance_view
    assert view.os_name == "Windows Server 2019 Datacenter"
    assert "17763" in view.os_version
    codes = [s.code for s in view.statuses]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]
    assert view.statuses[0].time is not None
    assert view.statuses[1].time is None  # PowerState/* has no time in Azure (AZURE_FACTS §6)
    assert view.vm_agent.statuses[0].display_status == "Ready"


async def test_instance_view_route_and_deallocated_vm(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1", power_state="deallocated")
    compute = session.compute(target.subscription_id)
    view = await compute.virtual_machines.instance_view(target.resource_group, "vm1")
    assert [s.code for s in view.statuses][1] == "PowerState/deallocated"
    assert view.vm_agent is None
    assert view.os_name is None


async def test_set_power_state_sets_started_time(emu: ArmEmulator, session: AzureSession) -> None:
    import datetime as dt

    target = emu.add_windows_vm("vm1")
    started = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    emu.set_power_state(target, "running", started_at=started)
    compute = session.compute(target.subscription_id)
    view = await compute.virtual_machines.instance_view(target.resource_group, "vm1")
    power = next(s for s in view.statuses if s.code.startswith("PowerState/"))
    assert power.time is None  # Azure: PowerState/* has no time (AZURE_FACTS §6)
    prov = next(s for s in view.statuses if s.code.startswith("ProvisioningState/"))
    assert prov.time == started  # the last (start) operation's time


async def test_missing_vm_and_resource_group(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    with pytest.raises(ResourceNotFoundError) as info:
        await compute.virtual_machines.get(target.resource_group, "nope")
    assert info.value.error.code == "ResourceNotFound"
    assert "Microsoft.Compute/virtualMachines/nope" in info.value.error.message
    assert f"resource group '{target.resource_group}'" in info.value.error.message
    with pytest.raises(ResourceNotFoundError) as info:
        await compute.virtual_machines.get("no-such-rg", "vm1")
    assert info.value.error.code == "ResourceGroupNotFound"


async def test_list_vms_pages_with_next_link() -> None:
    emu = ArmEmulator(page_size=3)
    for i in range(7):
        emu.add_windows_vm(f"vm{i}")
    async with emu.session() as session:
        compute = session.compute(emu_sub())
        names = [vm.name async for vm in compute.virtual_machines.list("rg-wac")]
        assert names == [f"vm{i}" for i in range(7)]
        lists = [r for r in emu.requests if r.path.endswith("/virtualMachines")]
        assert len(lists) == 3
        assert lists[1].query.get("$skiptoken") == "3"
        everywhere = [vm.name async for vm in compute.virtual_machines.list_all()]
        assert sorted(everywhere) == sorted(names)


def emu_sub() -> str:
    from wac_azure.testing import DEFAULT_SUBSCRIPTION

    return DEFAULT_SUBSCRIPTION


async def test_list_vms_with_instance_view_and_status_only(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2", power_state="deallocated")
    compute = session.compute(emu_sub())
    # Azure refuses $expand=instanceView on a list without a valid $filter (AZURE_FACTS §7)
    with pytest.raises(HttpResponseError) as info:
        [vm async for vm in compute.virtual_machines.list("rg-wac", expand="instanceView")]
    assert info.value.status_code == 400
    vms = [vm async for vm in compute.virtual_machines.list_all(status_only="true")]
    states = {vm.name: vm.instance_view.statuses[1].code for vm in vms}
    assert states == {"vm1": "PowerState/running", "vm2": "PowerState/deallocated"}


async def test_vm_sizes_per_location(emu: ArmEmulator, session: AzureSession) -> None:
    compute = session.compute(emu_sub())
    sizes = {s.name: s.memory_in_mb async for s in compute.virtual_machine_sizes.list("westeurope")}
    assert sizes["Standard_B1ms"] == 2048
    assert sizes["Standard_DS1_v2"] == 3584
    assert sizes["Standard_D2s_v3"] == 8192


async def test_power_actions_change_the_instance_view(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    await (await compute.virtual_machines.begin_deallocate("rg-wac", "vm1")).result()
    assert emu.vm_runtime(target).power_state == "deallocated"
    await (await compute.virtual_machines.begin_start("rg-wac", "vm1")).result()
    assert emu.vm_runtime(target).power_state == "running"


async def test_request_without_token_is_401(emu: ArmEmulator) -> None:
    from wac_azure.testing import StaticTokenCredential

    target = emu.add_windows_vm("vm1")
    async with AzureSession(
        StaticTokenCredential("wrong-token"),
        base_url="https://arm.emulator.localhost",
        transport=emu.transport(),
    ) as bad:
        with pytest.raises(HttpResponseError) as info:
            await bad.compute(target.subscription_id).virtual_machines.get("rg-wac", "vm1")
    assert info.value.status_code == 401
    assert info.value.error.code == "AuthenticationFailed"
    assert emu.requests[-1].status == 401


async def test_deny_gives_arm_authorization_failed(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.deny("Microsoft.Compute/virtualMachines/extensions/write")
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target)
    assert info.value.status_code == 403
    assert info.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Compute/virtualMachines/extensions/write'" in info.value.error.message
    assert "/virtualMachines/vm1/extensions/AdminCenter'" in info.value.error.message
    # reads are still allowed
    vm = await session.compute(target.subscription_id).virtual_machines.get("rg-wac", "vm1")
    assert vm.name == "vm1"


# -- extensions --------------------------------------------------------------------------


async def test_admin_center_install_succeeds_and_updates_guest(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    ext = await _install(session, target, port="7000")
    assert ext.provisioning_state == "Succeeded"
    assert ext.type_handler_version == "0.0"
    assert "protectedSettings" not in json.dumps(ext.as_dict())
    compute = session.compute(target.subscription_id)
    got = await compute.virtual_machine_extensions.get(
        "rg-wac", "vm1", "AdminCenter", expand="instanceView"
    )
    assert got.settings == {"port": "7000", "salt": "salt-1"}
    view = got.instance_view
    assert view.type_handler_version == "0.31.0.0"
    assert view.statuses[0].code == "ProvisioningState/succeeded"
    plain = await compute.virtual_machine_extensions.get("rg-wac", "vm1", "AdminCenter")
    assert plain.instance_view is None
    guest = emu.guest(target)  # the modernized gateway (extension 0.24.0.0 and later)
    assert guest.port == "7000"
    assert guest.appsettings_url == "https://*:7000"
    assert guest.sme_port is None
    assert guest.services["WindowsAdminCenter"] == "Running"
    assert guest.firewall_rules["WacInboundOpenException"].profiles == {
        "Domain",
        "Private",
        "Public",
    }
    listed = await compute.virtual_machine_extensions.list("rg-wac", "vm1")
    assert [e.name for e in listed.value] == ["AdminCenter"]
    vm = await compute.virtual_machines.get("rg-wac", "vm1")
    assert [r.name for r in vm.resources] == ["AdminCenter"]
    vm = await compute.virtual_machines.get("rg-wac", "vm1", expand="instanceView")
    assert vm.instance_view.extensions[0].name == "AdminCenter"


async def test_put_response_is_non_terminal_with_async_header(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        "rg-wac", "vm1", "AdminCenter", _ext_body()
    )
    assert (
        emu.resource(f"{target.resource_id}/extensions/AdminCenter")["properties"][
            "provisioningState"
        ]
        == "Creating"
    )
    put = next(r for r in emu.requests if r.method == "PUT")
    assert put.status == 201
    await poller.result()
    assert any(r.is_poll for r in emu.requests)
    # a second PUT updates: 200 and Updating
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        "rg-wac", "vm1", "AdminCenter", _ext_body(port="6600")
    )
    assert [r.status for r in emu.requests if r.method == "PUT"] == [201, 200]
    await poller.result()
    assert emu.guest(target).port == "6600"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"os": "2012-R2"}, "Windows Server 2016 or later"),
        ({"os": "ubuntu-22.04"}, "Windows only"),
        ({"size": "Standard_B1ms"}, "2048 MiB"),
    ],
)
async def test_admin_center_install_fails_on_unsupported_vm(
    emu: ArmEmulator, session: AzureSession, kwargs: dict[str, Any], words: str
) -> None:
    target = emu.add_windows_vm("vm1", **kwargs)
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target)
    assert info.value.error.code == "VMExtensionProvisioningError"
    assert words in info.value.error.message
    ext = emu.resource(f"{target.resource_id}/extensions/AdminCenter")
    assert ext["properties"]["provisioningState"] == "Failed"
    subs = ext["properties"]["instanceView"]["substatuses"]
    assert any(words in s["message"] and s["level"] == "Error" for s in subs)
    assert emu.guest(target).sme_port is None


@pytest.mark.parametrize("where", ["nic", "subnet"])
async def test_admin_center_install_fails_when_nsg_blocks_outbound(
    emu: ArmEmulator, session: AzureSession, where: str
) -> None:
    target = emu.add_windows_vm("vm1", nsg="both")
    nsg_name = "vm1-nsg" if where == "nic" else "vnet-westeurope-default-nsg"
    nsg_id = (
        f"/subscriptions/{target.subscription_id}/resourceGroups/rg-wac/providers/"
        f"Microsoft.Network/networkSecurityGroups/{nsg_name}"
    )
    emu.add_rule(
        nsg_id,
        {
            "name": "deny-https-out",
            "properties": {
                "protocol": "Tcp",
                "access": "Deny",
                "direction": "Outbound",
                "priority": 300,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "443",
            },
        },
    )
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target)
    assert "WindowsAdminCenter" in info.value.error.message
    assert "deny-https-out" in info.value.error.message
    # an allow for the service tag at a lower number makes it work
    emu.add_rule(
        nsg_id,
        {
            "name": "PortForWACService",
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Outbound",
                "priority": 100,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "WindowsAdminCenter",
                "destinationPortRange": "443",
            },
        },
    )
    ext = await _install(session, target)
    assert ext.provisioning_state == "Succeeded"


async def test_admin_center_install_fails_when_guest_blocks_outbound(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    emu.guest(target).outbound_blocked = True
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target)
    assert "blocked inside the VM" in info.value.error.message


async def test_extension_put_on_deallocated_vm_is_409(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1", power_state="deallocated")
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target)
    assert info.value.status_code == 409
    assert info.value.error.code == "OperationNotAllowed"
    assert "in progress" not in info.value.error.message
    assert not [r for r in emu.requests if r.is_poll]


async def test_changing_extension_type_is_400(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await _install(session, target)
    with pytest.raises(HttpResponseError) as info:
        await _install(session, target, publisher="Microsoft.Compute")
    assert info.value.status_code == 400
    assert info.value.error.code == "PropertyChangeNotAllowed"


async def test_extension_delete_is_lro_and_uninstalls(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    await _install(session, target)
    compute = session.compute(target.subscription_id)
    await (
        await compute.virtual_machine_extensions.begin_delete("rg-wac", "vm1", "AdminCenter")
    ).result()
    delete = next(r for r in emu.requests if r.method == "DELETE")
    assert delete.status == 202
    with pytest.raises(ResourceNotFoundError):
        await compute.virtual_machine_extensions.get("rg-wac", "vm1", "AdminCenter")
    assert emu.guest(target).sme_port is None
    assert "ServerManagementGateway" not in emu.guest(target).services
    # deleting again is a no-op (204)
    await (
        await compute.virtual_machine_extensions.begin_delete("rg-wac", "vm1", "AdminCenter")
    ).result()
    assert [r.status for r in emu.requests if r.method == "DELETE"] == [202, 204]


async def test_other_extension_installs(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    body = {
        "location": "westeurope",
        "properties": {
            "publisher": "Microsoft.Compute",
            "type": "CustomScriptExtension",
            "typeHandlerVersion": "1.10",
            "settings": {},
        },
    }
    ext = await (
        await compute.virtual_machine_extensions.begin_create_or_update(
            "rg-wac", "vm1", "cse", body
        )
    ).result()
    assert ext.provisioning_state == "Succeeded"
    assert emu.guest(target).port is None


# -- Run Command ---------------------------------------------------------------------------


async def test_run_command_port_script(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    result = await _run(session, target, [MARKER_PORT, "Get-ItemProperty ..."])
    assert json.loads(_stdout(result)) == {
        "script": "port",
        "version": 2,
        "gateway": None,
        "appSettings": {"found": False, "url": None, "error": None},
        "smePort": None,
    }
    emu.guest(target).install_gateway("6600")
    result = await _run(session, target, [MARKER_PORT])
    doc = json.loads(_stdout(result))
    assert (doc["gateway"], doc["appSettings"]["url"]) == ("modern", "https://*:6600")
    post = next(r for r in emu.requests if r.method == "POST")
    assert post.status == 202


async def test_run_command_unknown_script(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    result = await _run(session, target, ["Write-Output hello"])
    assert _stdout(result) == ""
    assert _stderr(result) == "unknown script (emulator)"


async def test_run_command_diagnose_script(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await _install(session, target)
    guest = emu.guest(target)
    healthy = json.loads(_stdout(await _run(session, target, [MARKER_DIAG], Port="6516")))
    assert healthy["gateway"] == "modern"
    assert healthy["services"][0] == {"name": "WindowsAdminCenter", "status": "Running"}
    wac_rule = healthy["firewallRules"][0]
    assert wac_rule["name"] == "WacInboundOpenException"
    assert wac_rule["profiles"] == {"Domain": True, "Private": True, "Public": True}
    assert healthy["localhost"]["ok"] is True
    assert healthy["serviceEndpoint"]["ok"] is True
    guest.services["WindowsAdminCenter"] = "Stopped"
    guest.firewall_rules["WacInboundOpenException"].profiles.discard("Public")
    guest.outbound_blocked = True
    broken = json.loads(_stdout(await _run(session, target, [MARKER_DIAG], Port="6516")))
    assert broken["services"][0]["status"] == "Stopped"
    assert broken["firewallRules"][0]["profiles"]["Public"] is False
    assert broken["localhost"]["ok"] is False
    assert broken["serviceEndpoint"]["ok"] is False


async def test_one_run_command_at_a_time(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    body = {"commandId": "RunPowerShellScript", "script": [MARKER_PORT]}
    first = await compute.virtual_machines.begin_run_command("rg-wac", "vm1", body)
    with pytest.raises(HttpResponseError) as info:
        await compute.virtual_machines.begin_run_command("rg-wac", "vm1", body)
    assert info.value.status_code == 409
    assert "Run command extension execution is in progress" in info.value.error.message
    await first.result()
    second = await compute.virtual_machines.begin_run_command("rg-wac", "vm1", body)
    await second.result()


async def test_guest_can_force_run_command_busy(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.guest(target).run_command_busy = True
    with pytest.raises(HttpResponseError) as info:
        await _run(session, target, [MARKER_PORT])
    assert info.value.status_code == 409


async def test_run_command_on_stopped_vm_is_409(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1", power_state="stopped")
    with pytest.raises(HttpResponseError) as info:
        await _run(session, target, [MARKER_PORT])
    assert info.value.error.code == "OperationNotAllowed"


async def test_managed_run_commands(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.guest(target).install_gateway("6516")
    compute = session.compute(target.subscription_id)
    body = {
        "location": "westeurope",
        "properties": {"source": {"script": MARKER_PORT + "\nGet-ItemProperty"}},
    }
    rc = await (
        await compute.virtual_machine_run_commands.begin_create_or_update(
            "rg-wac", "vm1", "wac-port", body
        )
    ).result()
    assert rc.provisioning_state == "Succeeded"
    got = await compute.virtual_machine_run_commands.get_by_virtual_machine(
        "rg-wac", "vm1", "wac-port", expand="instanceView"
    )
    assert got.instance_view.execution_state == "Succeeded"
    assert json.loads(got.instance_view.output)["appSettings"]["url"] == "https://*:6516"
    assert got.instance_view.exit_code == 0
    names = [
        r.name
        async for r in compute.virtual_machine_run_commands.list_by_virtual_machine("rg-wac", "vm1")
    ]
    assert names == ["wac-port"]
    await (
        await compute.virtual_machine_run_commands.begin_delete("rg-wac", "vm1", "wac-port")
    ).result()
    with pytest.raises(ResourceNotFoundError):
        await compute.virtual_machine_run_commands.get_by_virtual_machine(
            "rg-wac", "vm1", "wac-port"
        )


async def test_custom_image_without_reported_os(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1", custom_image=True, report_os=False, nics=2)
    compute = session.compute(target.subscription_id)
    vm = await compute.virtual_machines.get("rg-wac", "vm1", expand="instanceView")
    ref = vm.storage_profile.image_reference
    assert ref.sku is None
    assert "/galleries/" in ref.id
    assert vm.instance_view.os_name is None
    assert vm.instance_view.vm_agent.statuses[0].display_status == "Ready"
    nics = [n.id.rsplit("/", 1)[-1] for n in vm.network_profile.network_interfaces]
    assert nics == ["vm1-nic", "vm1-nic2"]
    # nothing says the OS is too old: the install goes ahead
    ext = await _install(session, target)
    assert ext.provisioning_state == "Succeeded"


async def test_windows_11_client_installs_with_the_modelled_newer_extension(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1", os="windows-11")
    compute = session.compute(target.subscription_id)
    vm = await compute.virtual_machines.get("rg-wac", "vm1", expand="instanceView")
    assert vm.storage_profile.image_reference.publisher == "MicrosoftWindowsDesktop"
    assert vm.instance_view.os_name == "Windows 11 Pro"
    ext = await _install(session, target)
    assert ext.provisioning_state == "Succeeded"


async def test_extension_instance_view_while_installing(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(target.subscription_id)
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        "rg-wac", "vm1", "AdminCenter", _ext_body()
    )
    stored = emu.resource(f"{target.resource_id}/extensions/AdminCenter")["properties"]
    assert stored["instanceView"]["statuses"][0]["code"] == "ProvisioningState/transitioning"
    await poller.result()
    vm = await compute.virtual_machines.get("rg-wac", "vm1", expand="instanceView")
    handlers = vm.instance_view.vm_agent.extension_handlers
    assert [(h.type, h.type_handler_version) for h in handlers] == [
        ("Microsoft.AdminCenter.AdminCenter", "0.31.0.0")
    ]
    assert handlers[0].status.display_status == "Ready"


# -- extension DELETE on a VM that is not running ------------------------------------------


async def test_extension_delete_on_deallocated_vm_is_refused(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    compute = session.compute(SUB)
    await (
        await compute.virtual_machine_extensions.begin_create_or_update(
            RG, "vm1", "AdminCenter", ADMIN_CENTER
        )
    ).result()
    emu.set_power_state(t, "deallocated")
    with pytest.raises(HttpResponseError) as info:
        await (
            await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
        ).result()
    assert info.value.status_code == 409
    assert info.value.error is not None
    assert info.value.error.code == "OperationNotAllowed"
    ext = await compute.virtual_machine_extensions.get(RG, "vm1", "AdminCenter")
    assert ext.provisioning_state == "Succeeded"
    # a missing extension is still a no-op 204 (nothing to change)
    await (await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "Nope")).result()


async def test_extension_delete_and_list_over_https(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1")
    async with emu.serve() as srv, srv.session() as session:
        compute = session.compute(SUB)
        await (
            await compute.virtual_machine_extensions.begin_create_or_update(
                RG, "vm1", "AdminCenter", ADMIN_CENTER
            )
        ).result()
        listed = await compute.virtual_machine_extensions.list(RG, "vm1")
        assert [e.name for e in listed.value] == ["AdminCenter"]
        emu.set_power_state(t, "stopped")
        with pytest.raises(HttpResponseError, match="OperationNotAllowed"):
            await (
                await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
            ).result()
        emu.set_power_state(t, "running")
        await (
            await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
        ).result()
        listed = await compute.virtual_machine_extensions.list(RG, "vm1")
        assert listed.value == []
