"""Logging as docs/embedding.md#logging says: every write request at INFO, requirement
checks that could not be confirmed at WARNING, a failing progress callback once per run."""

from __future__ import annotations

import logging
import re

import pytest

import wac_azure
from wac_azure import AzureSession, ExtensionManager, ProgressEvent
from wac_azure.testing import ArmEmulator

from tests.workflows._worlds import locked_vm

#: How the library words a write it sends (rules, NSGs, NICs, the extension, Run Command),
#: and a write it sends again (``retrying tagging NIC … after transient …``: the fleet's
#: address record PUTs the NIC as listed, which can still be busy with its last write).
WRITE_LINE = re.compile(
    r"^(creating|updating|writing|deleting) (security rule|extension|NSG)"
    r"|^attaching NSG|^running guest script|^recording the addresses"
    r"|^retrying (creating|updating|writing|deleting|attaching|tagging) ",
)


def _write_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("wac_azure.") and WRITE_LINE.search(r.getMessage())
    ]


def _assert_each_write_logged_at_info(
    emu: ArmEmulator, caplog: pytest.LogCaptureFixture
) -> list[str]:
    writes = emu.writes()
    logged = _write_records(caplog)
    assert writes, "the scenario must write"
    assert all(r.levelno == logging.INFO for r in logged)
    assert len(logged) == len(writes), (
        [f"{w.method} {w.path}" for w in writes],
        [r.getMessage() for r in logged],
    )
    return [r.getMessage() for r in logged]


async def test_every_write_of_enable_and_disable_is_logged_at_info(
    emu: ArmEmulator, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wac_azure")
    target = locked_vm(emu, "vm1")
    await wac_azure.enable(session, target)
    lines = _assert_each_write_logged_at_info(emu, caplog)
    assert any(line.startswith("creating security rule PortForWACService") for line in lines)
    assert "writing extension AdminCenter on vm1 (PUT)" in lines
    assert any(line.startswith("running guest script") for line in lines)  # Run Command
    emu.requests.clear()
    caplog.clear()
    await wac_azure.disable(session, target)
    lines = _assert_each_write_logged_at_info(emu, caplog)
    assert "deleting extension AdminCenter from vm1" in lines


async def test_every_write_of_a_fleet_is_logged_at_info(
    emu: ArmEmulator, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wac_azure")
    targets = [locked_vm(emu, f"vm{i}") for i in range(3)]
    result = await wac_azure.enable_many(session, targets, poll_interval=0.01)
    assert result.ok
    _assert_each_write_logged_at_info(emu, caplog)
    emu.requests.clear()
    caplog.clear()
    result = await wac_azure.disable_many(session, targets, poll_interval=0.01)
    assert result.ok
    _assert_each_write_logged_at_info(emu, caplog)


async def test_a_second_enable_writes_and_logs_nothing(
    emu: ArmEmulator, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target)
    emu.requests.clear()
    caplog.set_level(logging.INFO, logger="wac_azure")
    caplog.clear()  # the first run's lines, had another test left the logger at INFO
    await wac_azure.enable(session, target)
    assert emu.writes() == []
    assert _write_records(caplog) == []


def _unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "could not be confirmed" in r.getMessage()
    ]


async def test_unknown_checks_are_logged_at_warning(
    emu: ArmEmulator, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    # A custom image that reports no OS name: os.supported is unknown, and the install
    # goes ahead (Azure is the judge).
    caplog.set_level(logging.WARNING, logger="wac_azure")
    single = emu.add_windows_vm("custom1", custom_image=True, report_os=False)
    await wac_azure.enable(session, single)
    [record] = _unknown_warnings(caplog)
    assert "custom1" in record.getMessage()
    assert "os.supported" in record.getMessage()
    caplog.clear()
    fleet = emu.add_windows_vm("custom2", custom_image=True, report_os=False)
    result = await wac_azure.enable_many(session, [fleet], poll_interval=0.01)
    assert result.ok
    [record] = _unknown_warnings(caplog)
    assert "custom2" in record.getMessage()
    assert "os.supported" in record.getMessage()
    caplog.clear()
    other = emu.add_windows_vm("custom3", custom_image=True, report_os=False)
    await ExtensionManager(session).install(other)
    assert len(_unknown_warnings(caplog)) == 1


def _callback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "progress callback raised" in r.getMessage()]


async def test_a_failing_progress_callback_is_logged_once_per_run(
    emu: ArmEmulator, session: AzureSession, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ProgressEvent] = []

    def broken(event: ProgressEvent) -> None:
        calls.append(event)
        raise RuntimeError("the progress bar broke")

    caplog.set_level(logging.WARNING, logger="wac_azure")
    target = locked_vm(emu, "vm1")
    result = await wac_azure.enable(session, target, progress=broken)
    assert result.changed  # the run went on
    assert len(calls) >= 4  # reading, planned, rules applied, installing, done...
    [record] = _callback_warnings(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None  # with the traceback, once
    assert "broken" in record.getMessage()

    caplog.clear()
    calls.clear()
    await wac_azure.disable(session, target, progress=broken)
    assert len(calls) >= 3
    assert len(_callback_warnings(caplog)) == 1  # a new run logs it once again

    caplog.clear()
    calls.clear()
    targets = [locked_vm(emu, f"fleet{i}") for i in range(3)]
    fleet = await wac_azure.enable_many(session, targets, progress=broken, poll_interval=0.01)
    assert fleet.ok
    assert len(calls) >= 9  # every stage of every VM
    assert len(_callback_warnings(caplog)) == 1
