"""Concurrent enables of one VM in one process share one operation: one salt, one write."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from wac_azure import AzureSession, VmTarget, enable, enable_many
from wac_azure.testing import ArmEmulator


def _extension_puts(emu: ArmEmulator) -> list[str]:
    return [r.path for r in emu.requests if r.method == "PUT" and "/extensions/" in r.path]


def _run_commands(emu: ArmEmulator) -> list[str]:
    return [r.path for r in emu.requests if r.method == "POST" and r.path.endswith("/runCommand")]


def _deployed_salt(emu: ArmEmulator, vm: VmTarget) -> str:
    ext = emu.resource(f"{vm.resource_id}/extensions/AdminCenter")
    return str(ext["properties"]["settings"]["salt"])


async def test_two_enables_of_one_vm_write_the_extension_once() -> None:
    emu = ArmEmulator(seed=3, lro_seconds=0.2)
    vm = emu.add_windows_vm("vm1")
    session = emu.session()
    a, b = await asyncio.gather(enable(session, vm), enable(session, vm))
    ext_puts = _extension_puts(emu)
    assert len(ext_puts) == 1, ext_puts
    assert a.url == b.url
    assert a.extension is not None
    assert b.extension is not None
    assert _deployed_salt(emu, vm)
    assert a.changed
    assert not b.changed


@pytest.mark.parametrize("sessions", ["one session", "five sessions"])
async def test_five_concurrent_enables_share_one_salt_and_one_extension_write(
    sessions: str,
) -> None:
    """Five callers in one process (one session, or one session each, as five notebook cells
    or five tasks of one service would be) enable the same VM at once."""
    emu = ArmEmulator(seed=5, lro_seconds=0.2)
    vm = emu.add_windows_vm("vm1")
    count = 1 if sessions == "one session" else 5
    async with contextlib.AsyncExitStack() as stack:
        opened: list[AzureSession] = [
            await stack.enter_async_context(emu.session()) for _ in range(count)
        ]
        results = await asyncio.gather(*(enable(opened[i % count], vm) for i in range(5)))
    ext_puts = _extension_puts(emu)
    assert len(ext_puts) == 1, ext_puts
    assert len(_run_commands(emu)) == 1  # the port is read once, by the one that installed
    salt = _deployed_salt(emu, vm)
    assert {r.extension.salt for r in results if r.extension is not None} == {salt}
    assert [r.changed for r in results].count(True) == 1
    assert len({r.url for r in results}) == 1


async def test_a_cancelled_enable_lets_the_next_one_through() -> None:
    emu = ArmEmulator(seed=6, lro_seconds=0.2)
    vm = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        first = asyncio.ensure_future(enable(session, vm))
        second = asyncio.ensure_future(enable(session, vm))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        result = await asyncio.wait_for(second, 30)
    assert result.extension is not None
    assert result.extension.salt == _deployed_salt(emu, vm)
    assert len(_extension_puts(emu)) == 1


@pytest.mark.parametrize("first", ["enable first", "enable_many first"])
async def test_enable_and_enable_many_of_one_vm_share_one_operation(first: str) -> None:
    """An enable and a fleet run covering the same VM at once (two tasks of one service):
    one extension write with one salt; the other finds it done."""
    emu = ArmEmulator(seed=7, lro_seconds=0.2)
    vm = emu.add_windows_vm("vm1")
    other = emu.add_windows_vm("vm2")
    async with emu.session() as session:
        single = enable(session, vm)
        fleet = enable_many(session, [vm, other], poll_interval=0.05)
        if first == "enable first":
            one, many = await asyncio.gather(single, fleet)
        else:
            many, one = await asyncio.gather(fleet, single)
    assert many.ok, str(many)
    puts = [p for p in _extension_puts(emu) if "/virtualMachines/vm1/" in p]
    assert len(puts) == 1, puts
    assert one.extension is not None
    assert one.extension.salt == _deployed_salt(emu, vm)


async def test_two_fleets_over_overlapping_vms_do_not_deadlock() -> None:
    emu = ArmEmulator(seed=8, lro_seconds=0.1)
    vms = [emu.add_windows_vm(f"vm{i}") for i in range(4)]
    async with emu.session() as session:
        a, b = await asyncio.wait_for(
            asyncio.gather(
                enable_many(session, vms[:3], poll_interval=0.05),
                enable_many(session, list(reversed(vms[1:])), poll_interval=0.05),
            ),
            60,
        )
    assert a.ok
    assert b.ok
    for vm in vms:
        assert len([p for p in _extension_puts(emu) if f"/virtualMachines/{vm.name}/" in p]) == 1
