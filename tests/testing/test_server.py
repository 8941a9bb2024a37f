"""The HTTPS front: the real aio SDK clients over TLS on loopback."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

import wac_azure.testing as testing_pkg
from wac_azure import ConfigurationError
from wac_azure.testing import (
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    Fault,
    ServerHandle,
    ThrottleConfig,
    run_server_forever,
)
from wac_azure.testing.__main__ import DEMO_VMS, build_emulator
from wac_azure.testing.__main__ import main as cli_main
from wac_azure.testing.fronts import server as server_module
from wac_azure.testing.fronts.server import check_loopback, serve_in_thread

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
        "description": "Managed by wac_azure",
    }
}


def _ssl(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


async def test_vm_get_and_paging_through_https(emu: ArmEmulator) -> None:
    emu.page_size = 2
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]
    target = targets[0]
    async with emu.serve() as srv:
        assert srv.base_url == f"https://127.0.0.1:{srv.port}"
        assert Path(srv.ca_file).is_file()  # noqa: ASYNC240
        async with srv.session() as session:
            compute = session.compute(target.subscription_id)
            vm = await compute.virtual_machines.get(
                target.resource_group, target.name, expand="instanceView"
            )
            assert vm.name == "vm0"
            assert vm.id.lower() == target.resource_id.lower()
            statuses = [s.code for s in vm.instance_view.statuses]
            assert "PowerState/running" in statuses
            # three VMs over pages of two: nextLink must point back at this server
            names = [v.name async for v in compute.virtual_machines.list(target.resource_group)]
            assert sorted(names) == ["vm0", "vm1", "vm2"]
    gets = [r for r in emu.requests if r.method == "GET" and r.path.endswith("/virtualMachines")]
    assert len(gets) == 2
    assert any("$skiptoken" in r.query for r in gets)
    assert not Path(srv.ca_file).exists()  # noqa: ASYNC240  (cleaned up)


async def test_lro_over_https(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1", nsg="nic")
    nsg_id = (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    async with emu.serve() as srv, srv.session() as session:
        network = session.network(target.subscription_id)
        poller = await network.security_rules.begin_create_or_update(
            target.resource_group, "vm1-nsg", "wac-6516", RULE
        )
        rule = await poller.result()
        assert rule.provisioning_state == "Succeeded"
        assert rule.destination_port_range == "6516"
    assert emu.resource(f"{nsg_id}/securityRules/wac-6516")["properties"]["priority"] == 1000


async def test_401_without_token(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    async with emu.serve() as srv, aiohttp.ClientSession() as http:
        url = f"{srv.base_url}{target.resource_id}?api-version=2024-07-01"
        async with http.get(url, ssl=_ssl(srv.ca_file)) as resp:
            assert resp.status == 401
            body = await resp.json()
            assert body["error"]["code"] == "AuthenticationFailed"
        headers = {"Authorization": f"Bearer {srv.token}"}
        async with http.get(url, ssl=_ssl(srv.ca_file), headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["name"] == "vm1"


async def test_untrusted_certificate_is_refused(emu: ArmEmulator) -> None:
    async with emu.serve() as srv, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{srv.base_url}/subscriptions", ssl=ssl.create_default_context())


async def test_connection_reset_surfaces_as_transport_error(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    # aiohttp itself resends an idempotent request once when the connection drops,
    # so two resets in a row reach azure-core.
    for nth in (1, 2):
        emu.faults.add_scripted(nth, "reset", method="GET", path_regex=r"/virtualMachines/vm1$")
    async with emu.serve() as srv, srv.session(client_kwargs={"retry_total": 0}) as session:
        compute = session.compute(target.subscription_id)
        with pytest.raises((ServiceRequestError, ServiceResponseError)):
            await compute.virtual_machines.get(target.resource_group, "vm1")
        # the next request on a fresh connection works
        vm = await compute.virtual_machines.get(target.resource_group, "vm1")
        assert vm.name == "vm1"
    assert emu.faults.counts == {"reset": 2}
    assert [r.status for r in emu.requests] == [0, 0, 200]


async def test_reset_is_retried_by_azure_core(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    for nth in (1, 2, 3):
        emu.faults.add_scripted(nth, Fault.reset(), method="GET", path_regex=r"/vm1$")
    async with emu.serve() as srv, srv.session(client_kwargs={"retry_backoff_factor": 0.01}) as s:
        vm = await s.compute(target.subscription_id).virtual_machines.get(
            target.resource_group, "vm1"
        )
        assert vm.name == "vm1"
    vm_gets = [r for r in emu.requests if r.path.endswith("/virtualMachines/vm1")]
    assert [r.status for r in vm_gets] == [0, 0, 0, 200]


async def test_throttle_headers_and_429_over_https() -> None:
    emu = ArmEmulator(throttle=ThrottleConfig(reads=(3, 0.01)))
    target = emu.add_windows_vm("vm1")
    async with emu.serve() as srv, aiohttp.ClientSession() as http:
        url = f"{srv.base_url}{target.resource_id}?api-version=2024-07-01"
        headers = {"Authorization": f"Bearer {srv.token}"}
        seen = []
        for _ in range(3):
            async with http.get(url, ssl=_ssl(srv.ca_file), headers=headers) as resp:
                assert resp.status == 200
                seen.append(resp.headers["x-ms-ratelimit-remaining-subscription-reads"])
        assert seen == ["2", "1", "0"]
        async with srv.session(client_kwargs={"retry_total": 0}) as session:
            compute = session.compute(target.subscription_id)
            with pytest.raises(HttpResponseError) as info:
                await compute.virtual_machines.get(target.resource_group, "vm1")
    assert info.value.status_code == 429
    assert info.value.response is not None
    assert int(info.value.response.headers["Retry-After"]) >= 1
    assert info.value.response.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert emu.throttle.rejected["reads"] == 1


async def test_write_headers_from_sdk(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    seen: list[dict[str, str]] = []

    def hook(response: Any) -> None:
        seen.append(dict(response.http_response.headers))

    async with emu.serve() as srv, srv.session() as session:
        network = session.network(target.subscription_id)
        poller = await network.security_rules.begin_create_or_update(
            target.resource_group, "vm1-nsg", "wac-6516", RULE, raw_response_hook=hook
        )
        await poller.result()
    assert any("x-ms-ratelimit-remaining-subscription-writes" in h for h in seen)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com", ""])
async def test_non_loopback_host_is_refused(emu: ArmEmulator, host: str) -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        async with emu.serve(host=host):
            pass
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(host)


def test_loopback_names() -> None:
    assert check_loopback("localhost") == "127.0.0.1"
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    assert check_loopback("[::1]") == "::1"


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback here")
async def test_ipv6_loopback(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    async with emu.serve(host="::1") as srv:
        assert srv.base_url.startswith("https://[::1]:")
        async with srv.session() as session:
            vm = await session.compute(target.subscription_id).virtual_machines.get(
                target.resource_group, "vm1"
            )
            assert vm.name == "vm1"


def _urlopen(url: str, ca_file: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=_ssl(ca_file), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_in_thread_for_sync_clients(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    with serve_in_thread(emu) as srv:
        url = f"{srv.base_url}{target.resource_id}?api-version=2024-07-01"
        status, body = _urlopen(url, srv.ca_file, srv.token)
        assert (status, body["name"]) == (200, "vm1")
        status, body = _urlopen(url, srv.ca_file)
        assert status == 401
    assert [r.status for r in emu.requests] == [200, 401]


def test_build_emulator_options() -> None:
    emu = build_emulator(
        scenario="demo",
        throttle=False,
        time_scale=0.5,
        lro_seconds=3.0,
        extension_seconds=20.0,
        seed=4,
        fault_rate=0.1,
    )
    assert len(emu.vms) == len(DEMO_VMS)
    assert not emu.throttle.enabled
    assert (emu.time_scale, emu.lro_seconds, emu.extension_seconds) == (0.5, 3.0, 20.0)
    assert emu.faults.seed == 4
    empty = build_emulator()
    assert empty.vms == {}
    assert empty.throttle.enabled
    assert empty.throttle.config.writes == (200, 10.0)


def populate_for_cli(emu: ArmEmulator) -> None:
    """``--setup`` hook used by the CLI test."""
    emu.add_windows_vm("extra-from-setup")


def test_cli_refuses_non_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "MODULE:FUNCTION"),
        ("wac_azure_no_such_module:f", "cannot import"),
        ("wac_azure.testing:no_such_function", "no function"),
    ],
)
def test_cli_refuses_bad_setup(spec: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--setup", spec]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_cli_serves_demo_scenario(stop: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wac_azure.testing",
        "serve",
        "--scenario",
        "demo",
        "--json",
        "--no-throttle",
        "--setup",
        "tests.testing.test_server:populate_for_cli",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        info = json.loads(line)
        assert info["base_url"].startswith("https://127.0.0.1:")
        url = (
            f"{info['base_url']}/subscriptions/{DEFAULT_SUBSCRIPTION}"
            "/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01"
        )
        headers = {"Authorization": f"Bearer {info['token']}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, ssl=_ssl(info["ca_file"]), headers=headers) as resp,
        ):
            assert resp.status == 200
            names = {vm["name"] for vm in (await resp.json())["value"]}
            assert "x-ms-ratelimit-remaining-subscription-reads" in resp.headers
        assert {"web-2022", "app-2019", "extra-from-setup"} <= names
    finally:
        proc.send_signal(stop)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0
    assert not Path(info["ca_file"]).exists()  # noqa: ASYNC240


# -- the server fronts are public names ----------------------------------------------------


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
        text = docs.read_text(encoding="utf-8")
        assert "testing._server" not in text
        assert "testing.fronts" not in text  # the server's private module since the layout


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


# -- slow faults are slow over HTTPS -------------------------------------------------------


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


# -- loopback addresses the certificate names ----------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.2", "127.1.2.3", "::ffff:127.0.0.1"])
def test_loopback_outside_the_certificate_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError):
        check_loopback(host)


def test_certificate_loopback_addresses_are_accepted() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    assert check_loopback("localhost") == "127.0.0.1"


async def test_next_link_ignores_a_forged_host_header() -> None:
    """nextLink is built from the URL the server is served on, not the Host header."""
    emu = ArmEmulator(page_size=1)
    target = emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2")
    async with emu.serve() as srv, aiohttp.ClientSession() as http:
        url = (
            f"{srv.base_url}/subscriptions/{target.subscription_id}/resourceGroups/"
            f"{target.resource_group}/providers/Microsoft.Compute/virtualMachines"
            "?api-version=2024-07-01"
        )
        headers = {"Authorization": f"Bearer {srv.token}", "Host": "evil.example:443"}
        async with http.get(url, ssl=_ssl(srv.ca_file), headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["nextLink"].startswith(f"{srv.base_url}/subscriptions/")
