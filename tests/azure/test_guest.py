"""Run Command on the emulator: scripts round-trip, unknown ones fail, resets and 5xx retried."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure import AzureSession, GuestCommandError, RetryConfig
from wac_azure._core.guest import parse_port, run_command_output
from wac_azure.testing import ArmEmulator, Fault

from tests.workflows.test_diagnose import healthy_vm, run_commands

#: Short waits, so that tests retrying over real sockets do not sleep for seconds.
_FAST = RetryConfig(attempts=4, initial=0.01, maximum=0.02, jitter=0.0)


@pytest.mark.parametrize(
    ("gateway", "service", "rule", "source"),
    [
        ("modern", "WindowsAdminCenter", "WacInboundOpenException", "appsettings"),
        ("legacy", "ServerManagementGateway", "SmeInboundOpenException", "registry"),
    ],
)
async def test_scripts_round_trip_through_run_command(
    emu: ArmEmulator,
    session: AzureSession,
    gateway: str,
    service: str,
    rule: str,
    source: str,
) -> None:
    from wac_azure import ExtensionManager
    from wac_azure._azure.guest import read_guest_diagnosis, read_guest_port

    target = emu.add_windows_vm("vm1", gateway=gateway)
    before = await read_guest_port(session, target)
    assert (before.gateway, before.port, before.sme_port) == (None, None, None)
    await ExtensionManager(session).install(target, port=6600)
    found_port = await read_guest_port(session, target)
    assert (found_port.gateway, found_port.port, found_port.source) == (gateway, 6600, source)
    assert found_port.sme_port == (6600 if gateway == "legacy" else None)
    found = await read_guest_diagnosis(session, target, port=6600, region="westeurope")
    assert (found.gateway, found.port) == (gateway, 6600)
    assert found.service_name == service
    svc = found.service(service)
    assert svc is not None
    assert svc.status == "Running"
    assert found.firewall_rule.name == rule
    assert found.firewall_rule_found
    assert all(found.firewall_profiles.values())
    assert found.localhost.ok
    assert found.service_endpoint.ok
    assert found.service_endpoint.url == "https://westeurope.service.waconazure.com"
    emu.guest(target).services[service] = "Stopped"
    stopped = await read_guest_diagnosis(session, target, port=6600)
    assert not stopped.localhost.ok


async def test_an_unknown_script_is_an_error(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    body: Any = {"commandId": "RunPowerShellScript", "script": ["Get-Date"]}
    compute = session.compute(target.subscription_id)
    poller = await compute.virtual_machines.begin_run_command(
        target.resource_group, target.name, body
    )
    stdout, stderr = run_command_output(await poller.result())
    assert stdout == ""
    with pytest.raises(GuestCommandError, match="unknown script"):
        parse_port(stdout, stderr)


@pytest.mark.parametrize("retry", [False])
async def test_run_guest_script_retry_false_sends_one_request(
    emu: ArmEmulator, session: AzureSession, retry: bool
) -> None:
    from wac_azure import AzureRequestError
    from wac_azure._azure.guest import run_guest_script

    target = await healthy_vm(emu, session)
    emu.requests.clear()
    emu.guest(target).run_command_busy = True
    with pytest.raises(AzureRequestError) as info:
        await run_guest_script(session, target, "port", retry=retry)
    assert info.value.status == 409
    assert len(run_commands(emu)) == 1


# --------------------------------------------------------------------------- retries

_RUN_COMMAND = r"/virtualMachines/[^/]+/runCommand$"


@pytest.mark.parametrize(
    "fault",
    [
        "reset",  # azure-core never retries a POST on a connection error
        "500",  # azure-core retries these on a POST itself
        "503",
        Fault.recorded(502, {"error": {"code": "BadGateway", "message": "(injected fault)"}}),
    ],
    ids=["reset", "500", "503", "502"],
)
async def test_a_reset_or_5xx_on_the_run_command_post_is_retried(
    emu: ArmEmulator, session: AzureSession, fault: str | Fault
) -> None:
    from wac_azure._azure.guest import read_guest_port

    target = await healthy_vm(emu, session)
    emu.requests.clear()
    emu.faults.add_scripted(1, fault, method="POST", path_regex=_RUN_COMMAND)
    emu.faults.add_scripted(2, fault, method="POST", path_regex=_RUN_COMMAND)
    found = await read_guest_port(session, target)
    assert found.port is not None
    assert emu.faults.total == 2
    assert len(run_commands(emu)) == 3  # two faulted, the third answered


async def test_a_reset_over_https_is_retried(emu: ArmEmulator) -> None:
    from wac_azure._azure.guest import read_guest_port

    async with emu.serve() as srv, srv.session(polling_interval=0.01, retry=_FAST) as s:
        target = await healthy_vm(emu, s)
        emu.requests.clear()
        emu.faults.add_scripted(1, "reset", method="POST", path_regex=_RUN_COMMAND)
        found = await read_guest_port(s, target)
    assert found.port is not None
    assert emu.faults.counts == {"reset": 1}
    assert len(run_commands(emu)) == 2


async def test_resets_are_retried_within_the_retry_config(emu: ArmEmulator) -> None:
    from wac_azure import AzureRequestError
    from wac_azure._azure.guest import read_guest_port

    async with emu.session(retry=_FAST) as s:
        target = await healthy_vm(emu, s)
        emu.requests.clear()
        emu.faults.add_random(1.0, "reset", methods="POST", path_regex=_RUN_COMMAND)
        with pytest.raises(AzureRequestError, match="could not reach"):
            await read_guest_port(s, target)
    assert len(run_commands(emu)) == _FAST.attempts


async def test_retry_false_sends_one_post_despite_a_reset(
    emu: ArmEmulator, session: AzureSession
) -> None:
    from wac_azure import AzureRequestError
    from wac_azure._azure.guest import run_guest_script

    target = await healthy_vm(emu, session)
    emu.requests.clear()
    emu.faults.add_scripted(1, "reset", method="POST", path_regex=_RUN_COMMAND)
    with pytest.raises(AzureRequestError):
        await run_guest_script(session, target, "port", retry=False)
    assert len(run_commands(emu)) == 1


async def test_a_failed_poll_is_not_retried_again(emu: ArmEmulator) -> None:
    """A poll is a GET that azure-core owns: when it fails past azure-core's tries, the
    library does not send the POST again (that would be a second owner)."""
    from wac_azure import AzureRequestError
    from wac_azure._azure.guest import read_guest_port

    async with emu.session(retry=_FAST, client_kwargs={"retry_total": 0}) as s:
        target = await healthy_vm(emu, s)
        emu.requests.clear()
        emu.faults.add_random(1.0, "reset", methods="GET", path_regex=r"/operations/")
        with pytest.raises(AzureRequestError, match="could not reach"):
            await read_guest_port(s, target)
    assert len(run_commands(emu)) == 1
