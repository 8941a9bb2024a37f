"""A deployed proxy is kept (proxy=None), even one with credentials; proxy=False removes it."""

from __future__ import annotations

import re
from typing import Any

from wac_azure import (
    AzureSession,
    ExtensionManager,
    VmTarget,
    enable,
)
from wac_azure.testing import ArmEmulator

EXT = re.compile(r"/extensions/AdminCenter$", re.IGNORECASE)


def _puts(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "PUT" and EXT.search(r.path)]


def _ext_id(target: VmTarget) -> str:
    return f"{target.resource_id}/extensions/AdminCenter"


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
