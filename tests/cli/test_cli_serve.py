"""The real ``wac-azure`` command, in subprocesses, against one running ``python -m
wac_azure.testing serve``: its export lines, a world kept across calls, JSON, exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator

RG = "rg-wac"  # the demo scenario's group
FLEET_RG = "rg-fleet"
VMS = (
    f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RG}"
    "/providers/Microsoft.Compute/virtualMachines"
)
TIMEOUT = 120


def add_fleet(emu: ArmEmulator) -> None:
    """``serve --setup`` hook: a group of its own for the fleet test (a shared subnet NSG,
    a VM that does not qualify), so that the tests do not depend on each other's order."""
    for i in range(3):
        vm = emu.add_windows_vm(f"fleet-{i}", resource_group=FLEET_RG, nsg="subnet")
    emu.add_windows_vm("fleet-old", resource_group=FLEET_RG, os="2012-R2")
    # outbound Internet denied on the shared subnet NSG: the plan routes around it
    emu.add_rule(
        f"/subscriptions/{vm.subscription_id}/resourceGroups/{FLEET_RG}"
        "/providers/Microsoft.Network/networkSecurityGroups/vnet-westeurope-default-nsg",
        {
            "name": "DenyInternetOutBound",
            "properties": {
                "priority": 200,
                "direction": "Outbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "*",
            },
        },
    )


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """A running ``serve --scenario demo``: the environment its export lines set."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wac_azure.testing",
            "serve",
            "--scenario",
            "demo",
            "--setup",
            "tests.cli.test_cli_serve:add_fleet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        exports: dict[str, str] = {}
        while len(exports) < 4:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "serve ended"
            found = re.fullmatch(r"export (WAC_AZURE_[A-Z_]+)=(\S+)\n", line)
            assert found, line
            exports[found[1]] = found[2]
        assert exports["WAC_AZURE_ENDPOINT"].startswith("https://127.0.0.1:")
        assert os.path.isfile(exports["WAC_AZURE_CA_FILE"])
        assert exports["WAC_AZURE_SUBSCRIPTION"] == DEFAULT_SUBSCRIPTION
        yield exports
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def cli(
    env: dict[str, str], *argv: str, extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "wac_azure", *argv],
        env={**os.environ, **env, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def keys(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in keys(v)}
    return set()


def assert_snake(doc: Any) -> None:
    camel = {k for k in keys(doc) if re.search(r"[A-Z]", k)}
    assert not camel, f"camelCase keys: {sorted(camel)}"


def test_discover_enable_status_disable_from_the_exported_environment(
    served: dict[str, str],
) -> None:
    token = served["WAC_AZURE_TOKEN"]
    code, out, _ = cli(served, "discover")
    assert code == 0
    assert f"{VMS}/web-2022" in out.split()
    assert f"{VMS}/linux-box" not in out.split()  # Windows VMs only

    code, out, err = cli(served, "enable", f"{VMS}/web-2022", "--json", "--verbose")
    assert code == 0, err
    assert token not in out + err  # --verbose logs requests: the token is redacted
    doc = json.loads(out)
    assert_snake(doc)  # the raw ARM bodies of --verbose included
    assert doc["changed"] is True
    assert doc["url"].startswith("https://10.")

    code, out, err = cli(served, "--json", "status", f"{VMS}/web-2022")
    assert code == 0, err
    status = json.loads(out)  # the serve process kept its world: installed
    assert (status["installed"], status["provisioning_state"]) == (True, "Succeeded")
    assert "salt" not in status  # compact by default
    code, out, _ = cli(served, "enable", f"{VMS}/web-2022", "--json", "-q")
    compact = json.loads(out)
    assert_snake(compact)
    assert compact["changed"] is False  # the second enable writes nothing
    assert len(out) < 8_000

    code, out, err = cli(served, "disable", f"{VMS}/web-2022", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["extension_removed"] is True
    code, out, _ = cli(served, "status", f"{VMS}/web-2022")
    assert code == 0
    assert "not installed" in out
    assert token not in out


def test_flags_win_over_the_environment_and_a_refused_token_is_not_shown(
    served: dict[str, str],
) -> None:
    wrong = {
        "WAC_AZURE_ENDPOINT": "https://127.0.0.1:9",
        "WAC_AZURE_TOKEN": "env-token-that-is-wrong",
    }
    code, out, err = cli(
        served,
        "--json",
        "check",
        f"{VMS}/app-2019",
        "--endpoint",
        served["WAC_AZURE_ENDPOINT"],
        "--token",
        served["WAC_AZURE_TOKEN"],
        extra=wrong,
    )
    assert code == 0, err
    assert json.loads(out)["passed"] is True
    secret = "flag-token-that-is-wrong"
    code, out, err = cli(served, "status", f"{VMS}/app-2019", "--json", "--token", secret)
    assert code == 1
    error = json.loads(out)["error"]
    assert set(error) >= {"type", "message"}
    assert "refused the token" in err
    assert secret not in out + err


def test_enable_many_dry_run_writes_nothing_and_plans_the_real_run(
    served: dict[str, str],
) -> None:
    fleet = ("enable-many", "--all", "--resource-group", FLEET_RG, "--json", "-q")
    code, out, err = cli(served, *fleet, "--dry-run")
    assert code == 0, err
    plan = json.loads(out)
    assert_snake(plan)
    assert plan["dry_run"] is True
    assert plan["requests"]["writes"] == plan["requests"]["deletes"] == 0
    assert {o["name"]: o["status"] for o in plan["outcomes"]} == {
        "fleet-0": "enabled",
        "fleet-1": "enabled",
        "fleet-2": "enabled",
        "fleet-old": "skipped",
    }
    assert len(plan["changes"]) == 2  # the shared subnet NSG's two rules, each once

    code, out, err = cli(served, *fleet)
    assert code == 0, err
    real = json.loads(out)
    assert real["dry_run"] is False
    assert real["requests"]["writes"] > 0
    planned = {o["name"]: o for o in plan["outcomes"]}
    for outcome in real["outcomes"]:
        expected = planned[outcome["name"]]
        assert outcome["status"] == expected["status"]
        assert outcome["changed"] == expected["changed"]  # the dry run left it all to do
        assert sorted(outcome["rules"]) == sorted(expected["rules"])


def test_usage_error_under_json_is_a_json_error_exit_2(served: dict[str, str]) -> None:
    code, out, err = cli(served, "enable", "--json", "--port", "many")
    assert code == 2
    assert json.loads(out) == {
        "error": {"type": "UsageError", "message": "argument --port: invalid int value: 'many'"}
    }
    assert "usage: wac-azure enable" in err


def test_a_closed_pipe_ends_quietly_with_the_commands_own_exit_code(
    served: dict[str, str],
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wac_azure", "check", f"{VMS}/old-2012r2", "--json"],
        env={**os.environ, **served},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first byte (as `| head -0`)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1  # the check failed (2012 R2): a closed pipe does not hide it
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_ctrl_c_exits_130_quietly(served: dict[str, str]) -> None:
    # An endpoint that accepts TCP connections and never answers: the CLI hangs in its
    # first request until interrupted.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"https://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "wac_azure", "enable", f"{VMS}/web-2022", "--json"],
            env={**os.environ, **served, "WAC_AZURE_ENDPOINT": endpoint},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the first progress line: the CLI is in its run
        assert "reading" in first, first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130
    assert json.loads(out) == {"error": {"type": "Interrupted", "message": "interrupted"}}
    assert "Traceback" not in err
    assert "interrupted" in err
