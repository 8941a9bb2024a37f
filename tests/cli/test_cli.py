"""The wac-azure command line: every verb with --emulator, --json output parsed, exit codes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from typing import Any

import pytest

import wac_azure
from wac_azure.testing import ArmEmulator

from tests.cli._run import BASE, run

PORTAL = f"https://portal.azure.com/#@contoso.onmicrosoft.com/resource{BASE}/app-01/overview"


def run_json(*argv: str) -> tuple[int, Any]:
    code, out, _ = run(*argv, "--json", "--emulator", "--quiet")
    return code, json.loads(out)


def test_help_and_usage_errors() -> None:
    assert run("--help")[0] == 0
    assert run()[0] == 2
    assert run("check")[0] == 2  # no target
    assert run("frobnicate", f"{BASE}/web-01")[0] == 2
    code, _, err = run("check", "not-a-resource-id", "--emulator")
    assert code == 2
    assert "usage error" in err
    code, _, err = run(
        "enable", f"{BASE}/public-01", "--public", "203.0.113.10", "--public-anywhere", "--emulator"
    )
    assert code == 2
    assert "either" in err


def test_check_passes_and_fails() -> None:
    code, doc = run_json("check", f"{BASE}/web-01")
    assert code == 0
    assert doc["passed"] is True
    code, doc = run_json("check", f"{BASE}/legacy-01")
    assert code == 1
    assert doc["passed"] is False
    assert {c["code"] for c in doc["checks"] if c["status"] == "fail"} >= {"os.supported"}


def test_check_readable_table() -> None:
    code, out, _ = run("check", f"{BASE}/legacy-01", "--emulator")
    assert code == 1
    assert "FAILED" in out
    assert "os.supported" in out


def test_plan_lists_the_rules_around_the_deny() -> None:
    code, doc = run_json("plan", f"{BASE}/locked-01")
    assert code == 0
    names = {c["rule"] for c in doc["changes"]}
    assert names == {"PortForWACService", "PortForAADService", "PortForWAC"}
    assert all(c["priority"] < 200 for c in doc["changes"])


def test_enable_private_public_and_refused() -> None:
    code, doc = run_json("enable", f"{BASE}/web-01")
    assert code == 0
    assert doc["changed"] is True
    assert doc["url"].startswith("https://10.")
    assert doc["port"]["source"] == "appsettings"
    code, doc = run_json("enable", f"{BASE}/public-01", "--public", "203.0.113.10")
    assert code == 0
    assert not doc["url"].startswith("https://10.")
    code, doc = run_json("enable", f"{BASE}/legacy-01")
    assert code == 1
    assert doc["error"]["type"] == "RequirementsNotMetError"
    assert doc["error"]["report"]["passed"] is False


def test_enable_dry_run_and_progress_on_stderr() -> None:
    code, out, err = run("enable", f"{BASE}/locked-01", "--dry-run", "--json", "--emulator")
    assert code == 0
    doc = json.loads(out)  # progress lines go to stderr, stdout stays parse-able
    assert doc["dry_run"] is True
    assert doc["applied"] is None
    assert len(doc["plan"]["changes"]) == 3
    assert "locked-01 planned: 3 rule change(s)" in err
    assert "locked-01 done: dry run" in err


def test_status_port_url_disable_on_the_enabled_vm() -> None:
    code, doc = run_json("status", PORTAL)
    assert code == 0
    assert doc["installed"] is True
    assert doc["provisioning_state"] == "Succeeded"
    code, doc = run_json("status", f"{BASE}/web-01")
    assert code == 0
    assert doc["installed"] is False
    code, doc = run_json("port", f"{BASE}/app-01")
    assert code == 0
    assert (doc["port"], doc["source"]) == (6516, "appsettings")
    code, doc = run_json("port", f"{BASE}/app-01", "--settings-only")
    assert doc["source"] == "settings"
    code, doc = run_json("url", f"{BASE}/app-01")
    assert code == 0
    assert doc["url"].startswith("https://10.")
    assert doc["url"].endswith(":6516")
    code, doc = run_json("disable", f"{BASE}/app-01")
    assert code == 0
    assert doc["extension_removed"] is True


def test_failures_exit_1_with_a_json_error() -> None:
    code, doc = run_json("port", f"{BASE}/web-01")
    assert code == 1
    assert doc["error"]["type"] == "ExtensionNotInstalledError"
    code, doc = run_json("url", f"{BASE}/app-01", "--via", "public")
    assert code == 1
    assert doc["error"]["type"] == "NoPublicIpError"
    code, doc = run_json("status", f"{BASE}/nosuchvm")
    assert code == 1
    assert doc["error"]["type"] == "VmNotFoundError"


def test_url_plain_text_is_just_the_url() -> None:
    code, out, _ = run("url", f"{BASE}/app-01", "--emulator")
    assert code == 0
    assert out.strip().startswith("https://")
    assert len(out.strip().splitlines()) == 1


def test_no_token_is_printed() -> None:
    token = ArmEmulator(seed=0).token
    code, out, err = run("enable", f"{BASE}/web-01", "--emulator", "--verbose")
    assert code == 0
    for text in (out, err):
        assert token not in text
        assert "Bearer" not in text


def test_demo_runs_the_lifecycle() -> None:
    start = time.monotonic()
    code, out, _ = run("demo", "--json")
    assert time.monotonic() - start < 30  # the README promises a quick demo
    assert code == 0
    doc = json.loads(out)
    vms = {vm["vm"]: vm for vm in doc["vms"]}
    assert set(vms) == {"web-01", "legacy-01", "locked-01", "public-01"}
    assert vms["legacy-01"]["enable"]["refused"] is True
    for name in ("web-01", "locked-01", "public-01"):
        assert vms[name]["url"].startswith("https://")
        assert vms[name]["disable"]["extension_removed"] is True
    assert vms["locked-01"]["plan"]["changes"]
    assert "rule_name" in vms["locked-01"]["plan"]["changes"][0]  # snake_case keys throughout


def test_demo_readable_and_selfcheck() -> None:
    code, out, _ = run("demo")
    assert code == 0
    for name in ("web-01", "legacy-01", "locked-01", "public-01"):
        assert f"== {name}" in out
    code, out, _ = run("demo", "--selfcheck")
    assert code == 0
    assert "selfcheck-vm" in out


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"]])
def test_python_dash_m(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wac_azure", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wac-azure" in done.stdout


def test_common_options_before_or_after_the_verb() -> None:
    code, out, err = run("--json", "--emulator", "-q", "status", f"{BASE}/app-01")
    assert code == 0
    assert json.loads(out)["installed"] is True
    assert err == ""
    code, out, _ = run("--json", "status", f"{BASE}/app-01", "--emulator", "--timeout", "60")
    assert code == 0
    assert json.loads(out)["installed"] is True
    code, _, err = run("status", f"{BASE}/app-01", "--emulator", "--timeout", "0")
    assert code == 2
    assert "timeout" in err


@pytest.mark.slow
def test_authentication_failure_is_explained_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DefaultAzureCredential's EnvironmentCredential, pointed at a closed loopback port:
    # nothing leaves 127.0.0.1.
    secret = "sekrit-value-do-not-print"
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000aa")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000bb")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
    code, out, err = run("status", f"{BASE}/vm1", "--json", "--quiet")
    assert code == 1
    assert "could not authenticate to Azure" in err
    assert json.loads(out)["error"]["type"] == "ClientAuthenticationError"
    assert secret not in out + err


def test_version_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wac_azure", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"wac-azure {wac_azure.__version__}"


def test_library_warnings_reach_stderr_as_lines_and_quiet_silences_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A library WARNING (an unconfirmed check, a rule that only claims to be ours) is one
    ``wac-azure: warning:`` line on stderr; ``--quiet`` drops it; the handler is gone
    after the call (no duplicate lines in the next one)."""
    from wac_azure._cli import app

    def fake_main(*_: object) -> int:
        logging.getLogger("wac_azure._workflows.enable").warning("the check %s is unknown", "x")
        return 0

    monkeypatch.setattr(app, "_main", fake_main)
    code, _out, err = run("status", f"{BASE}/locked-01")
    assert code == 0
    assert err.splitlines() == ["wac-azure: warning: the check x is unknown"]
    code, _out, err = run("status", f"{BASE}/locked-01", "--quiet")
    assert err == ""
    handlers = logging.getLogger("wac_azure").handlers
    assert not any(getattr(h, "stream", None) is not None for h in handlers)


def test_wide_public_sources_need_acknowledge_risk() -> None:
    """--public sources covering more than a /8's worth of public IPv4 are refused (exit 2,
    the coverage in the message) unless --acknowledge-risk is given."""
    wide = ["--public", "0.0.0.0/1", "128.0.0.0/2"]
    code, _out, err = run("plan", f"{BASE}/public-01", *wide, "--emulator", "--quiet")
    assert code == 2, err
    assert "73.7 % of IPv4" in err
    assert "acknowledge_risk" in err
    code, doc = run_json("plan", f"{BASE}/public-01", *wide, "--acknowledge-risk")
    assert code == 0, doc
    assert doc["access"]["sources"] == ["0.0.0.0/1", "128.0.0.0/2"]
    code, _out, err = run("plan", f"{BASE}/locked-01", "--acknowledge-risk", "--emulator")
    assert code == 2
    assert "--acknowledge-risk goes with --public" in err
