"""The emulator core: LROs, faults and throttling in handle(), records, evaluator, guest."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import AzureSession
from wac_azure.testing import (
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    Fault,
    FirewallRule,
    GuestModel,
    ThrottleConfig,
)
from wac_azure.testing.backend.guest import run_script
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed
from wac_azure.testing.backend.state import ArmError
from wac_azure.testing.backend.wire import EmuRequest
from wac_azure.testing.routes.network import validate_rule

SUB = DEFAULT_SUBSCRIPTION
RG = "rg-wac"


def rule_body(priority: int = 200) -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "direction": "Inbound",
            "priority": priority,
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "6516",
        }
    }


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
    # waiting by listing VMs with their instance views, not by polling the operation
    vms = [vm async for vm in compute.virtual_machines.list(RG, expand="instanceView")]
    assert vms[0].resources[0].provisioning_state == "Succeeded"
    assert emu.guest(target).sme_port == "6516"


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


# -- faults and throttling inside handle() ---------------------------------------------------


async def test_status_fault_surfaces_with_arm_code(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "409", method="PUT", path_regex="/securityRules/")
    with pytest.raises(HttpResponseError) as info:
        await session.network(SUB).security_rules.begin_create_or_update(
            RG, "vm1-nsg", "r", rule_body()
        )
    assert info.value.status_code == 409
    assert info.value.error.code == "RetryableErrorDueToAnotherOperation"
    assert emu.requests[-1].status == 409


async def test_retried_5xx_fault_then_success(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "503", method="GET")
    vm = await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert vm.name == "vm1"
    assert [r.status for r in emu.requests] == [503, 200]


async def test_reset_fault_is_a_transport_error(emu: ArmEmulator) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "reset", method="GET")
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        with pytest.raises(ServiceResponseError):
            await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert emu.requests[0].status == 0


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


async def test_slow_fault_delays_virtually(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.slow(30.0), method="GET")
    start = time.monotonic()
    await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert time.monotonic() - start < 5
    assert emu.clock() >= 30


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
    assert info.value.error.code == "TooManyRequests"
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


async def test_handle_directly_without_token() -> None:
    emu = ArmEmulator()
    url = f"https://x/subscriptions/{SUB}/resourcegroups/{RG}?api-version=1"
    resp = await emu.handle(EmuRequest("GET", url))
    assert resp.status == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    resp = await emu.handle(EmuRequest("GET", url, {"Authorization": "Bearer " + emu.token}))
    assert resp.json()["error"]["code"] == "ResourceGroupNotFound"
    assert [r.status for r in emu.requests] == [401, 404]


# -- the emulator's own NSG evaluator ---------------------------------------------------------


def _nsg(*rules: tuple[str, int, str, str, str, str]) -> dict[str, Any]:
    from wac_azure.testing.backend.builders import make_nsg

    nsg = make_nsg(SUB, RG, "n", "westeurope")
    for name, prio, direction, access, dst, port in rules:
        nsg["properties"]["securityRules"].append(
            {
                "name": name,
                "properties": {
                    "protocol": "Tcp",
                    "priority": prio,
                    "direction": direction,
                    "access": access,
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": dst,
                    "destinationPortRange": port,
                },
            }
        )
    return nsg


WAC = Endpoint(tag="WindowsAdminCenter", tag_prefixes=("13.66.201.96/28",))
VM = Endpoint(ip="10.0.0.4")


@pytest.mark.parametrize(
    ("rules", "allowed", "by"),
    [
        ((), True, "AllowInternetOutBound"),
        ((("d", 200, "Outbound", "Deny", "Internet", "443"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "*", "400-500"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "13.66.201.0/24", "443"),), False, "d"),
        ((("d", 200, "Outbound", "Deny", "8.8.8.0/24", "443"),), True, "AllowInternetOutBound"),
        ((("d", 200, "Outbound", "Deny", "Internet", "80"),), True, "AllowInternetOutBound"),
        ((("d", 200, "Inbound", "Deny", "*", "*"),), True, "AllowInternetOutBound"),
        (
            (
                ("a", 100, "Outbound", "Allow", "WindowsAdminCenter", "443"),
                ("d", 200, "Outbound", "Deny", "*", "*"),
            ),
            True,
            "a",
        ),
    ],
)
def test_evaluator_outbound(rules: Any, allowed: bool, by: str) -> None:
    verdict = flow_allowed(
        [_nsg(*rules)],
        direction="Outbound",
        protocol="Tcp",
        src=VM,
        dst=WAC,
        dst_port=443,
        vnet=["10.0.0.0/16"],
    )
    assert (verdict.allowed, verdict.rule) == (allowed, by)


def test_evaluator_needs_every_nsg_and_none_allows() -> None:
    deny = _nsg(("d", 200, "Outbound", "Deny", "*", "*"))
    kwargs: dict[str, Any] = {
        "direction": "Outbound",
        "protocol": "Tcp",
        "src": VM,
        "dst": WAC,
        "dst_port": 443,
    }
    assert flow_allowed([], **kwargs).allowed
    assert not flow_allowed([_nsg(), deny], **kwargs).allowed
    inbound = flow_allowed(
        [_nsg()],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip="10.0.1.5"),
        dst=VM,
        dst_port=6516,
        vnet=["10.0.0.0/16"],
    )
    assert (inbound.allowed, inbound.rule) == (True, "AllowVnetInBound")
    internet = flow_allowed(
        [_nsg()],
        direction="Inbound",
        protocol="Tcp",
        src=Endpoint(ip="203.0.113.9"),
        dst=VM,
        dst_port=6516,
        vnet=["10.0.0.0/16"],
    )
    assert (internet.allowed, internet.rule) == (False, "DenyAllInBound")


# -- guest scripts -------------------------------------------------------------------------


def test_guest_script_protocol() -> None:
    guest = GuestModel()
    out = run_script(guest, ["# wac-azure-guest-script: port v1"])
    assert json.loads(out.stdout) == {"script": "port", "version": 1, "smePort": None}
    assert out.exit_code == 0
    unknown = run_script(guest, ["Get-Service"])
    assert (unknown.stdout, unknown.stderr, unknown.exit_code) == (
        "",
        "unknown script (emulator)",
        1,
    )
    guest.install_gateway("6516")
    guest.firewall_rules["SmeInboundOpenException"] = FirewallRule(True, {"Private"})
    diag = json.loads(
        run_script(
            guest,
            ["# wac-azure-guest-script: diagnose v1"],
            [{"name": "Port", "value": "7000"}],
            outbound_allowed=False,
        ).stdout
    )
    assert diag["smePort"] == "6516"
    assert diag["firewallRule"]["profiles"] == {"Domain": False, "Private": True, "Public": False}
    assert diag["localhost"] == {
        "url": "https://localhost:7000",
        "ok": False,
        "status": None,
        "error": diag["localhost"]["error"],
    }
    assert diag["serviceEndpoint"]["ok"] is False
    guest.uninstall_gateway()
    assert guest.sme_port is None
    assert guest.services == {}


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
    assert emu.guest(target).sme_port == "6516"
    rule_polls = [r for r in emu.requests if r.is_poll and "Microsoft.Network" in r.path]
    assert len(rule_polls) == 1


@given(lo=st.integers(-5, 70000), hi=st.integers(-5, 70000), priority=st.integers(0, 5000))
def test_validator_accepts_exactly_valid_ports_and_priorities(
    lo: int, hi: int, priority: int
) -> None:
    props = dict(rule_body(priority)["properties"])
    props["destinationPortRange"] = f"{lo}-{hi}"
    valid_port = 0 <= lo <= hi <= 65535
    valid_priority = 100 <= priority <= 4096
    if valid_port and valid_priority:
        assert validate_rule("r", props)["priority"] == priority
        return
    expected = (
        "SecurityRuleInvalidPriority" if not valid_priority else "SecurityRuleInvalidPortRange"
    )
    with pytest.raises(ArmError) as info:
        validate_rule("r", props)
    assert info.value.code == expected
