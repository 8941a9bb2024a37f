"""ExtensionManager against the emulator, through the real aio SDK clients."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wac_azure import (
    AzureRequestError,
    AzureSession,
    ExtensionError,
    ExtensionInstallError,
    ExtensionManager,
    ExtensionNotInstalledError,
    InvalidInputError,
    NoPublicIpError,
    OperationFailedError,
    OperationHandle,
    OperationTimeoutError,
    PortSource,
    RequirementChecker,
    RequirementsNotMetError,
    RetryConfig,
    VmNotFoundError,
    VmTarget,
)
from wac_azure.testing import ArmEmulator, Fault
from wac_azure.testing.backend.faults import FaultKind
from wac_azure.testing.backend.guest import APPSETTINGS_PATH

EXT = re.compile(r"/extensions/AdminCenter$", re.IGNORECASE)
GATEWAY_KEY = "HKLM\\SOFTWARE\\Microsoft\\ServerManagementGateway"


def _puts(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "PUT" and EXT.search(r.path)]


def _run_commands(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "POST" and r.path.endswith("/runCommand")]


def _ext_doc(emu: ArmEmulator, target: VmTarget) -> dict[str, Any]:
    return emu.resource(f"{target.resource_id}/extensions/AdminCenter")


def _nsg_id(target: VmTarget) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{target.name}-nsg"
    )


def _deny_outbound(emu: ArmEmulator, target: VmTarget) -> None:
    emu.add_rule(
        _nsg_id(target),
        {
            "name": "DenyInternetOut",
            "properties": {
                "priority": 100,
                "direction": "Outbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "*",
            },
        },
    )


# -- install ----------------------------------------------------------------------------


async def test_fresh_install_writes_the_documented_body(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    state = await ExtensionManager(session).install(target)
    assert state.installed
    assert state.succeeded
    assert state.changed
    assert state.port == 6516
    assert len(_puts(emu)) == 1
    props = _ext_doc(emu, target)["properties"]
    assert props["publisher"] == "Microsoft.AdminCenter"
    assert props["type"] == "AdminCenter"
    assert props["typeHandlerVersion"] == "0.0"
    assert props["autoUpgradeMinorVersion"] is True
    assert props["settings"]["port"] == "6516"
    assert re.fullmatch(r"[0-9a-f]{32}", props["settings"]["salt"])
    assert state.salt == props["settings"]["salt"]
    assert emu.guest(target).port == "6516"


async def test_second_install_writes_nothing(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    first = await manager.install(target)
    writes = len(emu.writes())
    again = await manager.install(target)
    assert len(emu.writes()) == writes
    assert not again.changed
    assert again.succeeded
    assert again.salt == first.salt
    assert again.port == first.port


async def test_port_change_updates_and_keeps_the_salt(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    first = await manager.install(target)
    moved = await manager.install(target, port=6600)
    assert moved.changed
    assert moved.port == 6600
    assert moved.salt == first.salt
    assert len(_puts(emu)) == 2
    assert _ext_doc(emu, target)["properties"]["settings"] == {
        "port": "6600",
        "salt": first.salt,
    }
    assert emu.guest(target).port == "6600"


async def test_explicit_salt_and_proxy_are_written(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    state = await ExtensionManager(session).install(
        target, salt="my-salt", proxy="http://proxy.example:3128"
    )
    settings = _ext_doc(emu, target)["properties"]["settings"]
    assert settings["salt"] == "my-salt" == state.salt
    assert settings["proxy"] == {"mode": "application", "address": "http://proxy.example:3128"}


async def test_unsupported_os_is_refused_before_any_write(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("old", os="2012-R2")
    with pytest.raises(RequirementsNotMetError) as info:
        await ExtensionManager(session).install(target)
    assert info.value.report is not None
    assert info.value.report.failed
    assert "nothing was written" in str(info.value)
    assert emu.writes() == []


async def test_outbound_blocked_is_refused_by_the_checks(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    _deny_outbound(emu, target)
    with pytest.raises(RequirementsNotMetError):
        await ExtensionManager(session).install(target)
    assert emu.writes() == []


async def test_outbound_blocked_install_fails_naming_the_service_tag(
    emu: ArmEmulator, session: AzureSession
) -> None:
    # skip_checks lets the install reach Azure, which fails it as the real extension does.
    target = emu.add_windows_vm("vm1")
    _deny_outbound(emu, target)
    with pytest.raises(ExtensionInstallError) as info:
        await ExtensionManager(session).install(target, skip_checks=True)
    err = info.value
    assert any("WindowsAdminCenter" in m for m in err.substatuses)
    assert any("WindowsAdminCenter service tag" in h for h in err.hints)
    assert any("C:\\WindowsAzure\\Logs\\Plugins\\AdminCenter" in loc for loc in err.log_locations)
    assert any("View Detailed Status" in loc for loc in err.log_locations)
    assert "WindowsAdminCenter service tag" in str(err)
    assert len(_puts(emu)) == 1  # a failed install is not a transient failure
    state = await ExtensionManager(session).status(target)
    assert state.failed


async def test_deallocated_vm_fails_at_once(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.set_power_state(target, "deallocated")
    with pytest.raises(AzureRequestError) as info:
        await ExtensionManager(session).install(target, skip_checks=True)
    assert info.value.code == "OperationNotAllowed"
    assert len(_puts(emu)) == 1  # no retry


async def test_deallocated_vm_is_refused_by_the_checks(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    emu.set_power_state(target, "deallocated")
    with pytest.raises(RequirementsNotMetError):
        await ExtensionManager(session).install(target)
    assert emu.writes() == []


@pytest.mark.parametrize("fault", ["409", "OperationPreempted", "InternalExecutionError"])
async def test_transient_faults_are_retried_to_success(
    emu: ArmEmulator, session: AzureSession, fault: str
) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, fault, method="PUT", path_regex="/extensions/AdminCenter$")
    state = await ExtensionManager(session).install(target)
    assert state.succeeded
    assert len(_puts(emu)) == 2
    assert emu.faults.total == 1


async def test_retries_are_bounded_by_the_session_config(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    for n in range(1, 5):
        emu.faults.add_scripted(n, "409", method="PUT", path_regex="/extensions/AdminCenter$")
    async with emu.session(retry=RetryConfig(attempts=3, initial=0, jitter=0)) as session:
        with pytest.raises(AzureRequestError) as info:
            await ExtensionManager(session).install(target)
    assert info.value.status == 409
    assert len(_puts(emu)) == 3


async def test_a_permanent_fault_is_not_retried(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    bad = Fault(FaultKind.STATUS, status=400, code="InvalidParameter", message="bad settings")
    emu.faults.add_scripted(1, bad, method="PUT", path_regex="/extensions/AdminCenter$")
    with pytest.raises(AzureRequestError) as info:
        await ExtensionManager(session).install(target)
    assert info.value.status == 400
    assert info.value.code == "InvalidParameter"
    assert len(_puts(emu)) == 1


async def test_a_non_transient_operation_failure_is_not_retried(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(
        1, Fault.lro_failed("ResourceQuotaExceeded"), method="PUT", path_regex="AdminCenter$"
    )
    with pytest.raises(OperationFailedError) as info:
        await ExtensionManager(session).install(target)
    assert info.value.code == "ResourceQuotaExceeded"
    assert len(_puts(emu)) == 1


async def test_wait_false_returns_an_awaitable_handle(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    handle = await ExtensionManager(session).install(target, wait=False)
    assert isinstance(handle, OperationHandle)
    assert handle.status() in {"InProgress", "Succeeded"}
    state = await handle
    assert state.succeeded
    assert handle.done()
    assert handle.status() == "Succeeded"
    assert (await handle.result()) == state


async def test_timeout_raises_operation_timeout(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(OperationTimeoutError) as info:
        await ExtensionManager(session).install(target, timeout=1e-9)
    assert isinstance(info.value, TimeoutError)


async def test_missing_vm(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    ghost = VmTarget.parse(str(emu.add_windows_vm("vm2")).replace("vm2", "ghost"))
    with pytest.raises(VmNotFoundError):
        await ExtensionManager(session).status(ghost)


# -- status and port ----------------------------------------------------------------------


async def test_status_before_and_after(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    before = await manager.status(target)
    assert not before.installed
    assert before.port is None
    await manager.install(target, port=6600)
    after = await manager.status(target)
    assert after.installed
    assert after.succeeded
    assert after.port == 6600
    assert after.handler_version
    assert after.to_dict()["provisioning_state"] == "Succeeded"


async def test_port_from_settings_runs_no_command(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    await manager.install(target, port=6600)
    info = await manager.locate_port(target, from_guest=False)
    assert (info.port, info.source) == (6600, PortSource.SETTINGS)
    assert _run_commands(emu) == []


def _set_guest_port(emu: ArmEmulator, target: VmTarget, gateway: str, port: str) -> None:
    """Change the port the installed gateway listens on, where that gateway keeps it."""
    guest = emu.guest(target)
    if gateway == "legacy":
        guest.registry[GATEWAY_KEY]["SmePort"] = port
    else:
        doc = json.loads(guest.files[APPSETTINGS_PATH])
        doc["Kestrel"]["Endpoints"]["WindowsAdminCenter"]["Url"] = f"https://*:{port}"
        guest.files[APPSETTINGS_PATH] = json.dumps(doc)


GATEWAY_SOURCES = [("modern", PortSource.APPSETTINGS), ("legacy", PortSource.REGISTRY)]


@pytest.mark.parametrize(("gateway", "source"), GATEWAY_SOURCES)
async def test_port_from_the_guest_in_one_run_command(
    emu: ArmEmulator, session: AzureSession, gateway: str, source: PortSource
) -> None:
    target = emu.add_windows_vm("vm1", gateway=gateway)
    manager = ExtensionManager(session)
    await manager.install(target, port=6600)
    info = await manager.locate_port(target)
    assert (info.port, info.source, info.gateway) == (6600, source, gateway)
    assert not info.mismatch
    assert len(_run_commands(emu)) == 1


@pytest.mark.parametrize(("gateway", "source"), GATEWAY_SOURCES)
async def test_guest_port_wins_and_mismatch_is_reported(
    emu: ArmEmulator, session: AzureSession, gateway: str, source: PortSource
) -> None:
    target = emu.add_windows_vm("vm1", gateway=gateway)
    manager = ExtensionManager(session)
    await manager.install(target)
    _set_guest_port(emu, target, gateway, "7000")
    info = await manager.locate_port(target)
    assert (info.port, info.source) == (7000, source)
    assert info.settings_port == 6516
    assert info.mismatch
    assert ("appsettings.json" if gateway == "modern" else "SmePort") in str(info)


@pytest.mark.parametrize("gateway", ["modern", "legacy"])
async def test_no_port_inside_falls_back_to_settings(
    emu: ArmEmulator, session: AzureSession, gateway: str
) -> None:
    target = emu.add_windows_vm("vm1", gateway=gateway)
    manager = ExtensionManager(session)
    await manager.install(target, port=6600)
    guest = emu.guest(target)
    guest.registry.pop(GATEWAY_KEY, None)
    guest.files.pop(APPSETTINGS_PATH, None)
    info = await manager.locate_port(target)
    assert (info.port, info.source, info.registry_port) == (6600, PortSource.SETTINGS, None)
    assert info.gateway == gateway  # its service is still there


async def test_run_command_in_progress_is_retried(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    await manager.install(target)
    busy = Fault(
        FaultKind.STATUS,
        status=409,
        code="Conflict",
        message="Run command extension execution is in progress. Please wait for completion.",
    )
    emu.faults.add_scripted(1, busy, method="POST", path_regex="/runCommand$")
    info = await manager.locate_port(target)
    assert info.source is PortSource.APPSETTINGS
    assert len(_run_commands(emu)) == 2


async def test_port_of_a_vm_without_the_extension(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(ExtensionNotInstalledError):
        await ExtensionManager(session).locate_port(target)
    assert _run_commands(emu) == []


# -- uninstall ------------------------------------------------------------------------------


async def test_uninstall_is_idempotent(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    await manager.install(target)
    removed = await manager.uninstall(target)
    assert removed.removed
    assert removed.changed
    assert removed.previous.installed
    assert not (await manager.status(target)).installed
    assert GATEWAY_KEY not in emu.guest(target).registry
    writes = len(emu.writes())
    again = await manager.uninstall(target)
    assert not again.removed
    assert not again.changed
    assert len(emu.writes()) == writes


async def test_uninstall_wait_false(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    await manager.install(target)
    handle = await manager.uninstall(target, wait=False)
    result = await handle
    assert result.removed
    assert handle.status() == "Succeeded"


# -- URLs -------------------------------------------------------------------------------------


async def test_connection_urls(emu: ArmEmulator, session: AzureSession) -> None:
    private = emu.add_windows_vm("vm1")
    public = emu.add_windows_vm("vm2", public_ip=True)
    manager = ExtensionManager(session)
    with pytest.raises(ExtensionNotInstalledError):
        await manager.connection_url(private)
    await manager.install(private, port=6600)
    await manager.install(public)
    url = await manager.connection_url(private)
    assert re.fullmatch(r"https://10\.\d+\.\d+\.\d+:6600", url)
    with pytest.raises(NoPublicIpError):
        await manager.connection_url(private, via="public")
    public_url = await manager.connection_url(public, via="public")
    assert re.fullmatch(r"https://\d+\.\d+\.\d+\.\d+:6516", public_url)
    assert public_url != await manager.connection_url(public)


# -- settings written by others ---------------------------------------------------------------


def _seed_extension(
    emu: ArmEmulator, target: VmTarget, *, publisher: str, settings: dict[str, Any]
) -> None:
    emu.seed(
        {
            "id": f"{target.resource_id}/extensions/AdminCenter",
            "name": "AdminCenter",
            "type": "Microsoft.Compute/virtualMachines/extensions",
            "location": "westeurope",
            "properties": {
                "publisher": publisher,
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "autoUpgradeMinorVersion": True,
                "provisioningState": "Succeeded",
                "settings": settings,
            },
        }
    )


async def test_an_integer_port_from_a_template_counts_as_the_same(
    emu: ArmEmulator, session: AzureSession
) -> None:
    # The quickstart template writes the port as an int: reading must accept it.
    target = emu.add_windows_vm("vm1")
    _seed_extension(
        emu, target, publisher="Microsoft.AdminCenter", settings={"port": 6516, "salt": "t-salt"}
    )
    manager = ExtensionManager(session)
    state = await manager.status(target)
    assert state.port == 6516
    again = await manager.install(target)
    assert not again.changed
    assert again.salt == "t-salt"
    assert emu.writes() == []


async def test_a_foreign_adminCenter_extension_is_not_overwritten(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    _seed_extension(emu, target, publisher="Contoso.Tools", settings={})
    manager = ExtensionManager(session)
    with pytest.raises(RequirementsNotMetError, match=r"extension\.conflict"):
        await manager.install(target)
    with pytest.raises(ExtensionError, match="publisher or type"):
        await manager.install(target, skip_checks=True)
    with pytest.raises(ExtensionError, match=r"Contoso\.Tools"):
        await manager.status(target)
    assert emu.writes() == []


async def test_progress_reports_each_step(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    seen: list[Any] = []
    await ExtensionManager(session).install(target, progress=seen.append)
    lines = [str(e) for e in seen]
    assert any("installing: AdminCenter on port 6516" in line for line in lines)
    assert any("settle" in line for line in lines)
    seen.clear()
    await ExtensionManager(session).install(target, progress=seen.append)
    assert any("already installed" in str(e) for e in seen)


@pytest.mark.parametrize(
    "kwargs",
    [{"port": 0}, {"port": "6516"}, {"timeout": 0}, {"salt": ""}, {"proxy": "ftp://x"}],
)
async def test_bad_options_are_refused(
    emu: ArmEmulator, session: AzureSession, kwargs: dict[str, Any]
) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(InvalidInputError):
        await ExtensionManager(session).install(target, **kwargs)
    assert emu.requests == []


async def test_outbound_blocked_inside_the_guest_fails_the_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    # The NSGs allow it (the checks pass), but a firewall or proxy in the VM blocks it.
    target = emu.add_windows_vm("vm1")
    emu.guest(target).outbound_blocked = True
    with pytest.raises(ExtensionInstallError) as info:
        await ExtensionManager(session).install(target)
    assert any("WindowsAdminCenter" in m for m in info.value.substatuses)
    assert any("firewall or proxy inside the VM" in h for h in info.value.hints)


async def test_slow_operations_are_polled_to_the_end() -> None:
    emu = ArmEmulator(seed=0, lro_polls=4)
    target = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        state = await ExtensionManager(session).install(target)
        assert state.succeeded
        removed = await ExtensionManager(session).uninstall(target)
        assert removed.removed
    polls = [r for r in emu.requests if r.is_poll]
    assert len(polls) >= 8


# -- what an install needs, and errors on the way --------------------------------------------


async def test_inbound_deny_does_not_block_install(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.add_rule(
        _nsg_id(target),
        {
            "name": "DenyWacIn",
            "properties": {
                "priority": 100,
                "direction": "Inbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "6516",
            },
        },
    )
    report = await RequirementChecker(session).check(target)
    assert report.check("network.inbound_path").status.value == "fail"
    state = await ExtensionManager(session).install(target)
    assert state.succeeded
    assert state.changed


async def test_connection_reset_is_a_typed_error(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        manager = ExtensionManager(session)
        emu.faults.add_scripted(1, Fault.reset(), method="GET", path_regex="/extensions/")
        with pytest.raises(AzureRequestError, match="could not reach"):
            await manager.status(target)
        await manager.install(target)
        emu.faults.add_scripted(1, Fault.reset(), method="DELETE", path_regex="/extensions/")
        with pytest.raises(AzureRequestError, match="could not reach"):
            await manager.uninstall(target)
        # A reset on the Run Command POST is retried (its scripts only read): only resets
        # that outlast the library's retries reach the caller, typed.
        emu.faults.add_random(1.0, Fault.reset(), methods="POST", path_regex="/runCommand$")
        with pytest.raises(AzureRequestError, match="could not reach"):
            await manager.locate_port(target)
        emu.faults.clear()
        # ... and one reset is retried (issue #16)
        emu.faults.add_scripted(1, Fault.reset(), method="POST", path_regex="/runCommand$")
        assert (await manager.locate_port(target)).port == 6516
