"""ArmEmulator's entry point and inspection: auth, throttling before faults, fault answers,
request records, reset, lookups, action names, reproducible IDs, emulator bugs as 500s."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import AzureSession, ExtensionManager
from wac_azure.testing import (
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    FaultInjector,
    InternalError,
    RequestRecord,
    ThrottleConfig,
)
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.router import Router

from ._helpers import RG, SUB, request, rule_body

SUB_PATH = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"


# -- requests, records, lookups ------------------------------------------------------------


async def test_requests_are_recorded(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    compute = session.compute(SUB)
    await compute.virtual_machines.get(RG, "vm1")
    with pytest.raises(HttpResponseError):
        await compute.virtual_machines.get(RG, "missing")
    records = emu.requests
    assert [(r.method, r.status) for r in records] == [("GET", 200), ("GET", 404)]
    assert records[0].subscription_id == SUB
    assert "api-version" in records[0].query
    assert records[0].path.endswith("/virtualMachines/vm1")
    assert emu.writes() == []


async def test_reset_forgets_everything(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.deny("*")
    emu.reset()
    with pytest.raises(LookupError):
        emu.resource(target.resource_id)
    assert emu.requests == []
    with pytest.raises(HttpResponseError) as info:
        await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert info.value.error.code == "ResourceGroupNotFound"


def test_resource_lookup_and_add_rule() -> None:
    emu = ArmEmulator()
    target = emu.add_windows_vm("vm1")
    vm = emu.resource(target.resource_id.upper().replace("VIRTUALMACHINES", "virtualMachines"))
    assert vm["name"] == "vm1"
    vm["name"] = "changed"
    assert emu.resource(target.resource_id)["name"] == "vm1"  # a copy
    nsg_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    nic = emu.resource(nsg_id)
    nsg_id = nic["properties"]["networkSecurityGroup"]["id"]
    emu.add_rule(nsg_id, {"name": "pre", **rule_body(300)})
    assert emu.resource(nsg_id + "/securityRules/pre")["properties"]["priority"] == 300
    with pytest.raises(LookupError):
        emu.resource(nsg_id + "/securityRules/none")
    with pytest.raises(ValueError, match="unknown os"):
        emu.add_windows_vm("x", os="3000")


def test_action_names() -> None:
    base = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
    assert ArmEmulator.action_of(
        "PUT", base + "/Microsoft.Network/networkSecurityGroups/n/securityRules/r"
    ) == (
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
        base + "/Microsoft.Network/networkSecurityGroups/n/securityRules/r",
    )
    assert ArmEmulator.action_of("POST", base + "/Microsoft.Compute/virtualMachines/v/runCommand")[
        0
    ] == ("Microsoft.Compute/virtualMachines/runCommand/action")
    assert ArmEmulator.action_of("GET", f"/subscriptions/{SUB}/resourcegroups/{RG}")[0] == (
        "Microsoft.Resources/subscriptions/resourceGroups/read"
    )


async def test_handle_directly_without_token() -> None:
    emu = ArmEmulator()
    url = f"https://x/subscriptions/{SUB}/resourcegroups/{RG}?api-version=1"
    resp = await emu.handle(EmuRequest("GET", url))
    assert resp.status == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    resp = await emu.handle(EmuRequest("GET", url, {"Authorization": "Bearer " + emu.token}))
    assert resp.json()["error"]["code"] == "ResourceGroupNotFound"
    assert [r.status for r in emu.requests] == [401, 404]


# -- faults and throttling inside handle() -------------------------------------------------


async def test_status_fault_surfaces_with_arm_code(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "409", method="PUT", path_regex="/securityRules/")
    with pytest.raises(HttpResponseError) as info:
        await session.network(SUB).security_rules.begin_create_or_update(
            RG, "vm1-nsg", "r", rule_body()
        )
    assert info.value.status_code == 409
    assert info.value.error.code == "AnotherOperationInProgress"  # Network's real 409 pair
    assert emu.requests[-1].status == 409


async def test_retried_5xx_fault_then_success(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "503", method="GET")
    vm = await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert vm.name == "vm1"
    assert [r.status for r in emu.requests] == [503, 200]


async def test_lro_failed_fault_leaves_resource_unchanged(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT")
    network = session.network(SUB)
    poller = await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r", rule_body())
    with pytest.raises(HttpResponseError) as info:
        await poller.result()
    assert "OperationPreempted" in str(info.value)
    assert [r.name async for r in network.security_rules.list(RG, "vm1-nsg")] == []
    # the same write goes through on retry
    await (
        await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r", rule_body())
    ).result()


async def test_throttle_headers_and_429() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(2, 0.0)))
    emu.add_windows_vm("vm1")
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        compute = session.compute(SUB)
        raw: list[Any] = []
        await compute.virtual_machines.get(RG, "vm1", cls=lambda resp, *a: raw.append(resp))
        headers = raw[0].http_response.headers
        assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
        await compute.virtual_machines.get(RG, "vm1")
        with pytest.raises(HttpResponseError) as info:
            await compute.virtual_machines.get(RG, "vm1")
    assert info.value.status_code == 429
    assert info.value.error.code == "SubscriptionRequestsThrottled"
    assert info.value.response.headers["Retry-After"]


async def test_default_throttle_never_refuses_but_sends_headers(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    raw: list[Any] = []
    await session.network(SUB).network_security_groups.get(
        RG, "vm1-nsg", cls=lambda resp, *a: raw.append(resp)
    )
    assert raw[0].http_response.headers["x-ms-ratelimit-remaining-subscription-reads"] == "250"


# -- throttling before faults --------------------------------------------------------------


READS = "x-ms-ratelimit-remaining-subscription-reads"
WRITES = "x-ms-ratelimit-remaining-subscription-writes"


async def test_a_fault_answer_carries_rate_headers_and_takes_a_token() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(5, 0.0)))
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "500", method="GET")
    faulted = await emu.handle(request(emu, "GET", target.resource_id))
    assert faulted.status == 500
    assert faulted.headers[READS] == "4"  # the faulted request took a token
    assert "x-ms-request-id" in faulted.headers
    fine = await emu.handle(request(emu, "GET", target.resource_id))
    assert fine.status == 200
    assert fine.headers[READS] == "3"
    assert emu.throttle.admitted["reads"] == 2
    assert emu.faults.counts == {"500": 1}


async def test_every_fault_answer_has_the_header_even_unthrottled() -> None:
    emu = ArmEmulator()  # throttle off: headers show a full bucket
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "409", method="PUT")
    answer = await emu.handle(
        request(emu, "PUT", f"{target.resource_id}/extensions/AdminCenter"),
    )
    assert answer.status == 409
    assert answer.headers[WRITES] == "200"


async def test_a_throttled_request_is_not_faulted() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(2, 0.0)))
    target = emu.add_windows_vm("vm1")
    emu.throttle.drain(DEFAULT_SUBSCRIPTION, "reads")
    emu.faults.add_scripted(1, "503", method="GET")
    refused = await emu.handle(request(emu, "GET", target.resource_id))
    assert refused.status == 429
    assert refused.headers[READS] == "0"
    assert emu.faults.total == 0  # the scripted rule still waits for its first request


async def test_a_request_failing_auth_is_neither_faulted_nor_counted() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(5, 0.0)))
    target = emu.add_windows_vm("vm1")
    emu.faults.add_random(1.0, kinds=["500"])
    answer = await emu.handle(request(emu, "GET", target.resource_id, auth=False))
    assert answer.status == 401
    assert READS not in answer.headers
    assert emu.faults.total == 0
    assert emu.throttle.admitted["reads"] == 0


# -- seeded operation and request IDs ------------------------------------------------------


def _log(records: list[RequestRecord]) -> list[tuple[str, str, int, tuple[tuple[str, str], ...]]]:
    return [(r.method, r.path, r.status, tuple(sorted(r.query.items()))) for r in records]


async def _install_flow(seed: int) -> ArmEmulator:
    emu = ArmEmulator(seed=seed, faults=FaultInjector(seed))
    target = emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    emu.faults.add_random(0.2, kinds=["500", "503"])
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT", path_regex="/extensions/")
    async with emu.session() as session:
        manager = ExtensionManager(session)
        state = await manager.install(target)
        assert state.provisioning_state == "Succeeded"
        await manager.uninstall(target)
    return emu


async def test_same_seed_same_request_log_with_faults() -> None:
    first = await _install_flow(3)
    second = await _install_flow(3)
    assert first.faults.total > 1  # the flow really met faults
    assert first.faults.counts.get("OperationPreempted") == 1
    polls = [r.path for r in first.requests if r.is_poll]
    assert len(polls) >= 2
    assert _log(first.requests) == _log(second.requests)
    # operation IDs come from the seed: another seed, other IDs
    third = await _install_flow(4)
    other_polls = {r.path for r in third.requests if r.is_poll}
    assert not other_polls & set(polls)


async def test_operation_ids_and_request_ids_repeat_after_reset() -> None:
    emu = ArmEmulator(seed=11, lro_polls=0)  # operations end at once: no busy NSG

    def build() -> str:
        target = emu.add_windows_vm("vm1")
        nsg = target.resource_id.replace(
            "Microsoft.Compute/virtualMachines/vm1",
            "Microsoft.Network/networkSecurityGroups/vm1-nsg",
        )
        for name in ("one", "two"):
            emu.add_rule(
                nsg, {"name": name, "properties": {"priority": 200, "direction": "Inbound"}}
            )
        return nsg

    async def delete(nsg: str, rule: str) -> tuple[str, str]:
        answer = await emu.handle(request(emu, "DELETE", f"{nsg}/securityRules/{rule}"))
        assert answer.status == 202
        return answer.headers["Location"], answer.headers["x-ms-request-id"]

    nsg = build()
    before = await delete(nsg, "one")
    assert "/operationResults/" in before[0]
    emu.reset()
    assert build() == nsg
    after = await delete(nsg, "one")
    assert before == after
    second = await delete(nsg, "two")
    assert second[0] != after[0]  # a new operation, a new ID
    assert second[1] != after[1]


# -- emulator bugs -------------------------------------------------------------------------


async def _explode(emu: ArmEmulator, req: EmuRequest, params: dict[str, str]) -> EmuResponse:
    raise KeyError("properties")


def _buggy(emu: ArmEmulator, template: str = f"{SUB_PATH}/providers/Test.Emulator/bug") -> str:
    """Put a route that raises in front of the emulator's own (a stand-in for a bug)."""
    router = Router()
    router.add("GET", template, _explode)
    router.extend(emu._router)
    emu._router = router
    return template


async def test_a_handler_exception_is_an_arm_500_recorded_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = ArmEmulator()
    path = _buggy(emu)
    with caplog.at_level(logging.ERROR, logger="wac_azure.testing._emulator"):
        answer = await emu.handle(request(emu, "GET", path))
    assert answer.status == 500
    error = answer.json()["error"]
    assert error == {
        "code": "InternalServerError",
        "message": "emulator bug: KeyError: 'properties'",
    }
    (bug,) = emu.internal_errors
    assert isinstance(bug, InternalError)
    assert (bug.method, bug.path, bug.error_type) == ("GET", path, "KeyError")
    assert "raise KeyError" in bug.traceback
    assert str(bug) == f"GET {path}: KeyError: 'properties'"
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "emulator bug" in logged.getMessage()
    assert "KeyError" in logged.getMessage()
    assert emu.requests[-1].status == 500
    emu.reset()
    assert emu.internal_errors == []


async def test_the_sdk_sees_the_500_after_its_retries() -> None:
    emu = ArmEmulator()
    target = emu.add_windows_vm("vm1")
    _buggy(
        emu,
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}",
    )
    async with emu.session() as session:
        compute = session.compute(target.subscription_id)
        with pytest.raises(HttpResponseError) as caught:
            await compute.virtual_machines.get(target.resource_group, "vm1")
    assert caught.value.status_code == 500
    assert caught.value.error.code == "InternalServerError"
    assert "emulator bug: KeyError" in caught.value.error.message
    assert len(emu.internal_errors) >= 2  # azure-core retried the 500
    assert all(b.error_type == "KeyError" for b in emu.internal_errors)


pytest_plugins = ["pytester"]


def test_the_conftest_guard_fails_a_test_with_emulator_bugs(pytester: pytest.Pytester) -> None:
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    pytester.makeconftest(conftest.read_text(encoding="utf-8"))
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_inner="""
        from wac_azure.testing.backend.wire import EmuRequest

        async def explode(emu, req, params):
            raise ValueError("boom")

        async def test_hits_a_bug(emu):
            emu._router.add("GET", "/subscriptions/{sub}/providers/Test.Emulator/bug", explode)
            req = EmuRequest(
                "GET",
                "https://x/subscriptions/s/providers/Test.Emulator/bug",
                {"Authorization": "Bearer " + emu.token},
            )
            assert (await emu.handle(req)).status == 500

        async def test_clean(emu):
            emu.add_windows_vm("vm1")
            assert emu.internal_errors == []

        def test_without_the_fixture():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*emulator bug*ValueError: boom*"])
