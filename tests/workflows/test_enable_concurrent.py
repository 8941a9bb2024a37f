"""Two concurrent enables of one VM in one session share the work: one extension write."""

from __future__ import annotations

import asyncio

from wac_azure import enable
from wac_azure.testing import ArmEmulator


async def test_two_enables_of_one_vm_write_the_extension_once() -> None:
    emu = ArmEmulator(seed=3, lro_seconds=0.2)
    vm = emu.add_windows_vm("vm1")
    session = emu.session()
    a, b = await asyncio.gather(enable(session, vm), enable(session, vm))
    ext_puts = [r for r in emu.requests if r.method == "PUT" and "/extensions/" in r.path]
    assert len(ext_puts) == 1, [r.path for r in ext_puts]
    assert a.url == b.url
    ext = emu.resource(f"{vm.resource_id}/extensions/AdminCenter")
    assert a.extension is not None
    assert b.extension is not None
    assert ext["properties"]["settings"]["salt"]
    assert a.changed
    assert not b.changed
