"""``--processes N`` of the fleet verbs: checked, and refused with the in-process emulator."""

from __future__ import annotations

import json

from tests.cli._run import BASE, run


def test_processes_below_one_is_a_usage_error() -> None:
    code, _, err = run("enable-many", f"{BASE}/web-01", "--processes", "0", "--emulator")
    assert code == 2
    assert "--processes must be at least 1" in err


def test_processes_need_real_azure_not_the_embedded_emulator() -> None:
    code, _, err = run("enable-many", f"{BASE}/web-01", "--processes", "2", "--emulator")
    assert code == 2
    assert "needs real Azure" in err


def test_one_process_runs_as_before() -> None:
    code, out, _ = run(
        "enable-many", f"{BASE}/web-01", "--processes", "1", "--emulator", "--json", "--quiet"
    )
    assert code == 0
    assert json.loads(out)["counts"]["enabled"] == 1
