"""The fleet verbs (``enable-many``, ``disable-many``, ``enable --all``) on the emulator."""

from __future__ import annotations

import json

from wac_azure.testing import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION

from tests.cli._run import BASE, run


def test_enable_many_all_discovers_and_reports() -> None:
    code, out, err = run("enable-many", "--all", "--emulator", "--json")
    doc = json.loads(out)
    assert doc["operation"] == "enable"
    counts = doc["counts"]
    assert counts["total"] == len(doc["outcomes"])
    assert counts["total"] > 0
    assert counts["enabled"] >= 1
    assert counts["skipped"] >= 1
    assert code == (0 if counts["failed"] == 0 else 1)
    assert all(o["status"] in ("enabled", "skipped", "failed") for o in doc["outcomes"])
    # the progress bar on stderr ends at the number of VMs
    last = [line for line in err.splitlines() if "VMs" in line][-1]
    assert f"{counts['total']}/{counts['total']} VMs" in last


def test_enable_many_given_targets_quietly() -> None:
    code, out, err = run(
        "enable-many", f"{BASE}/web-01", f"{BASE}/nope", "--emulator", "--json", "--quiet"
    )
    doc = json.loads(out)
    by_name = {o["name"]: o for o in doc["outcomes"]}
    assert by_name["web-01"]["status"] == "enabled"
    assert by_name["nope"]["status"] == "failed"
    assert code == 1
    assert err == ""


def test_disable_many_text_output() -> None:
    code, out, _ = run("disable-many", "--all", "--emulator", "--quiet")
    assert code == 0
    assert out.startswith("disable on ")


def test_usage_errors() -> None:
    assert run("enable-many", "--emulator")[0] == 2
    assert run("enable-many", f"{BASE}/web-01", "--all", "--emulator")[0] == 2
    assert run("disable-many", f"{BASE}/web-01", "--subscription", DEFAULT_SUBSCRIPTION)[0] == 2
    code, _, err = run("enable-many", "not-an-id", "--emulator")
    assert code == 2
    assert "usage error" in err


def test_enable_all_runs_the_fleet_path() -> None:
    code, out, err = run(
        "enable", "--all", "--subscription", DEFAULT_SUBSCRIPTION, "--emulator", "--json"
    )
    doc = json.loads(out)
    assert doc["operation"] == "enable"
    assert doc["counts"]["total"] == len(doc["outcomes"]) > 1
    assert doc["counts"]["enabled"] >= 1
    assert code == (0 if doc["counts"]["failed"] == 0 else 1)
    assert "VMs" in err  # the fleet progress bar


def test_enable_all_with_a_resource_group_and_quiet() -> None:
    code, out, err = run(
        "enable", "--all", "--resource-group", DEFAULT_RESOURCE_GROUP, "--emulator", "--json", "-q"
    )
    assert json.loads(out)["operation"] == "enable"
    assert err == ""
    assert code in (0, 1)
