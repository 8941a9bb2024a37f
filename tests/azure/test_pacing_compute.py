"""Compute's own buckets in the pacer, and the 429s that are not throttling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure._azure.pacing import (
    ComputeConfig,
    PacingConfig,
    SubscriptionPacer,
    is_busy_429,
    parse_remaining_resource,
    update_vm_target,
)
from wac_azure._core.access import PrivateAccess
from wac_azure._workflows.fleet.engine import enable_many
from wac_azure.testing import ArmEmulator, Fault
from wac_azure.testing.backend.faults import FaultKind

from .test_pacing import FakeTime

SUB = "00000000-0000-0000-0000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
BASE = "https://management.azure.com"


def make(**kw: object) -> tuple[SubscriptionPacer, FakeTime]:
    t = FakeTime()
    config = PacingConfig(reserve=0.0)
    pacer = SubscriptionPacer(
        SUB,
        config,
        clock=t.clock,
        sleep=t.sleep,
        compute=ComputeConfig(**kw),  # type: ignore[arg-type]
    )
    return pacer, t


def test_update_vm_writes_are_told_apart() -> None:
    vm = VM.lower()
    assert update_vm_target("PUT", BASE + VM + "/extensions/AdminCenter?api-version=1") == vm
    assert update_vm_target("DELETE", BASE + VM + "/extensions/AdminCenter") == vm
    assert update_vm_target("POST", BASE + VM + "/runCommand?api-version=1") == vm
    assert update_vm_target("PUT", BASE + VM + "/runCommands/wac") == vm
    assert update_vm_target("PATCH", BASE + VM) == vm
    assert update_vm_target("GET", BASE + VM + "/extensions/AdminCenter") is None
    assert update_vm_target("POST", BASE + VM + "/restart") is None
    assert update_vm_target("DELETE", BASE + VM) is None
    nsg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"
    assert update_vm_target("PUT", BASE + nsg + "/securityRules/r") is None


def test_remaining_resource_header_is_read() -> None:
    value = "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199"
    assert parse_remaining_resource(value) == {
        "Microsoft.Compute/PutVM3Min": 239,
        "Microsoft.Compute/PutVM30Min": 1199,
    }
    assert parse_remaining_resource("Microsoft.Compute/LowCostGet3Min;3995") == {
        "Microsoft.Compute/LowCostGet3Min": 3995
    }
    assert parse_remaining_resource(None) == {}


@given(st.text())
def test_remaining_resource_header_never_raises_on_junk(value: str) -> None:
    assert all(isinstance(v, int) for v in parse_remaining_resource(value).values())


async def test_one_vm_gets_twelve_writes_then_four_a_minute() -> None:
    pacer, t = make()
    for _ in range(12):
        await pacer.acquire_update_vm(VM)
        pacer.observe_update_vm(VM, status=200, headers={}, retry_after=None, codes=[])
    assert t.slept == []
    await pacer.acquire_update_vm(VM)
    assert sum(t.slept) == pytest.approx(15.0)  # 4 a minute
    other = VM.replace("vm1", "vm2")
    before = len(t.slept)
    await pacer.acquire_update_vm(other)  # another VM has its own bucket
    assert len(t.slept) == before


async def test_a_subscription_gets_1500_vm_writes_then_500_a_minute() -> None:
    pacer, t = make()
    for i in range(1500):
        await pacer.acquire_update_vm(VM.replace("vm1", f"vm{i}"))
    assert t.slept == []
    await pacer.acquire_update_vm(VM.replace("vm1", "vm-last"))
    assert sum(t.slept) == pytest.approx(60 / 500)


async def test_remaining_resource_lowers_the_subscription_model() -> None:
    pacer, _ = make()
    await pacer.acquire_update_vm(VM)
    header = "Microsoft.Compute/PutVM3Min;3,Microsoft.Compute/PutVM30Min;1199"
    pacer.observe_update_vm(
        VM,
        status=200,
        headers={"x-ms-ratelimit-remaining-resource": header},
        retry_after=None,
        codes=[],
    )
    assert pacer.tokens("compute-update") == pytest.approx(3)
    assert pacer.compute_remaining["Microsoft.Compute/PutVM3Min"] == 3


async def test_a_compute_429_holds_compute_writes_not_arm_writes() -> None:
    pacer, t = make()
    await pacer.acquire_update_vm(VM)
    pacer.observe_update_vm(
        VM,
        status=429,
        headers={},
        retry_after=5.0,
        codes=["operationnotallowed", "toomanyrequests"],
    )
    assert pacer.compute_throttled == 1
    await pacer.acquire("writes")  # a Network write is not held
    assert t.slept == []
    await pacer.acquire_update_vm(VM.replace("vm1", "vm2"))
    assert sum(t.slept) == pytest.approx(5.0)


def test_network_resource_busy_429_is_not_throttling() -> None:
    assert is_busy_429(429, ["retryableerror", "retryableerrorduetoanotheroperation"])
    assert is_busy_429(429, ["retryableerror", "referencedresourcenotprovisioned"])
    assert not is_busy_429(429, ["subscriptionrequeststhrottled"])
    assert not is_busy_429(429, ["operationnotallowed", "toomanyrequests"])
    assert not is_busy_429(409, ["retryableerrorduetoanotheroperation"])


async def test_busy_429_on_a_rule_write_slows_nothing_else() -> None:
    emu = ArmEmulator(seed=0)
    targets = [emu.add_windows_vm(f"vm{i}", nsg="nic") for i in range(3)]
    busy = Fault(
        FaultKind.STATUS,
        status=429,
        code="RetryableError",
        message="A retryable error occurred.",
        retry_after=1,
        name="busy",
    )
    emu.faults.add_scripted(1, busy, method="PUT", path_regex=r"/securityRules/")
    async with emu.session() as session:
        result = await enable_many(
            session, targets, access=PrivateAccess(sources=("10.10.0.0/16",))
        )
        assert session.pacer.throttled == 0  # today every 429 counted as throttling
        assert session.pacer.busy == 1
    assert emu.faults.counts == {"busy": 1}
    assert result.ok, str(result)
    assert result.throttled == 0
