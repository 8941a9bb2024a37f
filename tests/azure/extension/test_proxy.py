"""Regressions from the review: one progress type, proxy handling, install blocking,
typed connection errors (emulator + real aio SDK clients)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from wac_azure import (
    AzureRequestError,
    AzureSession,
    ExtensionManager,
    ProgressEvent,
    ProgressStage,
    RequirementChecker,
    RequirementsNotMetError,
    TqdmProgress,
    VmTarget,
    enable,
)
from wac_azure.testing import ArmEmulator, Fault

EXT = re.compile(r"/extensions/AdminCenter$", re.IGNORECASE)


def _puts(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "PUT" and EXT.search(r.path)]


def _nsg_id(target: VmTarget) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{target.name}-nsg"
    )


def _ext_id(target: VmTarget) -> str:
    return f"{target.resource_id}/extensions/AdminCenter"


class _Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.n = 0
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text


async def _deploy_raw(session: AzureSession, target: VmTarget, settings: dict[str, Any]) -> None:
    """Put an AdminCenter extension as someone else (portal, template) would."""
    body: Any = {
        "location": "westeurope",
        "properties": {
            "publisher": "Microsoft.AdminCenter",
            "type": "AdminCenter",
            "typeHandlerVersion": "0.0",
            "autoUpgradeMinorVersion": True,
            "settings": settings,
        },
    }
    compute = session.compute(target.subscription_id)
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        target.resource_group, target.name, "AdminCenter", body
    )
    await poller.result()


# -- 1. one progress type ------------------------------------------------------------------


async def test_install_emits_progress_events_in_order(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    seen: list[ProgressEvent] = []
    await ExtensionManager(session).install(target, progress=seen.append)
    stages = [e.stage for e in seen]
    assert stages[0] is ProgressStage.READING
    assert ProgressStage.INSTALLING in stages
    assert stages[-1] is ProgressStage.DONE
    assert sum(s.terminal for s in stages) == 1
    assert all(e.target == target and e.total == 1 for e in seen)
    assert str(seen[-1]).startswith("vm1 done")  # a readable line
    seen.clear()
    await ExtensionManager(session).install(target, progress=seen.append)
    assert [e.stage for e in seen][-1] is ProgressStage.DONE
    assert "already installed" in str(seen[-1])


async def test_tqdm_progress_drives_enable_and_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    bar = _Bar()
    result = await enable(session, target, progress=TqdmProgress(bar))
    assert result.url
    assert bar.total == 1
    assert bar.n == 1
    assert "done 1" in bar.postfix
    bar2 = _Bar()
    await ExtensionManager(session).install(target, progress=TqdmProgress(bar2))
    assert bar2.n == 1


async def test_enable_progress_stages_and_failed(emu: ArmEmulator, session: AzureSession) -> None:
    good = emu.add_windows_vm("vm1")
    seen: list[ProgressEvent] = []
    await enable(session, good, progress=seen.append)
    stages = [e.stage for e in seen]
    for stage in (
        ProgressStage.READING,
        ProgressStage.PLANNED,
        ProgressStage.RULES_APPLIED,
        ProgressStage.INSTALLING,
    ):
        assert stage in stages
    assert stages[-1] is ProgressStage.DONE
    assert sum(s.terminal for s in stages) == 1
    small = emu.add_windows_vm("vm2", size="Standard_B1ms")
    seen.clear()
    with pytest.raises(RequirementsNotMetError):
        await enable(session, small, progress=seen.append)
    assert seen[-1].stage is ProgressStage.FAILED
    assert "memory.minimum" in str(seen[-1])


async def test_a_raising_progress_callback_does_not_stop_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")

    def boom(event: ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    state = await ExtensionManager(session).install(target, progress=boom)
    assert state.succeeded


# -- 6. proxy ----------------------------------------------------------------------------


async def test_deployed_proxy_with_credentials_is_kept_not_revalidated(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    odd = {"mode": "application", "address": "http://u:p@proxy.example:3128/path"}
    await _deploy_raw(session, target, {"port": "6516", "salt": "abc", "proxy": odd})
    emu.requests.clear()
    state = await ExtensionManager(session).install(target)  # proxy=None: keep it
    assert state.succeeded
    assert not state.changed
    assert _puts(emu) == []
    result = await enable(session, target)  # enable() keeps it too
    assert not result.extension.changed  # type: ignore[union-attr]
    assert _puts(emu) == []


async def test_proxy_none_keeps_and_false_removes(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    manager = ExtensionManager(session)
    await manager.install(target, proxy="http://proxy.example:3128")
    emu.requests.clear()
    state = await manager.install(target, port=6600)  # a port change keeps the proxy
    assert state.changed
    assert state.port == 6600
    assert len(_puts(emu)) == 1
    settings = emu.resource(_ext_id(target))["properties"]["settings"]
    assert settings["proxy"]["address"] == "http://proxy.example:3128"
    emu.requests.clear()
    removed = await manager.install(target, port=6600, proxy=False)
    assert removed.changed
    assert len(_puts(emu)) == 1
    assert "proxy" not in emu.resource(_ext_id(target))["properties"]["settings"]
    emu.requests.clear()
    again = await manager.install(target, port=6600, proxy=False)  # nothing left to remove
    assert not again.changed
    assert _puts(emu) == []


# -- 7. what blocks an install -------------------------------------------------------------


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


# -- 9. connection errors are typed -------------------------------------------------------


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
        emu.faults.add_scripted(1, Fault.reset(), method="POST", path_regex="/runCommand$")
        with pytest.raises(AzureRequestError, match="could not reach"):
            await manager.locate_port(target)
