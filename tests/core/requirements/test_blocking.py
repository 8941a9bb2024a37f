"""blocking_checks: one rule for what stops install, enable and enable_many."""

from __future__ import annotations

import pytest

from wac_azure import CheckStatus, InvalidInputError, VmTarget
from wac_azure._core.decide import PLANNABLE_CHECKS, blocking_checks
from wac_azure._core.findings import Check, RequirementReport

from .build import NOW

T = VmTarget.parse(
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.Compute/virtualMachines/vm1"
)


def report(**statuses: CheckStatus) -> RequirementReport:
    checks = tuple(
        Check(code.replace("__", "."), status, "evidence") for code, status in statuses.items()
    )
    return RequirementReport(T, checks, NOW)


F, U, W, P = CheckStatus.FAIL, CheckStatus.UNKNOWN, CheckStatus.WARN, CheckStatus.PASS


@pytest.mark.parametrize(
    ("statuses", "install", "enable"),
    [
        ({"memory__minimum": F}, ["memory.minimum"], ["memory.minimum"]),
        ({"network__inbound_path": F}, [], []),
        ({"network__exposure": F}, [], ["network.exposure"]),
        ({"network__outbound_wac": F}, ["network.outbound_wac"], []),
        ({"network__outbound_entra": F}, ["network.outbound_entra"], []),
        ({"os__supported": U, "vm__recently_started": U, "connect__bastion": W}, [], []),
        ({"os__supported": P, "cloud__public": F}, ["cloud.public"], ["cloud.public"]),
    ],
)
def test_what_blocks_each_purpose(
    statuses: dict[str, CheckStatus], install: list[str], enable: list[str]
) -> None:
    r = report(**statuses)
    assert [c.code for c in blocking_checks(r, purpose="install")] == install
    assert [c.code for c in blocking_checks(r, purpose="enable")] == enable


def test_unknowns_never_block_but_are_not_a_pass() -> None:
    r = report(os__supported=U)
    assert blocking_checks(r, purpose="install") == ()
    assert blocking_checks(r, purpose="enable") == ()
    assert not r.passed


def test_the_plan_repairs_the_network_checks() -> None:
    assert {"network.outbound_wac", "network.inbound_path"} <= PLANNABLE_CHECKS


def test_unknown_purpose_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="purpose"):
        blocking_checks(report(), purpose="delete")
