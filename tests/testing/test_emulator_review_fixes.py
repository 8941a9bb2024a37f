"""Emulator behaviour fixed after review: builders, power checks, wire shapes, time, evaluator."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import AzureSession, ConfigurationError, VmTarget
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator, Fault
from wac_azure.testing.backend.operations import Operation
from wac_azure.testing.backend.wire import EmuRequest
from wac_azure.testing.fronts.server import check_loopback

SUB = DEFAULT_SUBSCRIPTION
RG = "rg-wac"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "arm"
if not FIXTURES.is_dir():  # pragma: no cover - layout of the project's workspace
    FIXTURES = Path("/work/shared/fixtures/arm")
NSG_T = "Microsoft.Network/networkSecurityGroups"


def nsg_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{NSG_T}/{name}"


def rule(priority: int = 200, **props: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": priority,
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "6516",
    }
    p.update(props)
    return {"properties": p}


ADMIN_CENTER = {
    "location": "westeurope",
    "properties": {
        "publisher": "Microsoft.AdminCenter",
        "type": "AdminCenter",
        "typeHandlerVersion": "0.0",
        "autoUpgradeMinorVersion": True,
        "settings": {"port": "6516"},
    },
}


async def _subnet_of(session: AzureSession, vm: str) -> tuple[str, str | None]:
    """(subnet name, subnet NSG name) of a VM's NIC, read through the SDK."""
    network = session.network(SUB)
    nic = await network.network_interfaces.get(RG, f"{vm}-nic")
    sid = nic.ip_configurations[0].subnet.id
    parts = sid.split("/")
    subnet = await network.subnets.get(RG, parts[-3], parts[-1])
    nsg = subnet.network_security_group
    return subnet.name, (nsg.id.rsplit("/", 1)[1] if nsg is not None else None)


# -- 1. a subnet NSG never leaks to VMs that did not ask for one --------------------------


async def test_subnet_nsg_does_not_reach_nic_only_vms(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("a", nsg="subnet")
    emu.add_windows_vm("b", nsg="nic")
    emu.add_windows_vm("c", nsg=None)
    emu.add_windows_vm("d", nsg="both")
    assert await _subnet_of(session, "a") == ("default-nsg", "vnet-westeurope-default-nsg")
    assert await _subnet_of(session, "d") == ("default-nsg", "vnet-westeurope-default-nsg")
    assert await _subnet_of(session, "b") == ("default", None)
    assert await _subnet_of(session, "c") == ("default", None)
    # and the emulator's own judgement agrees: a subnet deny-all-out hits a and d only
    emu.add_rule(
        nsg_id("vnet-westeurope-default-nsg"),
        {
            "name": "deny-out",
            "properties": {
                "protocol": "*",
                "access": "Deny",
                "direction": "Outbound",
                "priority": 100,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "*",
            },
        },
    )
    for name, allowed in (("a", False), ("b", True), ("c", True), ("d", False)):
        vm = emu.store.get(VmTarget.from_parts(SUB, RG, name).resource_id)
        assert vm is not None
        assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is allowed, name


async def test_explicit_subnet_shares_its_nsg_with_every_vm_in_it(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("web", nsg="subnet", subnet="app")
    emu.add_windows_vm("api", nsg="nic", subnet="app")
    assert await _subnet_of(session, "web") == ("app", "vnet-westeurope-app-nsg")
    assert await _subnet_of(session, "api") == ("app", "vnet-westeurope-app-nsg")


def test_subnet_holds_250_nics_then_the_next_subnet_starts(emu: ArmEmulator) -> None:
    for i in range(251):
        emu.add_windows_vm(f"vm{i}", nsg=None)

    def ip_of(name: str) -> tuple[str, str]:
        nic = emu.resource(nsg_id(name).replace(NSG_T, "Microsoft.Network/networkInterfaces"))
        conf = nic["properties"]["ipConfigurations"][0]["properties"]
        return conf["privateIPAddress"], conf["subnet"]["id"].rsplit("/", 1)[1]

    assert ip_of("vm0-nic") == ("10.0.0.4", "default")
    assert ip_of("vm249-nic") == ("10.0.0.253", "default")
    assert ip_of("vm250-nic") == ("10.0.1.4", "default-2")
    vnet = emu.resource(
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/virtualNetworks/vnet-westeurope"
    )
    prefixes = {s["name"]: s["properties"]["addressPrefix"] for s in vnet["properties"]["subnets"]}
    assert prefixes == {"default": "10.0.0.0/24", "default-2": "10.0.1.0/24"}


# -- 2. exactVersion matches the OS ------------------------------------------------------


@pytest.mark.parametrize(
    ("os", "build"),
    [
        ("2012-R2", "9600"),
        ("2016", "14393"),
        ("2019", "17763"),
        ("2022", "20348"),
        ("2025", "26100"),
        ("windows-11", "22631"),
    ],
)
async def test_exact_version_is_the_os_build(
    emu: ArmEmulator, session: AzureSession, os: str, build: str
) -> None:
    t = emu.add_windows_vm("vm1", os=os)
    vm = await session.compute(SUB).virtual_machines.get(RG, "vm1", expand="instanceView")
    assert vm.storage_profile.image_reference.exact_version.split(".")[0] == build
    assert vm.instance_view.os_version.split(".")[2] == build
    assert t.name == "vm1"


# -- 3. extension DELETE on a VM that is not running ---------------------------------------


async def test_extension_delete_on_deallocated_vm_is_refused(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    compute = session.compute(SUB)
    await (
        await compute.virtual_machine_extensions.begin_create_or_update(
            RG, "vm1", "AdminCenter", ADMIN_CENTER
        )
    ).result()
    emu.set_power_state(t, "deallocated")
    with pytest.raises(HttpResponseError) as info:
        await (
            await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
        ).result()
    assert info.value.status_code == 409
    assert info.value.error is not None
    assert info.value.error.code == "OperationNotAllowed"
    ext = await compute.virtual_machine_extensions.get(RG, "vm1", "AdminCenter")
    assert ext.provisioning_state == "Succeeded"
    # a missing extension is still a no-op 204 (nothing to change)
    await (await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "Nope")).result()


async def test_extension_delete_and_list_over_https(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1")
    async with emu.serve() as srv, srv.session() as session:
        compute = session.compute(SUB)
        await (
            await compute.virtual_machine_extensions.begin_create_or_update(
                RG, "vm1", "AdminCenter", ADMIN_CENTER
            )
        ).result()
        listed = await compute.virtual_machine_extensions.list(RG, "vm1")
        assert [e.name for e in listed.value] == ["AdminCenter"]
        emu.set_power_state(t, "stopped")
        with pytest.raises(HttpResponseError, match="OperationNotAllowed"):
            await (
                await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
            ).result()
        emu.set_power_state(t, "running")
        await (
            await compute.virtual_machine_extensions.begin_delete(RG, "vm1", "AdminCenter")
        ).result()
        listed = await compute.virtual_machine_extensions.list(RG, "vm1")
        assert listed.value == []


# -- 4. rules come back as Network RP returns them -------------------------------------------


def _fixture_rule_keys() -> set[str]:
    doc = json.loads((FIXTURES / "network.DefaultSecurityRuleList.json").read_text())
    body = doc["responses"]["200"]["body"]["value"][0]
    return set(body["properties"])


async def test_custom_rule_get_has_every_plural_and_envelope(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    await (
        await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r1", rule())
    ).result()
    resp: dict[str, Any] = {}

    def hook(pipeline_response: Any) -> None:
        resp.update(json.loads(pipeline_response.http_response.text()))

    await network.security_rules.get(RG, "vm1-nsg", "r1", raw_response_hook=hook)
    props = resp["properties"]
    for plural in (
        "sourceAddressPrefixes",
        "destinationAddressPrefixes",
        "sourcePortRanges",
        "destinationPortRanges",
    ):
        assert props[plural] == []
    assert props["sourceAddressPrefix"] == "VirtualNetwork"  # singular kept as sent
    assert props["destinationPortRange"] == "6516"
    assert props["provisioningState"] == "Succeeded"
    assert resp["type"] == "Microsoft.Network/networkSecurityGroups/securityRules"
    assert resp["etag"]
    # the same property set the real default rules show (minus description, not sent)
    if FIXTURES.is_dir():
        assert _fixture_rule_keys() - {"description"} <= set(props)
    # a plural sent stays as sent; the NSG GET shows the same rule
    await (
        await network.security_rules.begin_create_or_update(
            RG,
            "vm1-nsg",
            "r2",
            rule(
                300,
                sourceAddressPrefix=None,
                sourceAddressPrefixes=["10.1.0.0/16", "10.2.0.0/16"],
            ),
        )
    ).result()
    nsg = await network.network_security_groups.get(RG, "vm1-nsg")
    r2 = next(r for r in nsg.security_rules if r.name == "r2")
    assert r2.source_address_prefixes == ["10.1.0.0/16", "10.2.0.0/16"]
    assert r2.destination_address_prefixes == []
    # emu.add_rule stores the same shape
    added = emu.add_rule(nsg_id("vm1-nsg"), {"name": "pre", **rule(400)})
    assert added["properties"]["destinationPortRanges"] == []


async def test_rule_delete_and_nsg_put_over_https(emu: ArmEmulator) -> None:
    emu.add_windows_vm("vm1")
    async with emu.serve() as srv, srv.session() as session:
        network = session.network(SUB)
        nsg = await (
            await network.network_security_groups.begin_create_or_update(
                RG,
                "extra-nsg",
                {
                    "location": "westeurope",
                    "properties": {"securityRules": [{"name": "a", **rule()}]},
                },
            )
        ).result()
        assert nsg.provisioning_state == "Succeeded"
        assert nsg.security_rules[0].source_port_ranges == []
        await (await network.security_rules.begin_delete(RG, "extra-nsg", "a")).result()
        assert [r.name async for r in network.security_rules.list(RG, "extra-nsg")] == []
        sizes = [
            s.name async for s in session.compute(SUB).virtual_machine_sizes.list("westeurope")
        ]
        assert "Standard_D2s_v3" in sizes
        tags = await network.service_tags.list("westeurope")
        assert any(v["name"] == "WindowsAdminCenter" for v in tags.as_dict()["values"])


# -- 5. network PUTs report Updating while pending ------------------------------------------


@pytest.mark.parametrize("kind", ["nic", "pip", "vnet", "subnet"])
async def test_network_put_is_updating_until_it_completes(kind: str) -> None:
    emu = ArmEmulator(seed=0, lro_polls=3)
    emu.add_windows_vm("vm1", public_ip=True)
    async with emu.session() as session:
        network = session.network(SUB)
        rg = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network"
        if kind == "nic":
            body = emu.resource(f"{rg}/networkInterfaces/vm1-nic")
            poller = await network.network_interfaces.begin_create_or_update(RG, "vm1-nic", body)
            rid = f"{rg}/networkInterfaces/vm1-nic"
        elif kind == "pip":
            body = emu.resource(f"{rg}/publicIPAddresses/vm1-ip")
            poller = await network.public_ip_addresses.begin_create_or_update(RG, "vm1-ip", body)
            rid = f"{rg}/publicIPAddresses/vm1-ip"
        elif kind == "vnet":
            body = emu.resource(f"{rg}/virtualNetworks/vnet-westeurope")
            poller = await network.virtual_networks.begin_create_or_update(
                RG, "vnet-westeurope", body
            )
            rid = f"{rg}/virtualNetworks/vnet-westeurope"
        else:
            body = {"properties": {"addressPrefix": "10.0.9.0/24"}}
            poller = await network.subnets.begin_create_or_update(
                RG, "vnet-westeurope", "extra", body
            )
            rid = f"{rg}/virtualNetworks/vnet-westeurope/subnets/extra"
        put = [r for r in emu.requests if r.method == "PUT"][-1]
        assert put.status in (200, 201)
        assert emu.resource(rid)["properties"]["provisioningState"] == "Updating"
        done = await poller.result()
        assert done.provisioning_state == "Succeeded"
        assert emu.resource(rid)["properties"]["provisioningState"] == "Succeeded"


# -- 6. Retry-After in timed mode --------------------------------------------------------------


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
    emu = ArmEmulator(seed=0, lro_seconds=lro_seconds, time_scale=time_scale)
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


# -- 7. slow faults are slow over HTTPS ----------------------------------------------------------


async def test_slow_fault_delays_the_https_answer_for_real(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.slow(3.0), method="GET")
    async with emu.serve() as srv:
        url = f"{srv.base_url}{t.resource_id}?api-version=2024-07-01"
        headers = {"Authorization": f"Bearer {srv.token}"}
        ctx = ssl.create_default_context(cafile=srv.ca_file)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http:
            with pytest.raises(asyncio.TimeoutError):
                async with http.get(url, ssl=ctx, headers=headers) as resp:
                    await resp.read()
            start = time.monotonic()
            async with http.get(url, ssl=ctx, headers=headers) as resp:  # not faulted
                assert resp.status == 200
            assert time.monotonic() - start < 0.5


async def test_slow_fault_stays_virtual_in_process(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.slow(60.0), method="GET")
    start = time.monotonic()
    await session.compute(SUB).virtual_machines.get(RG, "vm1")
    assert time.monotonic() - start < 5


# -- 8. the emulator's evaluator ---------------------------------------------------------------


DENY_AZURE_CLOUD_OUT = {
    "name": "deny-azurecloud",
    "properties": {
        "protocol": "Tcp",
        "access": "Deny",
        "direction": "Outbound",
        "priority": 100,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "AzureCloud",
        "destinationPortRange": "443",
    },
}


async def test_deny_to_a_containing_service_tag_blocks_the_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    emu.add_rule(nsg_id("vm1-nsg"), DENY_AZURE_CLOUD_OUT)
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    verdict = emu.outbound_verdict(vm, "WindowsAdminCenter")
    assert (verdict.allowed, verdict.rule) == (False, "deny-azurecloud")
    poller = await session.compute(SUB).virtual_machine_extensions.begin_create_or_update(
        RG, "vm1", "AdminCenter", ADMIN_CENTER
    )
    with pytest.raises(HttpResponseError, match="VMExtensionProvisioningError"):
        await poller.result()


def test_deny_to_a_disjoint_service_tag_does_not_match(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1")
    deny_storage = json.loads(json.dumps(DENY_AZURE_CLOUD_OUT))
    deny_storage["properties"]["destinationAddressPrefix"] = "Storage"
    emu.add_rule(nsg_id("vm1-nsg"), deny_storage)
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is True
    assert emu.outbound_verdict(vm, "Storage").allowed is False


def test_outbound_verdict_uses_the_primary_nic(emu: ArmEmulator) -> None:
    t = emu.add_windows_vm("vm1", nics=2)
    emu.add_rule(nsg_id("vm1-nsg"), DENY_AZURE_CLOUD_OUT)  # on vm1-nic only
    vm = emu.store.get(t.resource_id)
    assert vm is not None
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is False
    # make the second NIC (no NSG) the primary one, as ARM would after a swap
    refs = vm["properties"]["networkProfile"]["networkInterfaces"]
    refs[0]["properties"]["primary"], refs[1]["properties"]["primary"] = False, True
    for ref, primary in zip(refs, (False, True), strict=True):
        nic = emu.store.get(ref["id"])
        assert nic is not None
        nic["properties"]["primary"] = primary
    assert emu.outbound_verdict(vm, "WindowsAdminCenter").allowed is True


@pytest.mark.parametrize("host", ["127.0.0.2", "127.1.2.3", "::ffff:127.0.0.1"])
def test_loopback_outside_the_certificate_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError):
        check_loopback(host)


def test_certificate_loopback_addresses_are_accepted() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    assert check_loopback("localhost") == "127.0.0.1"


# -- 9. pending operations are indexed ----------------------------------------------------------


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
