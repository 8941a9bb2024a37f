"""Live: check, plan (dry run) and, opted in, enable and disable on a real VM (``-m live``)."""

from __future__ import annotations

import os

import pytest

from wac_azure import (
    AzureSession,
    CheckStatus,
    RequirementChecker,
    VmTarget,
    disable,
    enable,
    read_vm_facts,
)

from tests.live.recorder import RecordingTransport

pytestmark = pytest.mark.live

_WRITES = {"PUT", "PATCH", "DELETE"}


def _writes(traffic: RecordingTransport) -> list[str]:
    return [
        f"{i['request']['method']} {i['request']['uri']}"
        for i in traffic.interactions
        if i["request"]["method"] in _WRITES
        or (i["request"]["method"] == "POST" and "/runcommand" in i["request"]["uri"].lower())
    ]


async def test_the_subscription_lists_its_vms(
    live_session: AzureSession, live_subscription: str, live_traffic: RecordingTransport
) -> None:
    compute = live_session.compute(live_subscription)
    seen = []
    async for vm in compute.virtual_machines.list_all():
        assert vm.id
        seen.append(VmTarget.parse(vm.id))
        if len(seen) >= 5:
            break
    assert all(t.subscription_id.lower() == live_subscription.lower() for t in seen)
    assert _writes(live_traffic) == []


async def test_check_reads_the_vm_and_judges_it(
    live_session: AzureSession, live_vm: VmTarget, live_traffic: RecordingTransport
) -> None:
    facts = await read_vm_facts(live_session, live_vm)
    assert facts.vm_resource_id.lower() == live_vm.resource_id.lower()
    assert facts.location
    report = await RequirementChecker(live_session).check(live_vm)
    assert report.checks
    assert all(isinstance(c.status, CheckStatus) for c in report.checks)
    assert _writes(live_traffic) == []


async def test_plan_is_a_dry_run_that_writes_nothing(
    live_session: AzureSession, live_vm: VmTarget, live_traffic: RecordingTransport
) -> None:
    result = await enable(live_session, live_vm, dry_run=True)
    assert result.dry_run
    assert result.plan is not None
    assert _writes(live_traffic) == []


@pytest.mark.skipif(
    os.environ.get("WAC_AZURE_LIVE_WRITE") != "1",
    reason="enable/disable change the VM: set WAC_AZURE_LIVE_WRITE=1 to run them",
)
async def test_enable_then_disable_on_the_vm(live_session: AzureSession, live_vm: VmTarget) -> None:
    enabled = await enable(live_session, live_vm)
    assert enabled.url
    again = await enable(live_session, live_vm)
    assert not again.changed  # a second run writes nothing
    disabled = await disable(live_session, live_vm)
    assert disabled.target == live_vm
