"""`wac-azure diagnose` on the embedded emulator: --json parsed, exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli._run import BASE, run


def test_enabled_vm_has_no_problems_exit_0() -> None:
    code, out, _ = run("diagnose", f"{BASE}/app-01", "--emulator", "--json", "--quiet")
    doc = json.loads(out)
    assert code == 0, out
    assert doc["ok"] is True
    assert doc["problems"] == []
    assert doc["run_commands"] == 1
    codes = {f["code"] for f in doc["findings"]}
    assert {"extension", "inbound", "guest.service", "support"} <= codes


def test_vm_without_the_extension_exits_1_and_names_it() -> None:
    code, out, _ = run("diagnose", f"{BASE}/web-01", "--emulator", "--json", "--quiet")
    doc = json.loads(out)
    assert code == 1
    assert "extension" in doc["problems"]


def test_readable_output_and_public_options() -> None:
    code, out, _ = run(
        "diagnose",
        f"{BASE}/app-01",
        "--via",
        "public",
        "--client-ip",
        "203.0.113.7",
        "--emulator",
        "--quiet",
    )
    # app-01 has no public IP: the inbound finding says so, and that is a problem.
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("Diagnosis of app-01 via public")
    assert "[problem] 2. inbound" in out
    assert "no public IP" in out


def test_bad_client_ip_is_a_usage_error() -> None:
    code, _, err = run("diagnose", f"{BASE}/app-01", "--client-ip", "laptop", "--emulator")
    assert code == 2
    assert "client_ip" in err


def test_deallocated_vm_exits_1_with_the_power_state_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """app-01 is enabled and healthy; deallocated, it serves nothing: not ok, exit 1."""
    import wac_azure._cli.app as cli

    original = cli.prepare_cli_emulator

    async def deallocate(emu: Any, session: Any) -> Any:
        vms = await original(emu, session)
        emu.set_power_state(f"{BASE}/app-01", "deallocated")
        return vms

    monkeypatch.setattr(cli, "prepare_cli_emulator", deallocate)
    code, out, _ = run("diagnose", f"{BASE}/app-01", "--emulator", "--json", "--quiet")
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False
    assert doc["problems"][0] == "vm.running"
    assert doc["run_commands"] == 0
    code, out, _ = run("diagnose", f"{BASE}/app-01", "--emulator", "--quiet")
    assert code == 1
    assert out.splitlines()[1].startswith("[problem] 1. vm.running")
