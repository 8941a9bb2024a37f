"""Seeded fault injection: presets, scripted faults, reproducibility."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.faults import (
    PRESETS,
    Fault,
    FaultInjector,
    FaultKind,
    is_operation_poll,
)
from wac_azure.testing.backend.wire import EmuRequest

BASE = "https://arm.emulator.localhost"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg"
AUTH = {"Authorization": "Bearer test"}


def req(method: str, path: str, *, auth: bool = True) -> EmuRequest:
    return EmuRequest(method, f"{BASE}{path}?api-version=2024-07-01", AUTH if auth else {})


def traffic(n_vms: int = 30) -> list[EmuRequest]:
    out = []
    for i in range(n_vms):
        vm = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm{i}"
        out.append(req("GET", vm))
        out.append(req("PUT", f"{vm}/extensions/AdminCenter"))
        out.append(
            req("GET", f"{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/op-{i}")
        )
        out.append(req("DELETE", f"{vm}/extensions/AdminCenter"))
    return out


def run(inj: FaultInjector, requests: list[EmuRequest]) -> list[str | None]:
    return [None if (f := inj.pick(r)) is None else f.name for r in requests]


def test_presets() -> None:
    f = Fault.throttled()
    assert (f.kind, f.status, f.code, f.retry_after, f.name) == (
        FaultKind.STATUS,
        429,
        "SubscriptionRequestsThrottled",
        1,
        "429",
    )
    assert Fault.internal_error().status == 500
    assert Fault.internal_error().code == "InternalServerError"
    assert Fault.unavailable().code == "ServiceUnavailable"
    c = Fault.conflict_in_progress()
    assert (c.status, c.code) == (409, "AnotherOperationInProgress")
    assert "Another operation on this or dependent resource is in progress" in c.message
    r = Fault.retryable_another_operation()
    assert (r.kind, r.status, r.name) == (FaultKind.RECORDED, 429, "429-anotheroperation")
    assert r.body_json()["error"]["code"] == "RetryableError"
    assert r.body_json()["error"]["details"][0]["code"] == "RetryableErrorDueToAnotherOperation"
    p = Fault.operation_preempted()
    assert p.body_json()["status"] == "Canceled"
    assert p.body_json()["error"]["code"] == "OperationPreempted"
    assert Fault.reset().kind == "reset"
    lro = Fault.lro_failed("InternalExecutionError")
    assert (lro.kind, lro.code, lro.name) == (
        FaultKind.LRO_FAILED,
        "InternalExecutionError",
        lro.code,
    )
    assert Fault.lro_failed().operation_error()["code"] == "OperationPreempted"
    assert Fault.slow(1.5).delay == 1.5
    assert set(PRESETS) >= {"429", "500", "503", "409", "reset", "OperationPreempted", "slow"}


def test_status_fault_response() -> None:
    answer = Fault.throttled(retry_after=3).to_response({"x-extra": "1"})
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.headers["x-extra"] == "1"
    assert answer.json() == {
        "error": {
            "code": "SubscriptionRequestsThrottled",
            "message": Fault.throttled(retry_after=3).message,
        }
    }
    assert "Retry-After" not in Fault.internal_error().to_response().headers
    with pytest.raises(ValueError, match="no HTTP answer"):
        Fault.reset().to_response()


def test_same_seed_same_faults() -> None:
    requests = traffic()
    a, b = FaultInjector(seed=7), FaultInjector(seed=7)
    for inj in (a, b):
        inj.add_random(0.3)
    first, second = run(a, requests), run(b, requests)
    assert first == second
    assert a.counts == b.counts
    assert 0 < a.total < len(requests)
    other = FaultInjector(seed=8)
    other.add_random(0.3)
    assert run(other, requests) != first


def test_random_faults_ignore_interleaving_of_other_resources() -> None:
    requests = traffic()
    a, b = FaultInjector(seed=3), FaultInjector(seed=3)
    a.add_random(0.5)
    b.add_random(0.5)
    # Other order: every VM's requests in reverse VM order, operation polls
    # (keyed by their route, since operation IDs are fresh per run) in the same order.
    polls = [r for r in requests if is_operation_poll(r)]
    others = [r for r in requests if not is_operation_poll(r)]
    shuffled = others[::-1] + polls
    forward = dict(zip(map(id, requests), run(a, requests), strict=True))
    other_order = dict(zip(map(id, shuffled), run(b, shuffled), strict=True))
    assert forward == other_order
    assert any(forward.values())


def test_probability_is_roughly_honoured() -> None:
    inj = FaultInjector(seed=1)
    inj.add_random(0.2, kinds="500")
    picks = [
        inj.pick(req("GET", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm{i}"))
        for i in range(2000)
    ]
    hits = sum(p is not None for p in picks)
    assert 300 < hits < 500
    assert inj.counts == {"500": hits}
    none = FaultInjector(seed=1)
    none.add_random(0.0)
    assert run(none, traffic()) == [None] * len(traffic())


@pytest.mark.parametrize("kind", ["OperationPreempted", "409"])
def test_write_only_faults_only_hit_writes(kind: str) -> None:
    inj = FaultInjector(seed=0)
    inj.add_random(1.0, kinds=[kind])
    names = run(inj, traffic(5))
    methods = [r.method for r in traffic(5)]
    assert all((n is not None) == (m != "GET") for n, m in zip(names, methods, strict=True))
    # a scripted one waits for a write, too
    scripted = FaultInjector()
    scripted.add_scripted(1, kind)
    assert run(scripted, traffic(1))[:2] == [None, kind]


def test_mixed_random_faults_on_reads_skip_write_only_kinds() -> None:
    inj = FaultInjector(seed=5)
    inj.add_random(1.0, kinds=["409", "500"])
    reads = [r for r in traffic(10) if r.method == "GET"]
    assert set(run(inj, reads)) == {"500"}


def test_scripted_nth_matching_request() -> None:
    inj = FaultInjector()
    inj.add_scripted(2, "409", method="PUT", path_regex=r"/extensions/")
    names = run(inj, traffic(4))
    assert names.count("409") == 1
    # the second PUT is request index 5 (GET, PUT, poll, DELETE, GET, PUT, ...)
    assert names.index("409") == 5
    assert inj.injected[0].method == "PUT"
    assert inj.injected[0].path.endswith("vm1/extensions/AdminCenter")
    assert run(inj, traffic(4)) == [None] * 16  # once only


def test_scripted_first_and_custom_fault() -> None:
    inj = FaultInjector()
    inj.add_scripted(1, Fault.slow(0.01))
    inj.add_scripted(1, "reset", method="DELETE")
    names = run(inj, traffic(1))
    assert names == ["slow", None, None, "reset"]
    assert inj.counts == {"slow": 1, "reset": 1}


def test_polls_can_be_excluded() -> None:
    poll = req("GET", f"{SUB}/providers/Microsoft.Network/locations/westeurope/operations/abc")
    result = req(
        "GET", f"{SUB}/providers/Microsoft.Compute/locations/westeurope/operationResults/x"
    )
    assert is_operation_poll(poll)
    assert is_operation_poll(result)
    assert not is_operation_poll(req("GET", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm"))
    with_polls = FaultInjector()
    with_polls.add_random(1.0, kinds=["500"])
    assert with_polls.pick(poll) is not None
    without = FaultInjector(include_polls=False)
    without.add_random(1.0, kinds=["500"])
    without.add_scripted(1, "503")
    assert without.pick(poll) is None
    assert (
        without.pick(req("GET", f"{RG}/providers/Microsoft.Compute/virtualMachines/vm")) is not None
    )


def test_unauthenticated_and_disabled_are_never_faulted() -> None:
    inj = FaultInjector()
    inj.add_random(1.0)
    assert inj.pick(req("GET", f"{RG}/x", auth=False)) is None
    inj.enabled = False
    assert inj.pick(req("GET", f"{RG}/x")) is None
    assert inj.counts == {}
    inj.enabled = True
    assert inj.pick(req("GET", f"{RG}/x")) is not None
    inj.clear()
    assert inj.counts == {}
    assert inj.pick(req("GET", f"{RG}/x")) is None


def test_bad_rules_are_refused() -> None:
    inj = FaultInjector()
    with pytest.raises(ValueError, match="probability"):
        inj.add_random(1.5)
    with pytest.raises(ValueError, match="unknown fault"):
        inj.add_random(0.1, kinds=["418"])
    with pytest.raises(ValueError, match="empty"):
        inj.add_random(0.1, kinds=[])
    with pytest.raises(ValueError, match="nth"):
        inj.add_scripted(0, "500")
    with pytest.raises(ValueError, match="delay"):
        Fault.slow(-1)


# -- through the emulator, with the real aio SDK clients --------------------------------

_OP_ID = re.compile(r"/[0-9a-f-]{36}$")

RULE = {
    "properties": {
        "protocol": "Tcp",
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "6516",
        "access": "Allow",
        "priority": 1000,
        "direction": "Inbound",
    }
}


async def _workload(emu: ArmEmulator) -> list[tuple[str, str | int]]:
    """A fixed sequence of SDK calls; what each one ended with."""
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(4)]
    outcomes: list[tuple[str, str | int]] = []
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        for t in targets:
            compute = session.compute(t.subscription_id)
            network = session.network(t.subscription_id)
            for _ in range(3):
                try:
                    await compute.virtual_machines.get(t.resource_group, t.name)
                    outcomes.append((t.name, 200))
                except HttpResponseError as exc:
                    outcomes.append((t.name, exc.status_code or 0))
                except (ServiceRequestError, ServiceResponseError):
                    outcomes.append((t.name, "reset"))
            try:
                poller = await network.security_rules.begin_create_or_update(
                    t.resource_group, f"{t.name}-nsg", "wac", RULE
                )
                await poller.result()
                outcomes.append((t.name, "rule"))
            except HttpResponseError as exc:
                outcomes.append((t.name, exc.error.code if exc.error else exc.status_code or 0))
            except (ServiceRequestError, ServiceResponseError):
                outcomes.append((t.name, "reset"))
    return outcomes


async def test_same_seed_same_faults_through_the_sdk() -> None:
    runs = []
    for _ in range(2):
        emu = ArmEmulator(seed=11)
        emu.faults.add_random(0.35, kinds=["500", "409", "reset", "OperationPreempted"])
        outcomes = await _workload(emu)
        # operation IDs are fresh per run: compare the faults' routes
        faults = [(f.method, _OP_ID.sub("/*", f.path), f.fault.name) for f in emu.faults.injected]
        runs.append((outcomes, faults))
    assert runs[0] == runs[1]
    outcomes, injected = runs[0]
    assert injected, "seed 11 at 35 % should fault something"
    assert any(o != 200 and o != "rule" for _, o in outcomes)


async def test_lro_failure_fault_ends_the_operation_failed(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "InternalExecutionError", method="PUT", path_regex="/securityRules/")
    nsg = (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    async with emu.session() as session:
        rules = session.network(target.subscription_id).security_rules
        poller = await rules.begin_create_or_update(target.resource_group, "vm1-nsg", "wac", RULE)
        with pytest.raises(HttpResponseError) as info:
            await poller.result()
        assert "InternalExecutionError" in str(info.value)
        with pytest.raises(LookupError):
            emu.resource(f"{nsg}/securityRules/wac")
        poller = await rules.begin_create_or_update(target.resource_group, "vm1-nsg", "wac", RULE)
        assert (await poller.result()).provisioning_state == "Succeeded"
    assert emu.faults.counts == {"InternalExecutionError": 1}


async def test_status_faults_reach_the_sdk(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "500", method="GET")
    emu.faults.add_scripted(1, "409")  # the first write
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        compute = session.compute(target.subscription_id)
        with pytest.raises(HttpResponseError) as first:
            await compute.virtual_machines.get(target.resource_group, "vm1")
        assert first.value.status_code == 500
        assert first.value.error is not None
        assert first.value.error.code == "InternalServerError"
        vm = await compute.virtual_machines.get(target.resource_group, "vm1")
        assert vm.name == "vm1"
        rules = session.network(target.subscription_id).security_rules
        with pytest.raises(HttpResponseError) as second:
            await rules.begin_create_or_update(target.resource_group, "vm1-nsg", "wac", RULE)
        assert second.value.status_code == 409
        assert second.value.error is not None
        assert second.value.error.code == "AnotherOperationInProgress"
    assert [r.status for r in emu.requests] == [500, 200, 409]
    assert emu.faults.counts == {"500": 1, "409": 1}


async def test_throttled_fault_carries_retry_after(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.throttled(retry_after=7))
    headers = {"Authorization": f"Bearer {emu.token}"}
    url = f"{BASE}{target.resource_id}?api-version=2024-07-01"
    answer = await emu.handle(EmuRequest("GET", url, headers))
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert (await emu.handle(EmuRequest("GET", url, headers))).status == 200
    # a request that fails authentication is never faulted, and does not count
    emu.faults.add_scripted(2, "503")  # counts from now: 401 skipped, 200, then 503
    assert (await emu.handle(EmuRequest("GET", url, {"Authorization": "Bearer x"}))).status == 401
    assert (await emu.handle(EmuRequest("GET", url, headers))).status == 200
    assert (await emu.handle(EmuRequest("GET", url, headers))).status == 503


def test_random_faults_are_transient_by_default() -> None:
    from wac_azure.testing.backend.faults import PRESETS, TRANSIENT_PRESETS

    assert "VMExtensionProvisioningTimeout" in PRESETS
    assert not [k for k in TRANSIENT_PRESETS if k.startswith("VMExtension")]
    assert {"429", "500", "503", "409", "reset", "OperationPreempted"} <= set(TRANSIENT_PRESETS)
