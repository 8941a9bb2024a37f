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
from wac_azure.testing import ArmEmulator, RequestRecord


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
    planned = await wac_azure.enable_many(session, [target], dry_run=True)
    would_write: list[wac_azure.VmPlan] = list(planned.plans)
    print(len(would_write), planned.dry_run)
    print(passed, changes, status, skipped, result.url)

    preview: wac_azure.EnablePreview = result
    would_be: str | None = preview.url
    try:
        done = await wac_azure.enable(session, target, port=6516)
    except wac_azure.AuthenticationError as exc:
        print("sign in first:", exc.__cause__)
        return
    port: int = done.port.port
    source: wac_azure.PortSource = done.port.source
    url: str = done.url
    rules: int = len(done.apply.created)
    installed: bool = done.extension.installed
    print(would_be, port, source, url, rules, installed, done.plan.port)

    await wac_azure.enable(session, target, port=443, allow_well_known_port=True)

    emu = ArmEmulator(seed=7)
    vm = emu.add_windows_vm("vm1")
    async with emu.session(credential=emu.credential()) as emulated:
        checked = await wac_azure.enable(emulated, vm, dry_run=True)
    first: RequestRecord = emu.requests[0]
    headers: dict[str, str] = first.response_headers
    print(checked.url, first.request_body, first.response_json, headers.get("x-ms-request-id"))

    either = await wac_azure.enable(session, target, dry_run=bool(passed))
    if isinstance(either, wac_azure.EnableResult):
        print(either.port.port)
    else:
        print(either.url)


asyncio.run(main(wac_azure.AzureSession.__new__(wac_azure.AzureSession)))
"""

#: Each mistake (a script that differs from GOOD in one place) and the error mypy must
#: find in it.
MISTAKES = {
    # a misspelt attribute of the report
    "misspelt": (
        GOOD.replace("result.report.passed", "result.report.pased"),
        'has no attribute "pased"',
    ),
    # a dry run reads no port inside the VM: EnablePreview has none
    "preview_port": (
        GOOD.replace("would_be: str | None = preview.url", "would_be = preview.port.port"),
        '"EnablePreview" has no attribute "port"',
    ),
    # nor does it apply anything
    "preview_apply": (
        GOOD.replace("would_be: str | None = preview.url", "would_be = preview.apply"),
        '"EnablePreview" has no attribute "apply"',
    ),
    # a dry run's URL may be None (public access asked of a VM without a public IP)
    "preview_url": (
        GOOD.replace("would_be: str | None = preview.url", "would_be: str = preview.url"),
        'Incompatible types in assignment (expression has type "str | None"',
    ),
    # dry_run=True does not give an EnableResult
    "dry_run_is_not_a_result": (
        GOOD.replace("preview: wac_azure.EnablePreview = result", "preview = result.port"),
        '"EnablePreview" has no attribute "port"',
    ),
    # a result of a bool dry_run is one or the other: narrow it first
    "unnarrowed": (
        GOOD.replace("print(either.url)", "print(either.port)"),
        '"EnablePreview" has no attribute "port"',
    ),
    # a real fleet run is a FleetResult, not a FleetPlan: it has no plans
    "fleet_plans": (
        GOOD.replace("print(len(would_write), planned.dry_run)", "print(fleet.plans)"),
        '"FleetResult" has no attribute "plans"',
    ),
    # the port is chosen as an int
    "port_type": (
        GOOD.replace("port=6516)", 'port="6516")'),
        'No overload variant of "enable" matches argument types',
    ),
}


@pytest.mark.slow
def test_a_users_script_type_checks_and_each_mistake_does_not(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    paths = [str(good)]
    for name, (text, _) in MISTAKES.items():
        assert text != GOOD, name  # the replacement found its place
        (tmp_path / f"bad_{name}.py").write_text(text)
        paths.append(str(tmp_path / f"bad_{name}.py"))
    args = ["--strict", "--no-incremental", "--python-version", "3.11", *paths]
    out, _err, _status = api.run(args)
    lines = [line for line in out.splitlines() if ": error:" in line]
    assert not [line for line in lines if "good.py" in line], out
    for name, (_, expected) in MISTAKES.items():
        mine = [line for line in lines if f"bad_{name}.py" in line]
        assert any(expected in line for line in mine), (name, out)
