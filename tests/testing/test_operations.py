"""Long-running operations: completion by polls or emulated seconds, Retry-After, the index
of pending operations."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.operations import Operation
from wac_azure.testing.backend.wire import EmuRequest

from ._helpers import RG, SUB, nsg_id, rule, rule_body

# -- completion ----------------------------------------------------------------------------


async def test_lro_completes_after_configured_polls() -> None:
    emu = ArmEmulator(lro_polls=3)
    emu.add_windows_vm("vm1")
    async with emu.session() as session:
        network = session.network(SUB)
        poller = await network.security_rules.begin_create_or_update(
            RG, "vm1-nsg", "r", rule_body()
        )
        await poller.result()
    polls = [r for r in emu.requests if r.is_poll]
    assert len(polls) == 3
    assert poller.status() == "Succeeded"


async def test_lro_completes_after_emulated_seconds() -> None:
    emu = ArmEmulator(lro_seconds=60, time_scale=0.001)  # 60 emulated s = 60 ms
    emu.add_windows_vm("vm1")
    async with emu.session(polling_interval=0.01) as session:
        network = session.network(SUB)
        start = time.monotonic()
        poller = await network.security_rules.begin_create_or_update(
            RG, "vm1-nsg", "r", rule_body()
        )
        await poller.result()
        elapsed = time.monotonic() - start
    assert 0.05 <= elapsed < 5
    assert emu.clock() >= 60


async def test_resource_get_counts_as_poll(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    compute = session.compute(SUB)
    body = {
        "location": "westeurope",
        "properties": {
            "publisher": "Microsoft.AdminCenter",
            "type": "AdminCenter",
            "typeHandlerVersion": "0.0",
            "settings": {"port": "6516"},
        },
    }
    await compute.virtual_machine_extensions.begin_create_or_update(RG, "vm1", "AdminCenter", body)
    # waiting by listing VMs, not by polling the operation (a list with $expand=instanceView
    # and no $filter is refused, as Azure does)
    vms = [vm async for vm in compute.virtual_machines.list(RG)]
    assert vms[0].resources[0].provisioning_state == "Succeeded"
    assert emu.guest(target).port == "6516"


async def test_extension_seconds_times_installs_only() -> None:
    emu = ArmEmulator(extension_seconds=100, time_scale=0.001)  # 100 ms real
    target = emu.add_windows_vm("vm1")
    assert not emu.virtual_time
    async with emu.session(polling_interval=0.01) as session:
        compute = session.compute(SUB)
        body = {
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "settings": {"port": "6516"},
            },
        }
        start = time.monotonic()
        poller = await compute.virtual_machine_extensions.begin_create_or_update(
            RG, "vm1", "AdminCenter", body
        )
        await poller.result()
        assert time.monotonic() - start >= 0.1
        # a rule write still completes on its first poll
        network = session.network(SUB)
        await (
            await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r", rule_body())
        ).result()
    assert emu.guest(target).port == "6516"
    rule_polls = [r for r in emu.requests if r.is_poll and "Microsoft.Network" in r.path]
    assert len(rule_polls) == 1


# -- Retry-After in timed mode -------------------------------------------------------------


async def _put_rule_raw(emu: ArmEmulator, name: str) -> dict[str, str]:
    url = (
        f"https://arm.emulator.localhost{nsg_id('vm1-nsg')}/securityRules/{name}"
        "?api-version=2024-05-01"
    )
    resp = await emu.handle(
        EmuRequest(
            "PUT",
            url,
            {"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
            json.dumps(rule(200 + len(emu.requests))).encode(),
        )
    )
    assert resp.status == 201
    return {k.lower(): v for k, v in resp.headers.items()}


@pytest.mark.parametrize(
    ("lro_seconds", "time_scale", "expected"),
    [
        (0.4, 1.0, "1"),  # under a real second, real time: never "0" (the 30 s fallback)
        (2.5, 1.0, "3"),  # whole seconds, rounded up
        (5.0, 0.1, "0"),  # compressed: the client's (compressed) polling interval
        (50.0, 0.5, "5"),
    ],
)
async def test_retry_after_is_whole_seconds(
    lro_seconds: float, time_scale: float, expected: str
) -> None:
    emu = ArmEmulator(seed=0, lro_seconds=lro_seconds, time_scale=time_scale, lro_retry_after=True)
    emu.add_windows_vm("vm1")
    headers = await _put_rule_raw(emu, "r1")
    assert headers["retry-after"] == expected
    int(headers["retry-after"])  # the SDKs deserialize it as an int


@pytest.mark.parametrize(
    ("lro_seconds", "time_scale"),
    [(0.2, 1.0), (5.0, 0.05)],  # real time: Retry-After 1; compressed: 0 + polling_interval
)
async def test_sub_second_operation_finishes_promptly_with_default_session(
    lro_seconds: float, time_scale: float
) -> None:
    emu = ArmEmulator(seed=0, lro_seconds=lro_seconds, time_scale=time_scale)
    emu.add_windows_vm("vm1")
    start = time.monotonic()
    async with emu.session() as session:  # no polling_interval given
        network = session.network(SUB)
        poller = await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r1", rule())
        await asyncio.wait_for(poller.result(), timeout=10)
    assert time.monotonic() - start < 5  # not azure-core's 30 s fallback


async def test_no_retry_after_on_operation_answers_by_default() -> None:
    """Real ARM seldom sends Retry-After on 201/202 (AZURE_FACTS §6: no recording has one)."""
    emu = ArmEmulator(seed=0, lro_seconds=5.0)
    emu.add_windows_vm("vm1")
    headers = await _put_rule_raw(emu, "r1")
    assert "retry-after" not in headers
    poll = await emu.handle(
        EmuRequest("GET", headers["azure-asyncoperation"], {"Authorization": f"Bearer {emu.token}"})
    )
    assert poll.json()["status"] == "InProgress"
    assert "Retry-After" not in poll.headers


# -- pending operations are indexed --------------------------------------------------------


def _op(emu: ArmEmulator, n: int, rid: str, *, duration: float | None) -> Operation:
    return emu.ops.add(
        Operation(
            id=f"op{n}",
            namespace="Microsoft.Compute",
            location="westeurope",
            subscription=SUB,
            resource_id=rid,
            kind="put",
            started=emu.clock(),
            duration=duration,
            polls_needed=2,
        )
    )


def test_busy_and_touch_see_only_operations_under_the_path(emu: ArmEmulator) -> None:
    a = emu.add_windows_vm("vm1")
    b = emu.add_windows_vm("vm12")
    op = _op(emu, 1, a.resource_id + "/extensions/AdminCenter", duration=None)
    assert emu.busy(a.resource_id) is op
    assert emu.busy(a.resource_id + "/extensions/AdminCenter/") is op
    assert emu.busy(b.resource_id) is None
    assert emu.busy(a.resource_id + "/extensions/Other") is None
    # a name that merely starts alike is not "under" (vm1 vs vm12)
    assert emu.busy(b.resource_id) is None
    assert emu.busy(a.resource_id[:-1]) is None  # ".../virtualMachines/vm"
    emu.touch(b.resource_id)
    assert op.polls == 0
    emu.touch(a.resource_id.upper())
    emu.touch(a.resource_id)
    assert op.done
    assert emu.busy(a.resource_id) is None
    assert emu.ops.pending() == []


def test_tick_finishes_only_due_timed_operations(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("a")
    now = emu.clock()
    ops = [_op(emu, i, f"{t.resource_id}/x/{i}", duration=float(i)) for i in range(1, 6)]
    emu.ops.tick(now + 2.5)
    assert [o.done for o in ops] == [True, True, False, False, False]
    assert {o.id for o in emu.ops.pending()} == {"op3", "op4", "op5"}
    emu.ops.tick(now + 100)
    assert all(o.done for o in ops)
    assert emu.busy(t.resource_id) is None
