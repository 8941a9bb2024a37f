"""``--record``'s transport writes sanitized vcrpy cassettes that the replay reader reads back."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import yaml

from wac_azure import RequirementChecker, read_vm_facts
from wac_azure.testing import ArmEmulator

from . import cassette
from tests.live.recorder import ZERO_GUID, RecordingTransport, Sanitizer

SUB = "5f1c7a2e-9b3d-4e8f-a1b2-c3d4e5f6a7b8"
TENANT = "3c1d9e5a-7b2f-4a6e-9d8c-1f2e3d4c5b6a"
EMAIL = "alice.admin@contoso.com"
PUBLIC_IP = "52.174.10.20"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"


async def _record(tmp_path: Path) -> tuple[ArmEmulator, Path]:
    emu = ArmEmulator(seed=0)
    target = emu.add_windows_vm("vm1", subscription_id=SUB, public_ip=True)
    vm = emu.resource(target.resource_id)
    vm["tags"] = {"owner": EMAIL, "ticket-token": JWT}
    vm["identity"] = {"type": "SystemAssigned", "principalId": "p", "tenantId": TENANT}
    emu.seed(vm)
    rg = f"/subscriptions/{SUB}/resourceGroups/{target.resource_group}/providers"
    pip_id = f"{rg}/Microsoft.Network/publicIPAddresses/vm1-ip"
    pip = emu.resource(pip_id)
    pip["properties"]["ipAddress"] = PUBLIC_IP
    emu.seed(pip)

    recorder = RecordingTransport(
        emu.transport(), Sanitizer(subscription_ids=[SUB], tenant_ids=[TENANT])
    )
    async with emu.session(transport=recorder) as session:
        facts = await read_vm_facts(session, target)
        assert facts.primary_nic is not None
        await RequirementChecker(session).check(target)
        rules = session.network(SUB).security_rules
        rule = {
            "properties": {
                "protocol": "Tcp",
                "sourceAddressPrefix": PUBLIC_IP,
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "6516",
                "access": "Allow",
                "priority": 310,
                "direction": "Inbound",
            }
        }
        poller = await rules.begin_create_or_update(target.resource_group, "vm1-nsg", "r1", rule)
        await poller.result()
        poller = await rules.begin_delete(target.resource_group, "vm1-nsg", "r1")
        await poller.result()
    return emu, recorder.save(tmp_path / "nested" / "session.yaml")


async def test_a_recorded_emulator_session_reads_back_and_leaks_nothing(tmp_path: Path) -> None:
    emu, path = await _record(tmp_path)
    text = path.read_text(encoding="utf-8")

    # No planted secret, no token, no Authorization header.
    for secret in (SUB, TENANT, EMAIL, PUBLIC_IP, JWT, emu.token):
        assert secret.lower() not in text.lower(), secret
    interactions = cassette.parse_cassette(text, path.name)
    for inter in interactions:
        assert "authorization" not in inter.request_headers
        assert "/subscriptions/" not in inter.path or f"/subscriptions/{ZERO_GUID}" in inter.path

    # Every request is there, in order, with its status and a body the reader parses.
    assert len(interactions) == len(emu.requests) > 8
    assert [(i.method, i.status) for i in interactions] == [
        (r.method, r.status) for r in emu.requests
    ]
    assert [i.path for i in interactions] == [r.path.replace(SUB, ZERO_GUID) for r in emu.requests]
    assert any(
        i.method == "PUT" and i.request_json()["properties"]["priority"] == 310
        for i in interactions
    )
    bodies = [i.json() for i in interactions if i.body]
    assert bodies

    # Sanitized, not destroyed: public IPs mapped into TEST-NET-3, private IPs and versions kept.
    pip = next(b for b in bodies if b.get("type") == "Microsoft.Network/publicIPAddresses")
    assert ipaddress.ip_address(pip["properties"]["ipAddress"]) in ipaddress.ip_network(
        "203.0.113.0/24"
    )
    nic = next(b for b in bodies if b.get("type") == "Microsoft.Network/networkInterfaces")
    assert nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.0.4"
    vm = next(b for b in bodies if b.get("type") == "Microsoft.Compute/virtualMachines")
    assert vm["tags"] == {"owner": "user@example.com", "ticket-token": "sanitized.jwt.token"}
    assert vm["identity"]["tenantId"] == ZERO_GUID
    agent = vm["properties"]["instanceView"]["vmAgent"]["vmAgentVersion"]
    assert agent == emu.vm_runtime(vm["id"].replace(ZERO_GUID, SUB)).agent_version
    rule_put = next(i for i in interactions if i.method == "PUT")
    assert (
        rule_put.request_json()["properties"]["sourceAddressPrefix"]
        == pip["properties"]["ipAddress"]
    )
    # The headers the shared recordings lack are kept.
    assert any("azure-asyncoperation" in i.headers for i in interactions)
    assert any(k.startswith("x-ms-ratelimit-remaining-") for i in interactions for k in i.headers)

    # The same YAML shape as the shared recordings: vcrpy's, version 1, stable on a re-dump.
    data = yaml.safe_load(text)
    assert data["version"] == 1
    assert set(data["interactions"][0]) == {"request", "response"}
    assert set(data["interactions"][0]["response"]) == {"body", "headers", "status"}
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    json.dumps(data)  # plain data only


def test_sanitizer_rules() -> None:
    s = Sanitizer(secrets=["my-secret-rg"])
    assert (
        s.text(f"/subscriptions/{SUB}/resourceGroups/x")
        == f"/subscriptions/{ZERO_GUID}/resourceGroups/x"
    )
    assert s.text(f'{{"tenantId": "{TENANT}"}}') == f'{{"tenantId": "{ZERO_GUID}"}}'
    assert s.text(f"https://login.microsoftonline.com/{TENANT}/oauth2") == (
        f"https://login.microsoftonline.com/{ZERO_GUID}/oauth2"
    )
    assert s.text("Bearer abc.def-ghi") == "Bearer sanitized"
    assert s.text('{"access_token": "xyz"}') == '{"access_token": "sanitized"}'
    assert s.text("https://a.blob.core.windows.net/c?sv=1&sig=AbC%2F") == (
        "https://a.blob.core.windows.net/c?sv=1&sig=sanitized"
    )
    assert s.text("rg my-secret-rg") == "rg sanitized"
    first = s.text("8.8.8.8 and 8.8.8.8, 1.1.1.1")
    assert first == "203.0.113.2 and 203.0.113.2, 203.0.113.3"
    assert s.text("10.1.2.3 172.16.0.1 192.168.1.1 127.0.0.1 10.0.0.0/16") == (
        "10.1.2.3 172.16.0.1 192.168.1.1 127.0.0.1 10.0.0.0/16"
    )
    assert s.text('"typeHandlerVersion": "2.2.49.2"') == '"typeHandlerVersion": "2.2.49.2"'
    assert s.text("2603:1030:20c::1f").startswith("2001:db8::")
    assert s.text("at 2020-09-04T08:13:39.6843987+00:00") == "at 2020-09-04T08:13:39.6843987+00:00"
    assert s.headers({"Authorization": "Bearer x", "ETag": 'W/"1"'}) == {"ETag": ['W/"1"']}
