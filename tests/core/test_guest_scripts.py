"""The guest scripts (marker, body) and the parsers of their output (pure)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import GuestCommandError
from wac_azure._core.guest import (
    DIAGNOSE_SCRIPT,
    MARKER_PREFIX,
    PORT_SCRIPT,
    parse_diagnosis,
    parse_port,
    run_command_body,
    run_command_output,
    script_lines,
)


def test_scripts_start_with_their_marker_and_print_one_json_document() -> None:
    assert PORT_SCRIPT[0] == f"{MARKER_PREFIX} port v1"
    assert DIAGNOSE_SCRIPT[0] == f"{MARKER_PREFIX} diagnose v1"
    for script in (PORT_SCRIPT, DIAGNOSE_SCRIPT):
        text = "\n".join(script)
        assert "ConvertTo-Json" in text
        assert "-Depth" in text
        assert text.count("Write-Output") == 1  # exactly one document on stdout
        assert "SmePort" in text
        assert "ServerManagementGateway" in text
    assert "SmeInboundOpenException" in "\n".join(DIAGNOSE_SCRIPT)
    # PowerShell's param() must be the first statement after comments.
    assert DIAGNOSE_SCRIPT[1].startswith("param(")


def test_run_command_body_is_wire_json() -> None:
    body = run_command_body("diagnose", port=6600)
    assert body["commandId"] == "RunPowerShellScript"
    assert body["script"] == list(DIAGNOSE_SCRIPT)
    assert body["parameters"] == [{"name": "Port", "value": "6600"}]
    assert "parameters" not in run_command_body("port")
    json.dumps(body)  # JSON-safe
    with pytest.raises(GuestCommandError, match="unknown guest script"):
        script_lines("format-disk")


def _result(stdout: str, stderr: str = "") -> dict[str, object]:
    return {
        "value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "message": stdout},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "message": stderr},
        ]
    }


def test_run_command_output_splits_stdout_and_stderr() -> None:
    assert run_command_output(_result("out", "err")) == ("out", "err")
    with pytest.raises(GuestCommandError):
        run_command_output({"nope": 1})


@pytest.mark.parametrize(("value", "port"), [("6516", 6516), (6600, 6600), (None, None)])
def test_parse_port(value: object, port: int | None) -> None:
    doc = json.dumps({"script": "port", "version": 1, "smePort": value})
    assert parse_port(doc).sme_port == port


@pytest.mark.parametrize(
    ("stdout", "stderr", "match"),
    [
        ("", "unknown script (emulator)", "printed nothing.*unknown script"),
        ("not json", "", "not JSON"),
        ("[1, 2]", "", "JSON list"),
        ('{"script": "diagnose", "version": 1, "smePort": "1"}', "", "expected the output"),
        ('{"script": "port", "version": 2, "smePort": "1"}', "", "version 2"),
        ('{"script": "port", "version": 1}', "", "no 'smePort'"),
        ('{"script": "port", "version": 1, "smePort": "http"}', "", "not a port"),
        ('{"script": "port", "version": 1, "smePort": "70000"}', "", "out of range"),
    ],
)
def test_parse_port_rejects_junk(stdout: str, stderr: str, match: str) -> None:
    with pytest.raises(GuestCommandError, match=match):
        parse_port(stdout, stderr)


@given(st.text(max_size=200))
def test_parsers_raise_only_guest_command_error(text: str) -> None:
    for parse in (parse_port, parse_diagnosis):
        with contextlib.suppress(GuestCommandError):
            parse(text)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
)
def test_diagnosis_parser_never_leaks_builtin_errors(value: object) -> None:
    doc = {"script": "diagnose", "version": 1}
    if isinstance(value, dict):
        doc.update(value)
    for key in ("services", "firewallRule", "localhost", "serviceEndpoint", "smePort"):
        probe = dict(doc, **{key: value})
        with contextlib.suppress(GuestCommandError):
            parse_diagnosis(json.dumps(probe))


def test_parse_diagnosis_reads_every_field() -> None:
    doc = {
        "script": "diagnose",
        "version": 1,
        "smePort": "6516",
        "services": {"name": "ServerManagementGateway", "status": "Running"},
        "firewallRule": {
            "name": "SmeInboundOpenException",
            "found": True,
            "profiles": {"Domain": True, "Private": True, "Public": False},
        },
        "localhost": {"url": "https://localhost:6516", "ok": True, "status": 200, "error": None},
        "serviceEndpoint": {
            "url": "https://wac.azure.com",
            "ok": False,
            "status": None,
            "error": "timed out",
        },
    }
    found = parse_diagnosis(json.dumps(doc))
    assert found.sme_port == 6516
    assert found.service("servermanagementgateway") is not None
    assert found.service("ServerManagementGateway").status == "Running"  # type: ignore[union-attr]
    assert found.firewall_rule_found
    assert dict(found.firewall_profiles) == {"Domain": True, "Private": True, "Public": False}
    assert found.localhost.ok
    assert found.localhost.status == 200
    assert not found.service_endpoint.ok
    assert found.service_endpoint.error == "timed out"
    assert found.to_dict()["firewall_rule"]["profiles"]["Public"] is False
