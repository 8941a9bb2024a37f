"""A user's script written against the documented API passes `mypy --strict`; a misspelt
attribute fails it (the public API is typed, not Any)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

GOOD = """
from __future__ import annotations

import asyncio

import wac_azure
from wac_azure import ProgressEvent


async def main(session: wac_azure.AzureSession) -> None:
    target = wac_azure.VmTarget.parse(
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
        "/providers/Microsoft.Compute/virtualMachines/vm1"
    )
    events: list[ProgressEvent] = []

    def on_event(ev: ProgressEvent) -> None:
        print(ev.stage.value)

    result = await wac_azure.enable(session, target, progress=print, dry_run=True)
    await wac_azure.enable(session, target, progress=events.append)
    await wac_azure.enable(session, target, progress=on_event)
    passed: bool = result.report.passed
    changes: int = len(result.plan.changes)
    status: wac_azure.CheckStatus = result.report.check("os.supported").status
    fleet = await wac_azure.enable_many(session, [target], progress=print)
    skipped = [o.report.summary() for o in fleet.outcomes if o.report is not None]
    print(passed, changes, status, skipped, result.url)


asyncio.run(main(wac_azure.AzureSession.__new__(wac_azure.AzureSession)))
"""

MISSPELT = GOOD.replace("result.report.passed", "result.report.pased")


@pytest.mark.slow
def test_a_users_script_type_checks_and_a_typo_does_not(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    bad = tmp_path / "bad.py"
    good.write_text(GOOD)
    bad.write_text(MISSPELT)
    args = ["--strict", "--no-incremental", "--python-version", "3.11", str(good), str(bad)]
    out, _err, _status = api.run(args)
    lines = [line for line in out.splitlines() if ": error:" in line]
    assert not [line for line in lines if "good.py" in line], out
    assert any("bad.py" in line and 'has no attribute "pased"' in line for line in lines), out
