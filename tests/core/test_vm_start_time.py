"""`vm.recently_started` and diagnose's `recent.vm_started`, from what Azure really reports.

Real instance views carry no `time` on `PowerState/*` (AZURE_FACTS §6): only the
`ProvisioningState/*` status has one, the end of the VM's last operation. Every
instance view here is built without a PowerState time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import pytest

from wac_azure import CheckStatus, FindingStatus
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.diagnosis import recent_vm_finding
from wac_azure._core.facts import VmFacts, parse_power_state

from .requirements.build import facts
from tests._shared import ARM_FIXTURES

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
FIXTURE = ARM_FIXTURES / "compute.VirtualMachine_Get_InstanceView.json"


def vm_json(power: str = "running", provisioned: dt.datetime | None = None) -> dict[str, Any]:
    """A VM GET with an instance view as Azure returns it: no time on PowerState."""
    statuses: list[dict[str, Any]] = []
    if provisioned is not None:
        statuses.append(
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "time": provisioned.isoformat(),
            }
        )
    statuses.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": "VM"})
    return {"properties": {"instanceView": {"statuses": statuses}}}


def from_view(view: dict[str, Any]) -> VmFacts:
    power, started = parse_power_state(view)
    return attrs.evolve(facts(), power_state=power, started_at=started, read_at=NOW)


def test_the_real_instance_view_has_no_power_state_time() -> None:
    view = json.loads(FIXTURE.read_text())["responses"]["200"]["body"]  # GET .../instanceView
    power = [s for s in view["statuses"] if s["code"].startswith("PowerState/")]
    assert power
    assert all("time" not in s for s in power)
    f = from_view({"properties": {"instanceView": view}})
    check = evaluate_requirements(f, now=NOW).check("vm.recently_started")
    # Judged from the last operation (2019), never presented as a start time.
    assert check.status is CheckStatus.PASS
    assert "at least" in check.message
    assert not check.message.startswith("the VM started")
    assert any("ProvisioningState" in e for e in check.evidence)
    assert any("no start time" in e for e in check.evidence)


@pytest.mark.parametrize(
    ("age", "want"),
    [
        (20, CheckStatus.WARN),
        (59, CheckStatus.WARN),
        (60, CheckStatus.PASS),
        (7200, CheckStatus.PASS),
    ],
)
def test_check_judges_from_the_last_operation(age: int, want: CheckStatus) -> None:
    f = from_view(vm_json(provisioned=NOW - dt.timedelta(seconds=age)))
    check = evaluate_requirements(f, now=NOW).check("vm.recently_started")
    assert check.status is want
    if want is CheckStatus.WARN:
        assert "may have just started" in check.message
        assert "about a minute" in check.message
        assert f"{age} s ago" in check.message
    else:
        assert "at least" in check.message
        assert not check.message.startswith("the VM started")


def test_check_without_any_time_is_unknown_with_the_reason() -> None:
    f = from_view(vm_json(provisioned=None))
    assert f.started_at is None
    check = evaluate_requirements(f, now=NOW).check("vm.recently_started")
    assert check.status is CheckStatus.UNKNOWN
    assert "PowerState" in check.message
    assert check.remedy is not None
    assert "get-instance-view" in check.remedy
    assert "activity-log" in check.remedy


def test_finding_recent_operation_warns_without_claiming_a_start() -> None:
    f = from_view(vm_json(provisioned=NOW - dt.timedelta(seconds=20)))
    finding = recent_vm_finding(f, NOW)
    assert finding.status is FindingStatus.WARN
    assert "2026-01-01 11:59:40 UTC" in finding.title
    assert "may just have started" in finding.title
    assert "20 s ago" in finding.evidence[0]
    assert "wait a minute" in (finding.remedy or "")
    assert "started_at" not in finding.details
    assert finding.details["last_operation_at"] == (NOW - dt.timedelta(seconds=20)).isoformat()


def test_finding_old_operation_is_ok_and_says_at_least() -> None:
    f = from_view(vm_json(provisioned=NOW - dt.timedelta(hours=3)))
    finding = recent_vm_finding(f, NOW)
    assert finding.status is FindingStatus.OK
    assert "at least since then" in finding.evidence[0]
    assert not any(e.startswith("started at") for e in finding.evidence)


def test_finding_without_any_time_is_unknown() -> None:
    finding = recent_vm_finding(from_view(vm_json(provisioned=None)), NOW)
    assert finding.status is FindingStatus.UNKNOWN
    assert "PowerState status has no time" in finding.evidence[0]
    assert "activity log" in (finding.remedy or "")


def test_finding_on_a_stopped_vm_is_unknown() -> None:
    finding = recent_vm_finding(from_view(vm_json("deallocated", NOW)), NOW)
    assert finding.status is FindingStatus.UNKNOWN
    assert "not running" in finding.title
