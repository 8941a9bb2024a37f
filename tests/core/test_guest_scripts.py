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
    appsettings_port,
    parse_diagnosis,
    parse_port,
    run_command_body,
    run_command_output,
    script_lines,
)


def test_scripts_start_with_their_marker_and_print_one_json_document() -> None:
    assert PORT_SCRIPT[0] == f"{MARKER_PREFIX} port v2"
    assert DIAGNOSE_SCRIPT[0] == f"{MARKER_PREFIX} diagnose v2"
    for script in (PORT_SCRIPT, DIAGNOSE_SCRIPT):
        text = "\n".join(script)
        assert "ConvertTo-Json" in text
        assert "-Depth" in text
        assert text.count("Write-Output") == 1  # exactly one document on stdout
        # both gateways: the legacy registry value and the modernized appsettings.json
        assert "SmePort" in text
        assert "WindowsAdminCenter\\Service\\appsettings.json" in text
        assert "$json.Kestrel.Endpoints.WindowsAdminCenter.Url" in text
        assert "'ServerManagementGateway'" in text
        assert "'WindowsAdminCenter'" in text
        assert "gateway = " in text
    diagnose = "\n".join(DIAGNOSE_SCRIPT)
    assert "'SmeInboundOpenException'" in diagnose
    assert "'WacInboundOpenException'" in diagnose
    assert ".service.waconazure.com" in diagnose
    assert "wac.azure.com" not in diagnose.replace(".service.waconazure.com", "")
    # PowerShell's param() must be the first statement after comments.
    assert DIAGNOSE_SCRIPT[1].startswith("param(")
    assert "$Region" in DIAGNOSE_SCRIPT[1]


def test_run_command_body_is_wire_json() -> None:
    body = run_command_body("diagnose", port=6600, region="westeurope")
    assert body["commandId"] == "RunPowerShellScript"
    assert body["script"] == list(DIAGNOSE_SCRIPT)
    assert body["parameters"] == [
        {"name": "Port", "value": "6600"},
        {"name": "Region", "value": "westeurope"},
    ]
    # a region that is not a plain location name is never passed into PowerShell
    odd = run_command_body("diagnose", port=6600, region="west europe'; Remove-Item")
    assert odd["parameters"] == [{"name": "Port", "value": "6600"}]
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


def _port_doc(**fields: object) -> str:
    doc: dict[str, object] = {
        "script": "port",
        "version": 2,
        "gateway": None,
        "appSettings": {"found": False, "url": None, "error": None},
        "smePort": None,
    }
    doc.update(fields)
    return json.dumps(doc)


@pytest.mark.parametrize(("value", "port"), [("6516", 6516), (6600, 6600), (None, None)])
def test_parse_port_legacy(value: object, port: int | None) -> None:
    found = parse_port(_port_doc(gateway="legacy" if value else None, smePort=value))
    assert found.sme_port == port
    assert found.port == port
    assert found.source == ("registry" if port else None)


def test_parse_port_modern_reads_appsettings_and_names_the_gateway() -> None:
    app = {"found": True, "url": "https://*:6516", "error": None}
    found = parse_port(_port_doc(gateway="modern", appSettings=app))
    assert (found.gateway, found.port, found.source, found.sme_port) == (
        "modern",
        6516,
        "appsettings",
        None,
    )
    # a leftover SmePort next to a modern gateway: the modern gateway's file wins
    both = parse_port(_port_doc(gateway="modern", appSettings=app, smePort="7000"))
    assert (both.port, both.source, both.sme_port) == (6516, "appsettings", 7000)
    assert both.to_dict()["gateway"] == "modern"


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("https://*:6516", 6516),
        ("https://+:6516", 6516),
        ("https://0.0.0.0:6516", 6516),
        ("https://[::]:6516", 6516),
        ("https://localhost:443/", 443),
        ("https://wac.contoso.com:6600/path", 6600),
        (" HTTPS://*:6516 ", 6516),
        ("https://*:6516;http://*:80", 6516),
    ],
)
def test_appsettings_url_port(url: str, port: int) -> None:
    assert appsettings_port(url) == port


@pytest.mark.parametrize(
    "url", ["https://*", "https://*:", "https://*:http", "https://*:70000", "*:6516", "", 6516]
)
def test_appsettings_url_without_a_port_is_a_typed_error(url: object) -> None:
    with pytest.raises(GuestCommandError):
        appsettings_port(url)


@pytest.mark.parametrize(
    ("stdout", "stderr", "match"),
    [
        ("", "unknown script (emulator)", "printed nothing.*unknown script"),
        ("not json", "", "not JSON"),
        ("[1, 2]", "", "JSON list"),
        ('{"script": "diagnose", "version": 2, "smePort": "1"}', "", "expected the output"),
        ('{"script": "port", "version": 1, "smePort": "1"}', "", "version 1"),
        ('{"script": "port", "version": 2}', "", "lacks"),
        (_port_doc(smePort="http"), "", "not a port"),
        (_port_doc(smePort="70000"), "", "out of range"),
        (_port_doc(gateway="nano"), "", "gateway 'nano'"),
        (_port_doc(appSettings=[1]), "", "not an object"),
        (_port_doc(appSettings={"found": True, "url": "https://*"}), "", "names no port"),
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
    doc = {"script": "diagnose", "version": 2}
    if isinstance(value, dict):
        doc.update(value)
    keys = ("services", "firewallRules", "localhost", "serviceEndpoint", "smePort", "appSettings")
    for key in (*keys, "gateway"):
        probe = dict(doc, **{key: value})
        with contextlib.suppress(GuestCommandError):
            parse_diagnosis(json.dumps(probe))


def _diagnose_doc(gateway: str | None) -> dict[str, object]:
    return {
        "script": "diagnose",
        "version": 2,
        "gateway": gateway,
        "appSettings": {"found": True, "url": "https://*:6600", "error": None},
        "smePort": "6516",
        "services": {"name": "WindowsAdminCenter", "status": "Running"},
        "firewallRules": [
            {
                "name": "WacInboundOpenException",
                "found": True,
                "profiles": {"Domain": True, "Private": True, "Public": False},
            },
            {"name": "SmeInboundOpenException", "found": False, "profiles": {}},
        ],
        "localhost": {"url": "https://localhost:6600", "ok": True, "status": 200, "error": None},
        "serviceEndpoint": {
            "url": "https://westeurope.service.waconazure.com",
            "ok": False,
            "status": None,
            "error": "timed out",
        },
    }


def test_parse_diagnosis_reads_every_field() -> None:
    found = parse_diagnosis(json.dumps(_diagnose_doc("modern")))
    assert found.gateway == "modern"
    assert (found.port, found.port_source) == (6600, "appsettings")
    assert found.sme_port == 6516
    assert found.service_name == "WindowsAdminCenter"
    assert found.service("windowsadmincenter") is not None
    assert found.service("WindowsAdminCenter").status == "Running"  # type: ignore[union-attr]
    assert found.firewall_rule.name == "WacInboundOpenException"
    assert found.firewall_rule_found
    assert dict(found.firewall_profiles) == {"Domain": True, "Private": True, "Public": False}
    assert found.localhost.ok
    assert found.localhost.status == 200
    assert not found.service_endpoint.ok
    assert found.service_endpoint.error == "timed out"
    out = found.to_dict()
    assert out["gateway"] == "modern"
    assert out["firewall_rule"]["profiles"]["Public"] is False
    assert [r["name"] for r in out["firewall_rules"]] == [
        "WacInboundOpenException",
        "SmeInboundOpenException",
    ]


def test_parse_diagnosis_legacy_checks_the_legacy_rule_and_port() -> None:
    found = parse_diagnosis(json.dumps(_diagnose_doc("legacy")))
    assert found.service_name == "ServerManagementGateway"
    assert found.firewall_rule.name == "SmeInboundOpenException"
    assert not found.firewall_rule_found
    assert (found.port, found.port_source) == (6516, "registry")


def test_parse_diagnosis_without_a_gateway() -> None:
    doc = _diagnose_doc(None)
    doc.update(appSettings={"found": False, "url": None, "error": None}, smePort=None)
    doc["firewallRules"] = {"name": "WacInboundOpenException", "found": False, "profiles": {}}
    doc["services"] = None  # PowerShell turns an empty @() into null
    found = parse_diagnosis(json.dumps(doc))
    assert found.gateway is None
    assert found.port is None
    assert found.services == ()
    assert found.firewall_rule.name == "WacInboundOpenException"
