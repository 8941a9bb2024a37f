"""The guest model and its script protocol (what Run Command answers)."""

from __future__ import annotations

import json

from wac_azure.testing import FirewallRule, GuestModel
from wac_azure.testing.backend.guest import run_script


def test_guest_script_protocol() -> None:
    guest = GuestModel()
    out = run_script(guest, ["# wac-azure-guest-script: port v1"])
    assert json.loads(out.stdout) == {"script": "port", "version": 1, "smePort": None}
    assert out.exit_code == 0
    unknown = run_script(guest, ["Get-Service"])
    assert (unknown.stdout, unknown.stderr, unknown.exit_code) == (
        "",
        "unknown script (emulator)",
        1,
    )
    guest.install_gateway("6516")
    guest.firewall_rules["SmeInboundOpenException"] = FirewallRule(True, {"Private"})
    diag = json.loads(
        run_script(
            guest,
            ["# wac-azure-guest-script: diagnose v1"],
            [{"name": "Port", "value": "7000"}],
            outbound_allowed=False,
        ).stdout
    )
    assert diag["smePort"] == "6516"
    assert diag["firewallRule"]["profiles"] == {"Domain": False, "Private": True, "Public": False}
    assert diag["localhost"] == {
        "url": "https://localhost:7000",
        "ok": False,
        "status": None,
        "error": diag["localhost"]["error"],
    }
    assert diag["serviceEndpoint"]["ok"] is False
    guest.uninstall_gateway()
    assert guest.sme_port is None
    assert guest.services == {}
