"""enable / disable: the whole lifecycle against the emulator (real aio SDK clients)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    EnablePreview,
    ExtensionManager,
    InvalidInputError,
    NoPublicIpError,
    OperationTimeoutError,
    PortSource,
    PublicAccess,
    RequirementsNotMetError,
    VmTarget,
    disable,
    enable,
)
from wac_azure.testing import ArmEmulator

WRITE = {"PUT", "PATCH", "POST", "DELETE"}
DOC_IP = "203.0.113.10"


def _writes(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method in WRITE]


def _nsg_id(target: VmTarget) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{target.name}-nsg"
    )


def _rules(emu: ArmEmulator, target: VmTarget) -> dict[str, dict[str, Any]]:
    nsg = emu.resource(_nsg_id(target))
    return {r["name"]: r["properties"] for r in nsg["properties"].get("securityRules", [])}


def _rule(
    name: str, priority: int, direction: str, dest: str, port: str, source: str
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": dest,
            "destinationPortRange": port,
            "description": "site policy",
        },
    }


def _locked(emu: ArmEmulator) -> VmTarget:
    target = emu.add_windows_vm("locked")
    emu.add_rule(_nsg_id(target), _rule("DenyOut", 200, "Outbound", "Internet", "*", "*"))
    emu.add_rule(_nsg_id(target), _rule("DenyIn", 300, "Inbound", "*", "6516", "VirtualNetwork"))
    return target


async def test_enable_then_enable_again_writes_nothing(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    first = await enable(session, target)
    assert first.changed
    assert not first.dry_run
    assert first.extension is not None
    assert first.extension.succeeded
    assert first.port is not None
    assert first.port.source is PortSource.APPSETTINGS  # the modernized gateway
    assert first.port.gateway == "modern"
    assert first.url is not None
    assert re.fullmatch(r"https://10\.\d+\.\d+\.\d+:6516", first.url)
    run_commands = [r for r in emu.requests if r.path.endswith("/runCommand")]
    assert len(run_commands) == 1
    writes = len(_writes(emu))
    second = await enable(session, target)
    assert len(_writes(emu)) == writes, "the second enable wrote something"
    assert not second.changed
    assert second.url == first.url
    assert second.port is not None
    assert second.port.source is PortSource.SETTINGS


@pytest.mark.parametrize(
    ("gateway", "source"),
    [("modern", PortSource.APPSETTINGS), ("legacy", PortSource.REGISTRY)],
)
async def test_enable_with_a_port_finds_it_on_either_gateway(
    emu: ArmEmulator, session: AzureSession, gateway: str, source: PortSource
) -> None:
    target = emu.add_windows_vm("vm1", gateway=gateway)
    result = await enable(session, target, port=6600)
    assert result.port is not None
    assert (result.port.port, result.port.source, result.port.gateway) == (6600, source, gateway)
    assert result.port.registry_port == 6600
    assert not result.port.mismatch
    assert result.url is not None
    assert result.url.endswith(":6600")


async def test_dry_run_writes_nothing(emu: ArmEmulator, session: AzureSession) -> None:
    target = _locked(emu)
    result = await enable(session, target, dry_run=True)
    assert _writes(emu) == []
    assert result.dry_run
    assert not result.changed
    assert isinstance(result, EnablePreview)  # no apply, no port: nothing was written
    assert not hasattr(result, "apply")
    assert not hasattr(result, "port")
    assert result.to_dict()["apply"] is None
    assert result.to_dict()["port"] is None
    assert result.plan.changes, "the locked VM needs rules: the plan must list them"
    assert result.url is not None
    assert result.url.endswith(":6516")
    assert result.extension is not None
    assert not result.extension.installed
    assert "dry run" in str(result)
    json.dumps(result.to_dict())


def _ours(props: dict[str, Any]) -> bool:
    """Whether a rule's properties carry wac_azure's description (and ownership mark)."""
    return str(props.get("description") or "").startswith("Managed by wac_azure (mark ")


async def test_enable_routes_around_deny_rules(emu: ArmEmulator, session: AzureSession) -> None:
    target = _locked(emu)
    result = await enable(session, target)
    assert result.changed
    assert result.extension is not None
    assert result.extension.succeeded
    rules = _rules(emu, target)
    ours = {n: r for n, r in rules.items() if _ours(r)}
    assert ours, "no rule was created"
    assert all(r["priority"] < 200 for r in ours.values() if r["direction"] == "Outbound")
    assert all(r["priority"] < 300 for r in ours.values() if r["direction"] == "Inbound")
    writes = len(_writes(emu))
    again = await enable(session, target)
    assert not again.changed
    assert len(_writes(emu)) == writes


@pytest.mark.parametrize("dry_run", [False, True])
async def test_unsupported_vm_is_refused_before_any_write(
    emu: ArmEmulator, session: AzureSession, dry_run: bool
) -> None:
    target = emu.add_windows_vm("old", os="2012-R2", size="Standard_B1s")
    with pytest.raises(RequirementsNotMetError) as info:
        await enable(session, target, dry_run=dry_run)
    report = info.value.report
    assert {c.code for c in report.failures} >= {"os.supported", "memory.minimum"}
    assert "os.supported" in str(info.value)
    assert _writes(emu) == []


async def test_public_access_from_one_source(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("pub", public_ip=True)
    result = await enable(session, target, access=PublicAccess([DOC_IP]))
    private = await ExtensionManager(session).connection_url(target)
    assert result.url is not None
    assert result.url != private
    inbound = [r for r in _rules(emu, target).values() if r["direction"] == "Inbound" and _ours(r)]
    assert inbound, "no inbound rule for the public source"
    for rule in inbound:
        sources = rule.get("sourceAddressPrefixes") or [rule.get("sourceAddressPrefix")]
        assert sources == [DOC_IP] or sources == [f"{DOC_IP}/32"]


async def test_public_access_without_a_public_ip_fails_without_writes(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("nopub")
    for dry_run in (True, False):
        with pytest.raises(NoPublicIpError):
            await enable(session, target, access=PublicAccess([DOC_IP]), dry_run=dry_run)
    assert _writes(emu) == []


async def test_disable_removes_our_rules_only(emu: ArmEmulator, session: AzureSession) -> None:
    target = _locked(emu)
    await enable(session, target)
    before = set(_rules(emu, target))
    done = await disable(session, target)
    assert done.changed
    assert done.extension_removed
    after = _rules(emu, target)
    assert set(after) == {"DenyOut", "DenyIn"}
    assert before > set(after)
    assert not (await ExtensionManager(session).status(target)).installed
    writes = len(_writes(emu))
    again = await disable(session, target)
    assert not again.changed
    assert len(_writes(emu)) == writes
    json.dumps(again.to_dict())


async def test_disable_can_keep_the_rules(emu: ArmEmulator, session: AzureSession) -> None:
    target = _locked(emu)
    await enable(session, target)
    rules = set(_rules(emu, target))
    done = await disable(session, target, remove_rules=False)
    assert done.extension_removed
    assert done.rules is None
    assert set(_rules(emu, target)) == rules


async def test_enable_result_views(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    result = await enable(session, target, port=6600)
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["url"].endswith(":6600")
    assert doc["port"]["port"] == 6600
    assert doc["report"]["passed"] is True
    text = str(result)
    assert "https://" in text
    assert "requirements" in text
    html = result._repr_html_()
    assert html.startswith("<div>")
    assert "<details>" in html


async def test_uninstall_remove_rules_never_touches_foreign_allow_rules(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = _locked(emu)
    await enable(session, target)
    manual = _rule("PortForWAC-manual", 150, "Inbound", "*", "6516", "10.1.0.0/16")
    manual["properties"]["access"] = "Allow"
    emu.add_rule(_nsg_id(target), manual)
    result = await ExtensionManager(session).uninstall(target, remove_rules=True)
    assert result.removed
    assert result.rules is not None
    assert result.rules.deleted
    assert set(_rules(emu, target)) == {"DenyOut", "DenyIn", "PortForWAC-manual"}


async def test_enable_honours_its_timeout(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(OperationTimeoutError):
        await enable(session, target, timeout=1e-9)
    with pytest.raises(InvalidInputError):
        await enable(session, target, timeout=-1)
