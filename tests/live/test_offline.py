"""The live tests' bodies run against the emulator, so a live run fails only on Azure's account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wac_azure import AzureSession, VmTarget
from wac_azure.testing import ArmEmulator

from tests.live import test_live
from tests.live.recorder import RecordingTransport
from tests.live.settings import live_skip_reason

Offline = tuple[AzureSession, VmTarget, RecordingTransport]


@pytest.fixture
async def offline(emu: ArmEmulator) -> AsyncIterator[Offline]:
    """An emulator session recorded like a live one, and a Windows VM in it."""
    target = emu.add_windows_vm("vm1", public_ip=True)
    traffic = RecordingTransport(emu.transport())
    async with emu.session(transport=traffic) as session:
        yield session, target, traffic


async def test_read_only_live_tests_pass_on_the_emulator(
    offline: Offline, emu: ArmEmulator
) -> None:
    session, target, traffic = offline
    await test_live.test_the_subscription_lists_its_vms(session, target.subscription_id, traffic)
    await test_live.test_check_reads_the_vm_and_judges_it(session, target, traffic)
    await test_live.test_plan_is_a_dry_run_that_writes_nothing(session, target, traffic)
    assert emu.writes() == []
    assert traffic.interactions


async def test_enable_disable_live_test_passes_on_the_emulator(
    offline: Offline, emu: ArmEmulator
) -> None:
    session, target, _ = offline
    await test_live.test_enable_then_disable_on_the_vm(session, target)
    assert emu.writes()


def test_live_tests_are_skipped_without_selection_subscription_or_in_ci(
    monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "az"))
    for name in ("AZURE_CLIENT_ID", "AZURE_USERNAME", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pytestconfig.option, "markexpr", "live")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    assert live_skip_reason(pytestconfig) == "AZURE_SUBSCRIPTION_ID is not set"
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001")
    assert "no credential" in (live_skip_reason(pytestconfig) or "")
    monkeypatch.setenv("AZURE_CLIENT_ID", "x")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "y")
    assert live_skip_reason(pytestconfig) is None
    monkeypatch.setenv("CI", "")
    assert live_skip_reason(pytestconfig) == "CI is set: live tests never run in CI"
    monkeypatch.delenv("CI")
    monkeypatch.setattr(pytestconfig.option, "markexpr", "")
    assert "-m live" in (live_skip_reason(pytestconfig) or "")
