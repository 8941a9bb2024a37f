"""The guest model and its script protocol (what Run Command answers), for both gateways."""

from __future__ import annotations

import json

import pytest

from wac_azure.testing import ArmEmulator, FirewallRule, GuestModel
from wac_azure.testing.backend.guest import APPSETTINGS_PATH, GATEWAY_KEY, run_script

PORT = ["# wac-azure-guest-script: port v2"]
DIAGNOSE = ["# wac-azure-guest-script: diagnose v2"]


def test_guest_script_protocol() -> None:
    guest = GuestModel()
    out = run_script(guest, PORT)
    assert json.loads(out.stdout) == {
        "script": "port",
        "version": 2,
        "gateway": None,
        "appSettings": {"found": False, "url": None, "error": None},
        "smePort": None,
    }
    assert out.exit_code == 0
    unknown = run_script(guest, ["Get-Service"])
    assert (unknown.stdout, unknown.stderr, unknown.exit_code) == (
        "",
        "unknown script (emulator)",
        1,
    )


def test_modern_install_is_what_extension_0_24_leaves() -> None:
    guest = GuestModel()  # the default gateway
    guest.install_gateway("6516")
    settings = json.loads(guest.files[APPSETTINGS_PATH])
    assert settings["Kestrel"]["Endpoints"]["WindowsAdminCenter"]["Url"] == "https://*:6516"
    assert guest.services["WindowsAdminCenter"] == "Running"
    assert "ServerManagementGateway" not in guest.services
    assert set(guest.firewall_rules) == {"WacInboundOpenException"}
    assert guest.sme_port is None
    assert GATEWAY_KEY not in guest.registry
    assert (guest.installed_gateway, guest.port) == ("modern", "6516")
    port = json.loads(run_script(guest, PORT).stdout)
    assert port["gateway"] == "modern"
    assert port["appSettings"] == {"found": True, "url": "https://*:6516", "error": None}
    assert port["smePort"] is None
    guest.uninstall_gateway()
    assert (guest.files, guest.services, guest.firewall_rules) == ({}, {}, {})


def test_legacy_install_keeps_smeport() -> None:
    guest = GuestModel(gateway="legacy")
    guest.install_gateway("6600")
    assert guest.sme_port == "6600"
    assert guest.services == {"ServerManagementGateway": "Running"}
    assert set(guest.firewall_rules) == {"SmeInboundOpenException"}
    assert APPSETTINGS_PATH not in guest.files
    port = json.loads(run_script(guest, PORT).stdout)
    assert (port["gateway"], port["smePort"], port["appSettings"]["found"]) == (
        "legacy",
        "6600",
        False,
    )
    guest.uninstall_gateway()
    assert guest.sme_port is None
    assert guest.services == {}


@pytest.mark.parametrize(
    ("gateway", "service", "rule"),
    [
        ("modern", "WindowsAdminCenter", "WacInboundOpenException"),
        ("legacy", "ServerManagementGateway", "SmeInboundOpenException"),
    ],
)
def test_diagnose_answers_from_the_gateway_state(gateway: str, service: str, rule: str) -> None:
    guest = GuestModel(gateway=gateway, location="westeurope")
    guest.install_gateway("6516")
    guest.firewall_rules[rule] = FirewallRule(True, {"Private"})
    diag = json.loads(
        run_script(
            guest, DIAGNOSE, [{"name": "Port", "value": "7000"}], outbound_allowed=False
        ).stdout
    )
    assert diag["gateway"] == gateway
    assert {"name": service, "status": "Running"} in diag["services"]
    rules = {r["name"]: r for r in diag["firewallRules"]}
    assert rules[rule]["profiles"] == {"Domain": False, "Private": True, "Public": False}
    assert rules[rule]["found"] is True
    assert len(rules) == 2
    assert not [r for r in rules.values() if r["name"] != rule and r["found"]]
    # the gateway's own port wins over the Port parameter
    assert diag["localhost"]["url"] == "https://localhost:6516"
    assert diag["localhost"]["ok"] is True
    assert diag["serviceEndpoint"]["url"] == "https://westeurope.service.waconazure.com"
    assert diag["serviceEndpoint"]["ok"] is False
    guest.services[service] = "Stopped"
    stopped = json.loads(run_script(guest, DIAGNOSE).stdout)
    assert stopped["localhost"]["ok"] is False


def test_diagnose_region_parameter_and_unknown_region() -> None:
    guest = GuestModel()
    guest.install_gateway("6516")
    diag = json.loads(run_script(guest, DIAGNOSE, [{"name": "Region", "value": "eastus"}]).stdout)
    assert diag["serviceEndpoint"]["url"] == "https://eastus.service.waconazure.com"
    nowhere = json.loads(run_script(guest, DIAGNOSE).stdout)["serviceEndpoint"]
    assert (nowhere["url"], nowhere["ok"]) == (None, False)
    assert "region" in nowhere["error"]


def test_a_broken_appsettings_is_reported_as_the_script_would() -> None:
    guest = GuestModel()
    guest.install_gateway("6516")
    guest.files[APPSETTINGS_PATH] = "{ not json"
    port = json.loads(run_script(guest, PORT).stdout)
    assert port["gateway"] == "modern"
    assert port["appSettings"]["found"] is True
    assert port["appSettings"]["url"] is None
    assert port["appSettings"]["error"]


def test_add_windows_vm_wires_the_gateway_and_the_location(emu: ArmEmulator) -> None:
    with pytest.raises(ValueError, match="gateway"):
        emu.add_windows_vm("bad", gateway="nano")
    modern = emu.add_windows_vm("vm1")
    legacy = emu.add_windows_vm("vm2", gateway="legacy")
    assert emu.guest(modern).gateway == "modern"
    assert emu.guest(legacy).gateway == "legacy"
    assert emu.guest(modern).location == "westeurope"
