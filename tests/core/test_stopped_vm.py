"""The diagnosis of a VM that is not running: its power state is the first problem."""

from __future__ import annotations

import attrs
import pytest

from wac_azure import FindingStatus
from wac_azure._core.diagnosis import power_finding

from .requirements.build import facts


@pytest.mark.parametrize("state", ["deallocated", "stopped", "deallocating", "stopping"])
def test_a_vm_that_is_not_running_is_a_problem(state: str) -> None:
    found = power_finding(attrs.evolve(facts(), power_state=state))
    assert found is not None
    assert found.step == 1
    assert found.code == "vm.running"
    assert found.status is FindingStatus.PROBLEM
    assert state in found.title
    assert f"PowerState/{state}" in found.evidence[0]
    assert "az vm start --resource-group" in (found.remedy or "")


def test_a_starting_vm_is_a_warning() -> None:
    found = power_finding(attrs.evolve(facts(), power_state="starting"))
    assert found is not None
    assert found.status is FindingStatus.WARN


@pytest.mark.parametrize("state", ["running", None])
def test_running_or_unknown_gives_no_finding(state: str | None) -> None:
    assert power_finding(attrs.evolve(facts(), power_state=state)) is None
