"""enable_many decides like enable: unknown checks never block a VM, a deployed proxy is kept."""

from __future__ import annotations

import re
from typing import Any

from wac_azure import (
    AzureSession,
    OutcomeStatus,
    RequirementChecker,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator

EXT_PUT = re.compile(r"/extensions/AdminCenter$", re.IGNORECASE)


def _ext_puts(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "PUT" and EXT_PUT.search(r.path)]


async def test_enable_many_does_not_skip_a_vm_whose_os_is_unknown(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("custom", custom_image=True, report_os=False)
    report = await RequirementChecker(session).check(target)
    assert report.check("os.supported").status.value == "unknown"
    result = await enable_many(session, [target])
    [outcome] = result.outcomes
    assert outcome.status is OutcomeStatus.ENABLED, outcome
    single = emu.add_windows_vm("custom2", custom_image=True, report_os=False)
    assert (await enable(session, single)).url  # enable() agrees: unknowns do not block


async def test_enable_many_keeps_a_deployed_proxy(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await enable(session, target, proxy="http://proxy.example:3128")
    emu.requests.clear()
    result = await enable_many(session, [target])
    assert result.ok
    assert _ext_puts(emu) == []  # nothing to rewrite: the proxy is kept
    ext = emu.resource(f"{target.resource_id}/extensions/AdminCenter")
    assert ext["properties"]["settings"]["proxy"]["address"] == "http://proxy.example:3128"
