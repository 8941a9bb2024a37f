"""``RequestRecord`` carries the request's and the answer's headers and bodies, with every
secret redacted: the bearer token, ``protectedSettings``, ``protectedParameters``, Run
Command parameter values, values named password/secret/token."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wac_azure
from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.redact import REDACTED, redact_body, redact_headers
from wac_azure.testing.backend.wire import ConnectionReset, EmuRequest


def _all_text(emu: ArmEmulator) -> str:
    return "\n".join(
        json.dumps(r.request_headers)
        + r.request_body
        + json.dumps(r.response_headers)
        + r.response_body
        for r in emu.requests
    )


async def test_records_carry_headers_and_bodies(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target)
    put = next(
        r for r in emu.requests if r.method == "PUT" and r.path.endswith("/extensions/AdminCenter")
    )
    assert put.request_headers["content-type"].startswith("application/json")
    assert put.request_headers["authorization"] == f"Bearer {REDACTED}"
    assert put.request_json["properties"]["type"] == "AdminCenter"
    assert put.request_json["properties"]["settings"]["port"] == "6516"
    assert put.status in (200, 201)
    assert put.response_headers["x-ms-request-id"]
    assert put.response_json["name"] == "AdminCenter"
    get = next(r for r in emu.requests if r.method == "GET" and r.path.endswith("/vm1"))
    assert get.request_body == ""
    assert get.request_json is None
    assert get.response_json["name"] == "vm1"
    # the emulator's token was sent on every request and is in no record
    assert emu.token not in _all_text(emu)
    assert emu.token not in repr(emu.requests)


async def test_run_command_parameters_are_redacted(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target)
    await wac_azure.diagnose(session, target)
    run = [r for r in emu.requests if r.method == "POST" and r.path.endswith("/runCommand")]
    assert run
    diagnose = [r for r in run if r.request_json.get("parameters")]
    assert diagnose, [r.request_json for r in run]
    for record in diagnose:
        params = record.request_json["parameters"]
        assert {p["name"] for p in params} >= {"Port"}
        assert all(p["value"] == REDACTED for p in params)
        assert record.request_json["commandId"] == "RunPowerShellScript"


async def test_protected_settings_and_named_secrets_are_redacted(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    url = f"https://arm.emulator.localhost{target.resource_id}/extensions/Other?api-version=2024-07-01"
    body = {
        "location": "westeurope",
        "properties": {
            "publisher": "Contoso",
            "type": "Custom",
            "typeHandlerVersion": "1.0",
            "settings": {"visible": "yes"},
            "protectedSettings": {"storageAccountKey": "k3y-do-not-record"},
            "protectedParameters": [{"name": "x", "value": "p4ram-do-not-record"}],
            "parameters": [
                {"name": "adminPassword", "value": "passw0rd-do-not-record"},
                {"name": "Port", "value": "6516"},
            ],
            "clientSecret": "s3cret-do-not-record",
        },
    }
    headers = {
        "Authorization": f"Bearer {emu.token}",
        "Content-Type": "application/json",
        "x-ms-authorization-auxiliary": "Bearer aux-t0ken-do-not-record",
        "Cookie": "session=c00kie-do-not-record",
    }
    await emu.handle(EmuRequest("PUT", url, headers, json.dumps(body).encode()))
    [record] = emu.requests
    text = _all_text(emu)
    for secret in (emu.token, "k3y", "p4ram", "passw0rd", "s3cret", "aux-t0ken", "c00kie"):
        assert secret not in text, secret
    sent = record.request_json["properties"]
    assert sent["protectedSettings"] == REDACTED
    assert sent["protectedParameters"] == REDACTED
    assert sent["clientSecret"] == REDACTED
    assert sent["parameters"] == [
        {"name": "adminPassword", "value": REDACTED},
        {"name": "Port", "value": "6516"},  # not a Run Command: only named secrets go
    ]
    assert sent["settings"] == {"visible": "yes"}  # what is not secret stays
    assert record.request_headers["x-ms-authorization-auxiliary"] == REDACTED
    assert record.request_headers["cookie"] == REDACTED


async def test_a_reset_connection_has_no_answer(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "reset")
    url = f"https://arm.emulator.localhost{target.resource_id}?api-version=2024-07-01"
    with pytest.raises(ConnectionReset):
        await emu.handle(EmuRequest("GET", url, {"Authorization": f"Bearer {emu.token}"}))
    [record] = emu.requests
    assert record.status == 0
    assert record.response_headers == {}
    assert record.response_body == ""
    assert record.request_headers["authorization"] == f"Bearer {REDACTED}"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "password", "protectedSettings", "name", "value", "parameters"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(doc=_json, secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12))
def test_a_secret_under_a_secret_key_never_survives(doc: object, secret: str) -> None:
    wrapped = {"x": doc, "protectedSettings": {"k": secret}, "adminPassword": secret}
    out = redact_body(json.dumps(wrapped).encode(), path="/x/runCommand")
    assert secret not in out
    assert json.loads(out)["x"] is not None or doc is None  # the rest is kept as JSON
    run = {"parameters": [{"name": "n", "value": secret}]}
    assert secret not in redact_body(json.dumps(run).encode(), path="/vm/runCommand")
    assert secret not in json.dumps(redact_headers({"Authorization": f"Bearer {secret}"}))
