"""Public server names, throttle-before-faults, seeded operation IDs, emulator bugs as 500s."""

from __future__ import annotations

import json
import logging
import ssl
import urllib.request
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

import wac_azure.testing as testing_pkg
from wac_azure import ExtensionManager
from wac_azure.testing import (
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    FaultInjector,
    InternalError,
    RequestRecord,
    ServerHandle,
    ThrottleConfig,
    run_server_forever,
    serve_in_thread,
)
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.fronts import server as server_module
from wac_azure.testing.routes.router import Router

BASE = "https://arm.emulator.localhost"
SUB = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"
READS = "x-ms-ratelimit-remaining-subscription-reads"
WRITES = "x-ms-ratelimit-remaining-subscription-writes"


def request(emu: ArmEmulator, method: str, path: str, *, auth: bool = True) -> EmuRequest:
    headers = {"Authorization": f"Bearer {emu.token}"} if auth else {}
    return EmuRequest(method, f"{BASE}{path}?api-version=2024-07-01", headers)


# -- 2. the server fronts are public ----------------------------------------------------


def test_server_fronts_are_public_names() -> None:
    assert testing_pkg.__all__ == sorted(
        testing_pkg.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n)
    )
    for name in ("ServerHandle", "serve_in_thread", "run_server_forever", "InternalError"):
        assert name in testing_pkg.__all__
    assert ServerHandle is server_module.ServerHandle
    assert serve_in_thread is server_module.serve_in_thread
    assert run_server_forever is server_module.run_server_forever
    docs = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
    if docs.exists():
        assert "testing._server" not in docs.read_text(encoding="utf-8")


def test_serve_in_thread_through_the_public_name() -> None:
    emu = ArmEmulator()
    target = emu.add_windows_vm("vm1")
    with serve_in_thread(emu) as srv:
        assert isinstance(srv, ServerHandle)
        tls = ssl.create_default_context(cafile=srv.ca_file)
        url = f"{srv.base_url}{target.resource_id}?api-version=2024-07-01"
        ask = urllib.request.Request(url, headers={"Authorization": f"Bearer {srv.token}"})
        with urllib.request.urlopen(ask, context=tls, timeout=10) as answer:
            assert json.loads(answer.read())["name"] == "vm1"
    assert [(r.method, r.status) for r in emu.requests] == [("GET", 200)]


# -- 3. throttling before faults ----------------------------------------------------------


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


# -- 4. seeded operation IDs ------------------------------------------------------------


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


# -- 5. emulator bugs -------------------------------------------------------------------


async def _explode(emu: ArmEmulator, req: EmuRequest, params: dict[str, str]) -> EmuResponse:
    raise KeyError("properties")


def _buggy(emu: ArmEmulator, template: str = f"{SUB}/providers/Test.Emulator/bug") -> str:
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
