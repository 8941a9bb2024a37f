"""A well-known port (22, 80, 443, 3389, 5985, 5986 or any port below 1024) is refused as
WAC's port, with the reason, before anything is read or written, unless the caller says
``allow_well_known_port=True`` (``--allow-well-known-port`` on the command line)."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wac_azure
from wac_azure import (
    AzureSession,
    ConfigurationError,
    ExtensionManager,
    InvalidInputError,
    NetworkRulePlanner,
)
from wac_azure._cli.app import main
from wac_azure._core.validate import WELL_KNOWN_PORTS, check_port
from wac_azure.testing import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION, ArmEmulator

REASONS = {
    22: "SSH",
    443: "HTTPS",
    3389: "Remote Desktop (RDP)",
    5985: "WinRM over HTTP",
    5986: "WinRM over HTTPS",
    80: "HTTP",
    1023: "system port (below 1024",
    1: "system port (below 1024",
}


@pytest.mark.parametrize(("port", "reason"), sorted(REASONS.items()))
async def test_enable_refuses_a_well_known_port_with_the_reason(
    emu: ArmEmulator, session: AzureSession, port: int, reason: str
) -> None:
    target = emu.add_windows_vm("vm1")
    for dry_run in (False, True):
        with pytest.raises(ConfigurationError) as info:
            await wac_azure.enable(session, target, port=port, dry_run=dry_run)
        message = str(info.value)
        assert f"port {port} refused" in message
        assert reason in message
        assert "allow_well_known_port=True" in message
    with pytest.raises(ConfigurationError, match=re.escape(reason)):
        await wac_azure.enable_many(session, [target], port=port)
    with pytest.raises(ConfigurationError, match="allow_well_known_port"):
        await ExtensionManager(session).install(target, port=port)
    planner = NetworkRulePlanner(session)
    with pytest.raises(ConfigurationError, match=re.escape(reason)):
        await planner.plan(target, port=port)  # applying it would open the port
    with pytest.raises(ConfigurationError, match=re.escape(reason)):
        await planner.plan_many([target], port=port)
    assert emu.requests == []  # refused before anything was read


async def test_allowed_on_request(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    done = await wac_azure.enable(session, target, port=443, allow_well_known_port=True)
    assert done.port.port == 443
    assert done.url.endswith(":443")
    other = emu.add_windows_vm("vm2")
    fleet = await wac_azure.enable_many(session, [other], port=3389, allow_well_known_port=True)
    assert fleet.outcomes[0].ok
    third = emu.add_windows_vm("vm3")
    state = await ExtensionManager(session).install(third, port=22, allow_well_known_port=True)
    assert state.port == 22
    plan = await NetworkRulePlanner(session).plan(third, port=5986, allow_well_known_port=True)
    assert plan.port == 5986


async def test_registered_ports_are_accepted(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    preview = await wac_azure.enable(session, target, port=1024, dry_run=True)
    assert preview.plan.port == 1024


@given(st.integers(min_value=1, max_value=65535))
def test_check_port_refuses_exactly_the_system_and_listed_ports(port: int) -> None:
    assert check_port(port) == port  # the default: only the range is checked
    if port < 1024 or port in WELL_KNOWN_PORTS:
        with pytest.raises(ConfigurationError, match=f"port {port} refused"):
            check_port(port, allow_well_known_port=False)
    else:
        assert check_port(port, allow_well_known_port=False) == port


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.booleans()))
def test_out_of_range_is_still_invalid_input(port: int) -> None:
    for allow in (False, True):
        with pytest.raises(InvalidInputError, match="from 1 to 65535"):
            check_port(port, allow_well_known_port=allow)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_the_cli_refuses_it_as_a_usage_error_unless_allowed() -> None:
    vm = (
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{DEFAULT_RESOURCE_GROUP}"
        "/providers/Microsoft.Compute/virtualMachines/app-01"
    )
    for argv in (("enable", vm, "--dry-run"), ("enable-many", vm), ("plan", vm)):
        code, _, err = _cli(*argv, "--port", "3389", "--emulator", "--quiet")
        assert code == 2, err
        assert "Remote Desktop (RDP)" in err
        assert "--allow-well-known-port" in err
    code, out, err = _cli(
        "enable", vm, "--dry-run", "--port", "3389", "--allow-well-known-port", "--emulator"
    )
    assert code == 0, err
    assert ":3389" in out
    code, out, err = _cli("plan", vm, "--port", "3389", "--allow-well-known-port", "--emulator")
    assert code == 0, err
    assert "3389" in out
