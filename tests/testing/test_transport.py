"""The in-process front: transport errors for resets, virtual time for slow answers."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ServiceResponseError

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator, Fault

from ._helpers import RG, SUB


async def test_reset_fault_is_a_transport_error(emu: ArmEmulator) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "reset", method="GET")
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        with pytest.raises(ServiceResponseError):
            await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert emu.requests[0].status == 0


async def test_slow_fault_delays_virtually(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.slow(30.0), method="GET")
    start = time.monotonic()
    await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert time.monotonic() - start < 5
    assert emu.clock() >= 30


async def test_slow_fault_stays_virtual_in_process(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.slow(60.0), method="GET")
    start = time.monotonic()
    await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert time.monotonic() - start < 5
