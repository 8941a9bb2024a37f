"""timeout= on RequirementChecker.check, read_vm_facts and discover (emulator + real SDK)."""

from __future__ import annotations

import time

import pytest

from wac_azure import (
    AzureSession,
    InvalidInputError,
    OperationTimeoutError,
    RequirementChecker,
    discover,
    read_vm_facts,
)
from wac_azure.testing import ArmEmulator, Fault


async def test_check_read_and_discover_raise_operation_timeout() -> None:
    emu = ArmEmulator(lro_seconds=0)  # real-time sleeps, so a slow answer is really slow
    async with emu.session() as session:
        await _timeouts(emu, session)


async def _timeouts(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await RequirementChecker(session).check(target)  # warm up the clients
    started = time.monotonic()
    emu.faults.add_scripted(1, Fault.slow(3.0), method="GET", path_regex="/virtualMachines/vm1$")
    with pytest.raises(OperationTimeoutError, match="vm1"):
        await RequirementChecker(session).check(target, timeout=0.2)
    other = emu.add_windows_vm("vm2")
    emu.faults.add_scripted(1, Fault.slow(3.0), method="GET", path_regex="/virtualMachines/vm2$")
    with pytest.raises(OperationTimeoutError, match="vm2"):
        await read_vm_facts(session, other, timeout=0.2)
    emu.faults.add_scripted(1, Fault.slow(3.0), method="GET", path_regex="/virtualMachines$")
    with pytest.raises(OperationTimeoutError):
        await discover(session, target.subscription_id, timeout=0.2)
    assert time.monotonic() - started < 4  # none of them waited for the slow answer
    # Without a fault, the same calls finish within their limit.
    report = await RequirementChecker(session).check(target, timeout=30)
    assert report.target == target
    found = await discover(session, target.subscription_id, timeout=30)
    assert [t.name for t in found] == ["vm1", "vm2"]


@pytest.mark.parametrize("bad", [0, -1, "5"])
async def test_bad_timeouts_are_refused(
    emu: ArmEmulator, session: AzureSession, bad: object
) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(InvalidInputError, match="timeout"):
        await RequirementChecker(session).check(target, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="timeout"):
        await read_vm_facts(session, target, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="timeout"):
        await discover(session, target.subscription_id, timeout=bad)  # type: ignore[arg-type]
