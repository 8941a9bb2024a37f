"""``--json``: snake_case keys, compact unless --verbose, every error a JSON error document."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure._cli.output import snake, snake_key
from wac_azure.testing import DEFAULT_SUBSCRIPTION

from tests.cli._run import BASE, run


def keys(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in keys(v)}
    return set()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("destinationAddressPrefix", "destination_address_prefix"),
        ("nicId", "nic_id"),
        ("isNoop", "is_noop"),
        ("privateIPAddress", "private_ip_address"),
        ("typeHandlerVersion", "type_handler_version"),
        ("already_snake", "already_snake"),
        ("AzureCloud", "AzureCloud"),  # data (a service tag), not a field name
        ("/subscriptions/x/resourceGroups/y", "/subscriptions/x/resourceGroups/y"),
    ],
)
def test_snake_key(key: str, expected: str) -> None:
    assert snake_key(key) == expected


@given(st.from_regex(r"[a-z][a-zA-Z0-9]{0,20}", fullmatch=True))
def test_snake_key_of_a_camel_identifier_is_lower_snake_and_stable(key: str) -> None:
    out = snake_key(key)
    assert out == out.lower()
    assert out.replace("_", "") == key.lower()
    assert snake_key(out) == out


@given(st.text(max_size=20).filter(lambda k: not re.fullmatch(r"[a-z][a-zA-Z0-9]*", k)))
def test_snake_key_leaves_other_keys_alone(key: str) -> None:
    assert snake_key(key) == key


def test_compact_by_default_whole_with_verbose_both_snake_case() -> None:
    code, out, _ = run("enable", f"{BASE}/locked-01", "--emulator", "--json", "--quiet")
    assert code == 0
    compact = json.loads(out)
    assert len(out) < 8_000  # the whole to_dict() is ~30 KB for this VM
    assert not {k for k in keys(compact) if re.search("[A-Z]", k)}
    assert {c["rule"] for c in compact["plan"]["changes"]} == {
        "PortForWACService",
        "PortForAADService",
        "PortForWAC",
    }
    assert compact["applied"]["created"] == [
        "locked-01-nsg/PortForWACService",
        "locked-01-nsg/PortForAADService",
        "locked-01-nsg/PortForWAC",
    ]
    assert compact["port"]["port"] == 6516
    code, out, _ = run(
        "enable", f"{BASE}/public-01", "--public", "203.0.113.10", "--emulator", "--json", "-qv"
    )
    assert code == 0
    whole = json.loads(out)
    assert not {k for k in keys(whole) if re.search("[A-Z]", k)}
    change = whole["plan"]["changes"][0]
    assert "destination_port_range" in change["body"]["properties"]  # raw ARM, snake_cased
    assert whole["report"]["evaluated_at"]


def test_snake_leaves_values_alone() -> None:
    doc = {"sourceAddressPrefix": "VirtualNetwork", "vms": [{"nsgName": "aB"}]}
    assert snake(doc) == {"source_address_prefix": "VirtualNetwork", "vms": [{"nsg_name": "aB"}]}


@pytest.mark.parametrize(
    "argv",
    [
        ("--json",),  # no verb
        ("frobnicate", "--json"),
        ("check", "--json"),  # no TARGET
        ("--json", "enable", f"{BASE}/web-01", "--port", "x"),
        ("enable-many", "--json", "--concurrency", "lots"),
    ],
)
def test_argparse_errors_are_json_errors_under_json(argv: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    doc = json.loads(out)
    assert set(doc) == {"error"}
    assert doc["error"]["type"] == "UsageError"
    assert doc["error"]["message"]
    assert "usage: wac-azure" in err


def test_argparse_error_without_json_prints_no_json() -> None:
    code, out, err = run("frobnicate")
    assert code == 2
    assert out == ""
    assert "invalid choice" in err


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (("--endpoint", "http://127.0.0.1:1"), {}, "https://"),
        ((), {"WAC_AZURE_ENDPOINT": "ftp://x"}, "https://"),
        (("--ca-file", "/nonexistent/ca.pem"), {}, "no such file"),
        (("--token", " "), {}, "empty"),
        (("--emulator", "--endpoint", "https://127.0.0.1:1"), {}, "--emulator"),
    ],
)
def test_bad_connection_options_are_usage_errors(
    argv: tuple[str, ...], env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run("status", f"{BASE}/web-01", "--json", *argv)
    assert code == 2
    assert json.loads(out)["error"]["type"] == "UsageError"
    assert says in err


def test_discover_lists_windows_vms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAC_AZURE_SUBSCRIPTION", raising=False)
    code, out, _ = run("discover", "--emulator", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["subscription"] == DEFAULT_SUBSCRIPTION
    assert doc["count"] == len(doc["vms"])
    assert {"web-01", "app-01"} <= {vm["name"] for vm in doc["vms"]}
    code, out, _ = run("discover", "--emulator")
    assert f"{BASE}/web-01" in out.split()


def test_fleet_dry_run_in_json_and_text() -> None:
    code, out, _ = run("enable-many", "--all", "--dry-run", "--emulator", "--json", "-q")
    assert code == 0
    doc = json.loads(out)
    assert doc["dry_run"] is True
    assert doc["requests"]["writes"] == 0
    by_name = {o["name"]: o for o in doc["outcomes"]}
    assert by_name["legacy-01"]["status"] == "skipped"
    locked = by_name["locked-01"]
    assert {c["rule"] for c in locked["changes"]} == {
        "PortForWACService",
        "PortForAADService",
        "PortForWAC",
    }
    assert locked["extension"]["settings"]["port"] == "6516"
    assert by_name["app-01"]["extension"] is None  # already enabled: nothing to write
    code, out, _ = run("enable", "--all", "--dry-run", "--emulator", "-q")
    assert code == 0
    assert out.startswith("enable dry run on ")
    assert "locked-01: would be enabled (would write 3 rule(s)" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("check", f"{BASE}/legacy-01"),
        ("plan", f"{BASE}/locked-01"),
        ("status", f"{BASE}/app-01"),
        ("port", f"{BASE}/app-01"),
        ("url", f"{BASE}/app-01"),
        ("disable", f"{BASE}/app-01"),
        ("diagnose", f"{BASE}/app-01"),
        ("discover",),
        ("disable-many", "--all"),
        ("enable", f"{BASE}/legacy-01"),  # an error carrying its report
        ("enable", f"{BASE}/legacy-01", "--verbose"),
    ],
    ids=lambda a: "-".join(w for w in a if not w.startswith("/")),
)
def test_every_command_prints_snake_case_json(argv: tuple[str, ...]) -> None:
    code, out, _ = run(*argv, "--emulator", "--json", "-q")
    assert code in (0, 1)
    doc = json.loads(out)
    camel = {k for k in keys(doc) if re.search("[A-Z]", k)}
    assert not camel, sorted(camel)
