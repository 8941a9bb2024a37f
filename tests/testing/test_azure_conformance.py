"""The emulator answers as real Azure does: each test names its source (docs/emulator.md)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure.testing import ArmEmulator, ComputePolicy, Fault, ThrottleConfig
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse

from ._helpers import ADMIN_CENTER, RG, SUB, nsg_id, rule

BASE = "https://arm.emulator.localhost"
#: Real Azure material (copies of the shared fixtures; see data/azure/README.md).
DATA = Path(__file__).parent / "data" / "azure"
_VMS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines"


async def call(
    emu: ArmEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "api-version=2024-07-01",
    raw: bytes | None = None,
    base_url: str = "",
    url_base: str = BASE,
) -> EmuResponse:
    headers = {"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"}
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sep = "&" if "?" in path else "?"
    return await emu.handle(
        EmuRequest(method, f"{url_base}{path}{sep}{query}", headers, data, base_url=base_url)
    )


def _headers(resp: EmuResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items()}


# -- 3. ARM throttling: SubscriptionRequestsThrottled --------------------------------------


async def test_arm_throttle_uses_subscription_requests_throttled() -> None:
    """errors.json arm-429-subscriptionrequeststhrottled-read."""
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(1, 0.0), compute=None))
    emu.add_windows_vm("vm1")
    assert (await call(emu, "GET", f"{_VMS}/vm1")).status == 200
    resp = await call(emu, "GET", f"{_VMS}/vm1")
    assert resp.status == 429
    err = resp.json()["error"]
    assert err["code"] == "SubscriptionRequestsThrottled"
    assert err["message"].startswith(f"Number of 'read' requests for subscription '{SUB}'")
    assert "https://aka.ms/arm-throttling" in err["message"]
    assert int(_headers(resp)["retry-after"]) >= 1


# -- 4. long-running-operation headers as recorded ------------------------------------------


async def test_compute_delete_location_is_operations_monitor_true() -> None:
    """Recording test_vm_extensions: DELETE -> 202, Location .../operations/{id}?monitor=true."""
    emu = ArmEmulator(lro_polls=2)
    emu.add_windows_vm("vm1")
    put = await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
    assert put.status == 201
    h = _headers(put)
    assert "location" not in h
    assert "retry-after" not in h
    assert (
        "/providers/Microsoft.Compute/locations/westeurope/operations/"
        in (h["azure-asyncoperation"])
    )
    for _ in range(2):
        await call(emu, "GET", h["azure-asyncoperation"].removeprefix(BASE).split("?")[0])
    delete = await call(emu, "DELETE", f"{_VMS}/vm1/extensions/AdminCenter")
    assert delete.status == 202
    h = _headers(delete)
    assert "retry-after" not in h
    op_url = h["azure-asyncoperation"].split("?")[0]
    assert op_url.split("/operations/")[0].endswith("/Microsoft.Compute/locations/westeurope")
    assert h["location"].startswith(op_url + "?monitor=true&api-version=")
    # the monitor URL answers as a Location poll: 202 while running, then the final answer
    path, _, query = h["location"].removeprefix(BASE).partition("?")
    first = await call(emu, "GET", path, query=query)
    assert first.status == 202
    second = await call(emu, "GET", path, query=query)
    assert second.status in (200, 204)


async def test_network_delete_location_is_operation_results() -> None:
    """Recording test_network_security_groups: rule DELETE -> Location .../operationResults/{id}."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.add_rule(nsg_id("vm1-nsg"), {"name": "r1", **rule(300)})
    resp = await call(emu, "DELETE", f"{nsg_id('vm1-nsg')}/securityRules/r1")
    assert resp.status == 202
    h = _headers(resp)
    assert (
        "/providers/Microsoft.Network/locations/westeurope/operations/"
        in (h["azure-asyncoperation"])
    )
    assert "/providers/Microsoft.Network/locations/westeurope/operationResults/" in h["location"]
    assert "retry-after" not in h


async def test_retry_after_on_operations_is_an_option() -> None:
    emu = ArmEmulator(lro_retry_after=True)
    emu.add_windows_vm("vm1")
    resp = await call(emu, "PUT", f"{nsg_id('vm1-nsg')}/securityRules/r1", rule(300))
    assert "retry-after" in _headers(resp)


# -- 6. nextLink from the configured base URL ----------------------------------------------


async def test_next_link_uses_the_served_base_url_not_the_host_header() -> None:
    emu = ArmEmulator(page_size=1)
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    resp = await call(
        emu, "GET", _VMS, url_base="https://evil.example:1234", base_url="https://127.0.0.1:5"
    )
    assert resp.json()["nextLink"].startswith(f"https://127.0.0.1:5{_VMS}?")
    put = await call(
        emu,
        "PUT",
        f"{nsg_id('vm1-nsg')}/securityRules/r1",
        rule(300),
        url_base="https://evil.example:1234",
        base_url="https://127.0.0.1:5",
    )
    assert _headers(put)["azure-asyncoperation"].startswith("https://127.0.0.1:5/")


async def test_next_link_over_https_points_at_the_server() -> None:
    emu = ArmEmulator(page_size=1)
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    async with emu.serve() as srv, srv.session() as session:
        compute = session.compute(SUB)
        names = [v.name async for v in compute.virtual_machines.list(RG)]
    assert sorted(names) == ["vm1", "vm2"]


async def test_in_process_transport_links_point_at_the_in_process_base() -> None:
    emu = ArmEmulator(page_size=1)
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    transport = emu.transport()
    assert transport.base_url == BASE


# -- 7. PowerState has no time ------------------------------------------------------------


async def test_power_state_status_has_no_time() -> None:
    """AZURE_FACTS §6; spec example VirtualMachine_Get_InstanceView.json."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    resp = await call(
        emu, "GET", f"{_VMS}/vm1", query="api-version=2024-07-01&$expand=instanceView"
    )
    statuses = resp.json()["properties"]["instanceView"]["statuses"]
    power = [s for s in statuses if s["code"].startswith("PowerState/")]
    prov = [s for s in statuses if s["code"].startswith("ProvisioningState/")]
    assert "time" not in power[0]
    assert "time" in prov[0]


# -- 1. $expand=instanceView on a VM list needs a valid $filter ---------------------------


@pytest.mark.parametrize(
    "path", [_VMS, f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines"]
)
async def test_list_with_instance_view_without_filter_is_400(path: str) -> None:
    """azure-mgmt-compute 39 VirtualMachinesOperations.list/list_all docstrings; AZURE_FACTS §7."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    resp = await call(emu, "GET", path, query="api-version=2024-07-01&$expand=instanceView")
    assert resp.status == 400
    err = resp.json()["error"]
    assert err["code"] == "InvalidParameter"
    assert "can only be specified if a valid $filter option is specified" in err["message"]
    bad = await call(
        emu, "GET", path, query="api-version=2024-07-01&$expand=instanceView&$filter=name eq 'x'"
    )
    assert bad.status == 400


async def test_list_with_instance_view_and_vmss_filter_is_legal() -> None:
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    vmss = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/vmss/ss"
    flt = f"virtualMachineScaleSet/id eq '{vmss}'"
    query = f"api-version=2024-07-01&$expand=instanceView&$filter={flt}"
    resp = await call(emu, "GET", _VMS, query=query)
    assert resp.status == 200
    assert resp.json()["value"] == []


async def test_list_all_status_only_answers_only_statuses() -> None:
    """AZURE_FACTS §7: a live statusOnly answer holds id, name, type, location and statuses."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
    async with emu.session() as session:
        compute = session.compute(SUB)
        vms = [vm async for vm in compute.virtual_machines.list_all(status_only="true")]
        with pytest.raises(HttpResponseError) as info:
            [vm async for vm in compute.virtual_machines.list(RG, expand="instanceView")]
    assert info.value.status_code == 400
    resp = await call(
        emu,
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines",
        query="api-version=2024-07-01&statusOnly=true",
    )
    (doc,) = resp.json()["value"]
    assert sorted(doc) == ["id", "location", "name", "properties", "type"]
    assert list(doc["properties"]) == ["instanceView"]
    assert list(doc["properties"]["instanceView"]) == ["statuses"]
    codes = [s["code"] for s in doc["properties"]["instanceView"]["statuses"]]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]
    assert [vm.name for vm in vms] == ["vm1"]


# -- 11. resource SKUs ----------------------------------------------------------------------


async def test_resource_skus_for_a_region() -> None:
    """Spec example compute.ListAvailableResourceSkusForARegion.json."""
    emu = ArmEmulator()
    resp = await call(
        emu,
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.Compute/skus",
        query="api-version=2021-07-01&$filter=location eq 'westeurope'",
    )
    assert resp.status == 200
    skus = {s["name"]: s for s in resp.json()["value"]}
    d2 = skus["Standard_D2s_v3"]
    assert d2["resourceType"] == "virtualMachines"
    assert d2["locations"] == ["westeurope"]
    caps = {c["name"]: c["value"] for c in d2["capabilities"]}
    assert caps["MemoryGB"] == "8"
    assert caps["vCPUs"] == "2"
    assert {c["name"]: c["value"] for c in skus["Standard_DS1_v2"]["capabilities"]}[
        "MemoryGB"
    ] == "3.5"
    assert all(isinstance(c["value"], str) for s in skus.values() for c in s["capabilities"])
    # the deprecated vmSizes route still answers
    sizes = await call(
        emu, "GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/vmSizes"
    )
    assert any(v["name"] == "Standard_D2s_v3" for v in sizes.json()["value"])


async def test_resource_skus_through_the_sdk() -> None:
    emu = ArmEmulator()
    async with emu.session() as session:
        compute = session.compute(SUB)
        skus = [s async for s in compute.resource_skus.list(filter="location eq 'westeurope'")]
    d2 = next(s for s in skus if s.name == "Standard_D2s_v3")
    assert {c.name: c.value for c in d2.capabilities}["MemoryGB"] == "8"


# -- 12. the VM's extension list with instance views ------------------------------------------


async def test_extension_list_with_instance_view() -> None:
    """AZURE_FACTS §7 (documented); spec example VirtualMachineExtension_List_MaximumSet_Gen."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    async with emu.session() as session:
        compute = session.compute(SUB)
        poller = await compute.virtual_machine_extensions.begin_create_or_update(
            RG, "vm1", "AdminCenter", ADMIN_CENTER
        )
        await poller.result()
        listed = await compute.virtual_machine_extensions.list(RG, "vm1", expand="instanceView")
        bare = await compute.virtual_machine_extensions.list(RG, "vm1")
    (ext,) = listed.value
    assert ext.provisioning_state == "Succeeded"
    assert ext.instance_view.statuses[0].code == "ProvisioningState/succeeded"
    assert bare.value[0].instance_view is None


# -- 5. wrong-shape bodies are 400 InvalidRequestContent, not 500 ----------------------------


_BAD_BODIES = [
    b"{not json",
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"properties": "Tcp 6516"}',
    b'{"properties": [1, 2]}',
    b'{"location": {"x": 1}, "properties": {}}',
    b'{"properties": {"securityRules": {"name": "r"}}}',
    b'{"properties": {"securityRules": ["r1"]}}',
    b'{"properties": {"settings": "port=6516", "publisher": "p", "type": "t", '
    b'"typeHandlerVersion": "1.0"}}',
]


@pytest.mark.parametrize("raw", _BAD_BODIES)
@pytest.mark.parametrize(
    "path",
    [
        nsg_id("vm1-nsg") + "/securityRules/r1",
        nsg_id("vm1-nsg"),
        f"{_VMS}/vm1/extensions/AdminCenter",
        f"{_VMS}/vm1/runCommand",
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v",
    ],
)
async def test_wrong_shape_bodies_are_400_invalid_request_content(raw: bytes, path: str) -> None:
    """ARM's 400 InvalidRequestContent ("could not be deserialized", Azure/acs-engine#2938)."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    method = "POST" if path.endswith("/runCommand") else "PUT"
    resp = await call(emu, method, path, raw=raw)
    assert resp.status == 400, resp.json()
    err = resp.json()["error"]
    assert err["code"] == "InvalidRequestContent"
    assert err["message"].startswith(
        "The request content was invalid and could not be deserialized"
    )
    assert emu.internal_errors == []


# -- 10. verbatim faults: Fault.recorded and Fault.operation_result -------------------------


def _errors() -> dict[str, dict[str, Any]]:
    with open(DATA / "errors.json", encoding="utf-8") as fh:
        return {e["id"]: e for e in json.load(fh)}


async def test_recorded_fault_answers_verbatim() -> None:
    entry = _errors()["compute-429-throttle-docs-example"]
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.recorded(entry["status"], entry["body"], entry["headers"]))
    resp = await call(emu, "GET", f"{_VMS}/vm1")
    assert resp.status == 429
    assert resp.json() == entry["body"]
    h = _headers(resp)
    assert h["retry-after"] == "1200"
    assert h["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/HighCostGet3Min;46,Microsoft.Compute/HighCostGet30Min;0"
    )
    assert emu.faults.counts == {"OperationNotAllowed": 1}
    assert (await call(emu, "GET", f"{_VMS}/vm1")).status == 200


async def test_recorded_fault_with_add_random() -> None:
    entry = _errors()["net-429-retryable-anotherop-putsubnet"]
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_random(1.0, [Fault.recorded(429, entry["body"])], methods=["PUT"])
    resp = await call(emu, "PUT", f"{nsg_id('vm1-nsg')}/securityRules/r1", rule(300))
    assert resp.status == 429
    assert resp.json() == entry["body"]


async def test_operation_result_fault_ends_the_operation_verbatim() -> None:
    entry = _errors()["net-lro-canceled-superseded-putsecurityrule"]
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.operation_result(entry["body"]), method="PUT")
    async with emu.session() as session:
        rules = session.network(SUB).security_rules
        poller = await rules.begin_create_or_update(RG, "vm1-nsg", "r1", rule(300))
        with pytest.raises(HttpResponseError) as info:
            await poller.result()
    assert "Canceled" in str(info.value)
    names = [r["name"] for r in emu.resource(nsg_id("vm1-nsg"))["properties"]["securityRules"]]
    assert "r1" not in names  # the canceled write did not stick
    op = next(iter(emu.ops.ops.values()))
    assert op.status_body() == entry["body"]


async def test_operation_preempted_preset_is_canceled() -> None:
    """errors.json compute-lro-canceled-operationpreempted: Canceled, not Failed."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT")
    resp = await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
    poll = await call(emu, "GET", _headers(resp)["azure-asyncoperation"].removeprefix(BASE))
    assert poll.json() == _errors()["compute-lro-canceled-operationpreempted"]["body"]


# -- 2. Compute throttling on top of ARM's buckets -------------------------------------------


async def test_every_compute_answer_carries_the_resource_rate_limit_header() -> None:
    """Recordings test_vm_extensions, test_vm_run_command_e2e: x-ms-ratelimit-remaining-resource."""
    emu = ArmEmulator(throttle=ThrottleConfig())
    emu.add_windows_vm("vm1")
    get = _headers(await call(emu, "GET", f"{_VMS}/vm1"))
    assert get["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/LowCostGet3Min;23999,Microsoft.Compute/LowCostGet30Min;239999"
    )
    assert get["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    put = _headers(await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER))
    assert put["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/UpdateVM3Min;1499,Microsoft.Compute/UpdateVM30Min;"
    )
    listed = _headers(await call(emu, "GET", _VMS))
    assert listed["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/HighCostGet3Min;899,"
    )
    network = _headers(await call(emu, "GET", nsg_id("vm1-nsg")))
    assert "x-ms-ratelimit-remaining-resource" not in network


async def test_update_vm_allows_twelve_writes_per_vm_then_429() -> None:
    """AZURE_FACTS §6: Update VM per resource 4/min, cap 12; errors.json compute-429 shape."""
    emu = ArmEmulator(throttle=ThrottleConfig(), lro_polls=0)
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    for _ in range(12):
        resp = await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
        assert resp.status in (200, 201)
    refused = await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
    assert refused.status == 429
    err = refused.json()["error"]
    assert err["code"] == "OperationNotAllowed"
    assert err["details"][0]["code"] == "TooManyRequests"
    assert err["details"][0]["target"] == "UpdateVM3Min"
    detail = json.loads(err["details"][0]["message"])
    assert detail["operationGroup"] == "UpdateVM3Min"
    assert detail["allowedRequestCount"] == 12
    assert int(_headers(refused)["retry-after"]) == 15  # 4 a minute: one back in 15 s
    # another VM of the subscription is not affected
    other = await call(emu, "PUT", f"{_VMS}/vm2/extensions/AdminCenter", ADMIN_CENTER)
    assert other.status == 201
    assert emu.throttle.compute_rejected == {"UpdateVM": 1}


async def test_high_cost_get_per_subscription() -> None:
    policies = (ComputePolicy("HighCostGet", per_subscription=(300, 2)),)
    emu = ArmEmulator(throttle=ThrottleConfig(compute=policies))
    emu.add_windows_vm("vm1")
    assert (await call(emu, "GET", _VMS)).status == 200
    assert (await call(emu, "GET", _VMS)).status == 200
    resp = await call(emu, "GET", _VMS)
    assert resp.status == 429
    assert resp.json()["error"]["details"][0]["target"] == "HighCostGet3Min"
    assert (await call(emu, "GET", f"{_VMS}/vm1")).status == 200  # not configured: admitted


async def test_compute_throttling_can_be_turned_off() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(compute=None), lro_polls=0)
    emu.add_windows_vm("vm1")
    for _ in range(20):
        resp = await call(emu, "PUT", f"{_VMS}/vm1/extensions/AdminCenter", ADMIN_CENTER)
        assert resp.status in (200, 201)
    assert "x-ms-ratelimit-remaining-resource" not in _headers(resp)


async def test_compute_429_reaches_the_sdk_after_its_retries() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig())
    emu.add_windows_vm("vm1")
    emu.throttle.drain_compute(SUB, "LowCostGet", f"{_VMS}/vm1")
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        with pytest.raises(HttpResponseError) as info:
            await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert info.value.status_code == 429
    assert info.value.error.code == "OperationNotAllowed"


# -- 8. overlapping writes to one NSG ---------------------------------------------------------


async def _start_rule(emu: ArmEmulator, name: str, priority: int) -> EmuResponse:
    return await call(emu, "PUT", f"{nsg_id('vm1-nsg')}/securityRules/{name}", rule(priority))


async def test_nsg_overlap_429_by_default() -> None:
    """errors.json net-429-retryable-anotherop-putsecurityrule-2016 (body shape)."""
    emu = ArmEmulator(lro_polls=5)
    emu.add_windows_vm("vm1")
    first = await _start_rule(emu, "a", 200)
    assert first.status == 201
    second = await _start_rule(emu, "b", 201)
    assert second.status == 429
    err = second.json()["error"]
    assert (err["code"], err["message"]) == ("RetryableError", "A retryable error occurred.")
    (detail,) = err["details"]
    assert detail["code"] == "RetryableErrorDueToAnotherOperation"
    assert detail["message"].startswith("Operation PutSecurityRuleOperation (")
    assert f"is updating resource {nsg_id('vm1-nsg')}." in detail["message"]
    assert "retry-after" in _headers(second)
    assert emu.nsg_conflicts.counts == {"429": 1}


async def test_nsg_overlap_409_is_another_operation_in_progress() -> None:
    """errors.json net-409-anotheroperationinprogress-subnet."""
    emu = ArmEmulator(lro_polls=5, nsg_conflicts="409")
    emu.add_windows_vm("vm1")
    await _start_rule(emu, "a", 200)
    second = await _start_rule(emu, "b", 201)
    assert second.status == 409
    err = second.json()["error"]
    assert err["code"] == "AnotherOperationInProgress"
    assert err["details"] == []
    assert "To retrieve status of the operation use uri: https://" in err["message"]


async def test_nsg_overlap_supersede_cancels_and_undoes_the_first_write() -> None:
    """errors.json net-lro-canceled-superseded-putsecurityrule."""
    emu = ArmEmulator(lro_polls=2, nsg_conflicts="supersede")
    emu.add_windows_vm("vm1")
    first = await _start_rule(emu, "a", 200)
    second = await _start_rule(emu, "b", 201)
    assert second.status == 201
    poll_a = _headers(first)["azure-asyncoperation"].removeprefix(BASE)
    body = (await call(emu, "GET", poll_a)).json()
    assert body["status"] == "Canceled"
    assert body["error"]["code"] == "Canceled"
    assert body["error"]["message"] == "Operation was canceled."
    (detail,) = body["error"]["details"]
    assert detail["code"] == "CanceledAndSupersededDueToAnotherOperation"
    b_id = _headers(second)["azure-asyncoperation"].split("/operations/")[1].split("?")[0]
    a_id = poll_a.split("/operations/")[1].split("?")[0]
    assert detail["message"] == (
        f"Operation PutSecurityRuleOperation ({a_id}) was canceled and superseded by "
        f"operation PutSecurityRuleOperation ({b_id})."
    )
    poll_b = _headers(second)["azure-asyncoperation"].removeprefix(BASE)
    for _ in range(2):
        done = (await call(emu, "GET", poll_b)).json()
    assert done["status"] == "Succeeded"
    names = [r["name"] for r in emu.resource(nsg_id("vm1-nsg"))["properties"]["securityRules"]]
    assert names == ["b"]  # the superseded rule write did not stick


async def test_nsg_overlap_policy_is_seeded() -> None:
    async def outcomes(seed: int) -> list[int]:
        emu = ArmEmulator(seed=seed, lro_polls=50, nsg_conflicts={"429": 1, "409": 1})
        emu.add_windows_vm("vm1")
        await _start_rule(emu, "a", 200)
        return [(await _start_rule(emu, f"r{i}", 300 + i)).status for i in range(12)]

    first, again = await outcomes(3), await outcomes(3)
    assert first == again
    assert set(first) == {409, 429}


# -- 9. concurrent VM operations preempt; scripted extension failures --------------------------


_EXT = f"{_VMS}/vm1/extensions/AdminCenter"


async def test_second_extension_write_conflicts_by_default() -> None:
    """errors.json compute-409-conflict-concurrent-request."""
    emu = ArmEmulator(lro_polls=3)
    emu.add_windows_vm("vm1")
    assert (await call(emu, "PUT", _EXT, ADMIN_CENTER)).status == 201
    second = await call(emu, "DELETE", _EXT)
    assert second.status == 409
    assert second.json()["error"]["code"] == "Conflict"
    assert second.json()["error"]["message"].startswith(
        "The request failed due to conflict with a concurrent request."
    )


async def test_second_extension_write_can_preempt_the_first() -> None:
    """errors.json compute-lro-canceled-operationpreempted."""
    emu = ArmEmulator(lro_polls=2, vm_conflicts="preempt")
    emu.add_windows_vm("vm1")
    first = await call(emu, "PUT", _EXT, ADMIN_CENTER)
    other = {**ADMIN_CENTER, "properties": {**ADMIN_CENTER["properties"], "settings": {}}}
    second = await call(emu, "PUT", f"{_VMS}/vm1/extensions/Other", other)
    assert second.status == 201
    poll = _headers(first)["azure-asyncoperation"].removeprefix(BASE)
    body = (await call(emu, "GET", poll)).json()
    assert body["status"] == "Canceled"
    assert body["error"] == {
        "code": "OperationPreempted",
        "message": "The operation has been preempted by a more recent operation.",
    }
    with pytest.raises(LookupError):
        emu.resource(_EXT)  # the preempted install did not stick
    assert emu.vm_conflicts.counts == {"preempt": 1}


@pytest.mark.parametrize(
    "code", ["VMExtensionProvisioningTimeout", "VMExtensionHandlerNonTransientError"]
)
async def test_scripted_extension_failure_keeps_the_extension_failed(code: str) -> None:
    """errors.json compute-ext-provisioningtimeout / compute-ext-handler-nontransient-*."""
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, code, method="PUT")
    async with emu.session() as session:
        compute = session.compute(SUB)
        # an NSG rule write is not an extension write: it is not faulted
        await (
            await session.network(SUB).security_rules.begin_create_or_update(
                RG, "vm1-nsg", "r1", rule(300)
            )
        ).result()
        poller = await compute.virtual_machine_extensions.begin_create_or_update(
            RG, "vm1", "AdminCenter", ADMIN_CENTER
        )
        with pytest.raises(HttpResponseError) as info:
            await poller.result()
        ext = await compute.virtual_machine_extensions.get(
            RG, "vm1", "AdminCenter", expand="instanceView"
        )
    assert code in str(info.value)
    assert ext.provisioning_state == "Failed"
    assert ext.instance_view.statuses[0].code == "ProvisioningState/failed/0"
    assert "AdminCenter" in ext.instance_view.statuses[0].message
    assert emu.faults.counts == {code: 1}


# -- 13. seeding recorded documents serves them back as recorded ------------------------------


def _recorded_gets() -> list[dict[str, Any]]:
    with open(DATA / "recorded_gets.json", encoding="utf-8") as fh:
        entries: list[dict[str, Any]] = json.load(fh)
    return entries


@pytest.mark.parametrize(
    "entry",
    _recorded_gets(),
    ids=lambda e: f"{e['recording'].split('.test_')[-1][:40]}#{e['interaction']}",
)
async def test_seeded_recordings_are_served_as_recorded(entry: dict[str, Any]) -> None:
    """Every resource GET in the recordings (RECORDINGS_SOURCES.md), instance view included."""
    emu = ArmEmulator()
    # the recording's resources as they were up to this request (a VM before its extension)
    for other in _recorded_gets():
        if other["recording"] == entry["recording"] and other["interaction"] < entry["interaction"]:
            emu.seed(json.loads(other["body"]))
    recorded = json.loads(entry["body"])
    emu.seed(recorded)
    url = urllib.parse.urlsplit(entry["uri"])
    resp = await emu.handle(
        EmuRequest(
            "GET",
            f"{BASE}{url.path}?{url.query}",
            {"Authorization": f"Bearer {emu.token}"},
        )
    )
    assert resp.status == 200
    assert resp.json() == recorded


async def test_list_by_location_is_a_high_cost_get() -> None:
    """FACTS §6/§7: VM lists by location count as High Cost Get."""
    emu = ArmEmulator(throttle=ThrottleConfig())
    emu.add_windows_vm("vm1", location="westeurope")
    emu.add_windows_vm("vm2", location="northeurope")
    async with emu.session() as session:
        compute = session.compute(SUB)
        names = [vm.name async for vm in compute.virtual_machines.list_by_location("westeurope")]
    assert names == ["vm1"]
    resp = await call(
        emu,
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/virtualMachines",
    )
    assert _headers(resp)["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/HighCostGet3Min;898,"
    )


async def test_operation_result_fault_with_add_random() -> None:
    entry = _errors()["compute-lro-canceled-operationpreempted"]
    emu = ArmEmulator()
    emu.add_windows_vm("vm1")
    emu.faults.add_random(1.0, [Fault.operation_result(entry["body"])], methods=["PUT"])
    # reads are never given a write-only fault
    assert (await call(emu, "GET", f"{_VMS}/vm1")).status == 200
    resp = await call(emu, "PUT", _EXT, ADMIN_CENTER)
    assert resp.status == 201
    poll = await call(emu, "GET", _headers(resp)["azure-asyncoperation"].removeprefix(BASE))
    assert poll.json() == entry["body"]
    with pytest.raises(LookupError):
        emu.resource(_EXT)  # not kept: the write is undone


def test_verbatim_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="HTTP status"):
        Fault.recorded(42, {})
    with pytest.raises(ValueError, match="terminal 'status'"):
        Fault.operation_result({"status": "InProgress"})
    f = Fault.recorded(429, '{"error": {"code": "X"}}', {"a": ["1", "2"]})
    assert f.headers == (("a", "1,2"),)
    assert f.name == "X"


# -- the generic resources list pages as ARM does (#18) -----------------------------------

_GENERIC = f"/subscriptions/{SUB}/resources"


async def test_generic_resources_list_pages_at_arms_thousand_not_page_size() -> None:
    # ARM's generic list answers up to 1,000 resources a page (docs/emulator.md, "Paging");
    # the emulator's small page_size (50 in the benchmark) is for the other lists only.
    emu = ArmEmulator(page_size=1)
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    resp = await call(emu, "GET", _GENERIC)
    body = resp.json()
    assert len(body["value"]) > 2  # VMs, NICs, disks... in one page
    assert "nextLink" not in body
    small = ArmEmulator(generic_page_size=1)
    small.add_windows_vm("vm1")
    assert "nextLink" in (await call(small, "GET", _GENERIC)).json()
    with pytest.raises(ValueError, match="generic_page_size"):
        ArmEmulator(generic_page_size=0)
