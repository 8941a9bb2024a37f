"""The guest model of an emulated VM, and the guest-script protocol Run Command answers.

Scripts sent through ``POST .../virtualMachines/{vm}/runCommand`` with
``commandId: RunPowerShellScript`` are recognized by their first line,
``# wac-azure-guest-script: <name> v1`` (names ``port`` and ``diagnose``), and
answered with one JSON document on stdout computed from the :class:`GuestModel`.
Anything else gets empty stdout, stderr ``unknown script (emulator)`` and exit code 1.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

__all__ = [
    "GATEWAY_KEY",
    "GATEWAY_SERVICE",
    "PROFILES",
    "SME_RULE",
    "FirewallRule",
    "GuestModel",
    "GuestResult",
    "run_script",
]

#: The registry key holding ``SmePort``.
GATEWAY_KEY = "HKLM\\SOFTWARE\\Microsoft\\ServerManagementGateway"
#: The Windows Admin Center service name.
GATEWAY_SERVICE = "ServerManagementGateway"
#: The Windows firewall rule the extension creates.
SME_RULE = "SmeInboundOpenException"
#: Windows firewall profiles.
PROFILES = ("Domain", "Private", "Public")
SERVICE_ENDPOINT = "https://wac.azure.com"

_MARKER = re.compile(r"^\s*#\s*wac-azure-guest-script:\s*(?P<name>[\w.-]+)\s+v(?P<v>\d+)\s*$", re.I)


@attrs.define
class FirewallRule:
    """A Windows firewall rule: enabled or not, and the profiles it applies to."""

    enabled: bool = True
    profiles: set[str] = attrs.field(factory=lambda: set(PROFILES))


@attrs.define
class GuestModel:
    """Mutable state inside one emulated VM; tests may change it to break things.

    * ``registry`` – key → {value name → value} (``SmePort`` under :data:`GATEWAY_KEY`).
    * ``services`` – service name → ``"Running"`` / ``"Stopped"``.
    * ``firewall_rules`` – rule name → :class:`FirewallRule`.
    * ``outbound_blocked`` – a block inside the guest (proxy, firewall) on outbound HTTPS.
    * ``run_command_busy`` – force Run Command to answer 409 (execution in progress).
    """

    registry: dict[str, dict[str, str]] = attrs.field(factory=dict)
    services: dict[str, str] = attrs.field(factory=dict)
    firewall_rules: dict[str, FirewallRule] = attrs.field(factory=dict)
    outbound_blocked: bool = False
    run_command_busy: bool = False

    @property
    def sme_port(self) -> str | None:
        """``SmePort`` from the registry, if set."""
        return self.registry.get(GATEWAY_KEY, {}).get("SmePort")

    def install_gateway(self, port: str) -> None:
        """What a successful AdminCenter install leaves in the guest."""
        self.registry.setdefault(GATEWAY_KEY, {})["SmePort"] = str(port)
        self.services[GATEWAY_SERVICE] = "Running"
        self.firewall_rules[SME_RULE] = FirewallRule(True, set(PROFILES))

    def uninstall_gateway(self) -> None:
        """What uninstalling the extension removes."""
        self.registry.pop(GATEWAY_KEY, None)
        self.services.pop(GATEWAY_SERVICE, None)
        self.firewall_rules.pop(SME_RULE, None)


@attrs.frozen
class GuestResult:
    """What a script printed, and its exit code."""

    stdout: str
    stderr: str
    exit_code: int


def script_name(lines: list[str]) -> str | None:
    """The guest-script name from the marker on the first non-empty line, if any."""
    for line in lines:
        for sub in str(line).splitlines():
            if sub.strip():
                found = _MARKER.match(sub)
                return found.group("name").lower() if found else None
    return None


def _params(parameters: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(parameters, list):
        for p in parameters:
            if isinstance(p, dict) and "name" in p:
                out[str(p["name"]).lower()] = str(p.get("value", ""))
    return out


def run_script(
    guest: GuestModel,
    script: list[str],
    parameters: Any = None,
    *,
    outbound_allowed: bool = True,
) -> GuestResult:
    """Answer one guest script from the model (``outbound_allowed``: what the NSGs allow)."""
    name = script_name(script)
    params = _params(parameters)
    if name == "port":
        doc: dict[str, Any] = {"script": "port", "version": 1, "smePort": guest.sme_port}
        return GuestResult(json.dumps(doc), "", 0)
    if name == "diagnose":
        return GuestResult(json.dumps(_diagnose(guest, params, outbound_allowed)), "", 0)
    return GuestResult("", "unknown script (emulator)", 1)


def _diagnose(guest: GuestModel, params: dict[str, str], outbound_allowed: bool) -> dict[str, Any]:
    sme_port = guest.sme_port
    port = params.get("port") or sme_port or "6516"
    service = guest.services.get(GATEWAY_SERVICE, "NotFound")
    rule = guest.firewall_rules.get(SME_RULE)
    profiles = {p: bool(rule is not None and rule.enabled and p in rule.profiles) for p in PROFILES}
    local_ok = service == "Running" and sme_port is not None and str(sme_port) == str(port)
    remote_ok = outbound_allowed and not guest.outbound_blocked
    return {
        "script": "diagnose",
        "version": 1,
        "smePort": sme_port,
        "services": [{"name": GATEWAY_SERVICE, "status": service}],
        "firewallRule": {"name": SME_RULE, "found": rule is not None, "profiles": profiles},
        "localhost": {
            "url": f"https://localhost:{port}",
            "ok": local_ok,
            "status": 200 if local_ok else None,
            "error": None
            if local_ok
            else "No connection could be made because the target machine actively refused it.",
        },
        "serviceEndpoint": {
            "url": SERVICE_ENDPOINT,
            "ok": remote_ok,
            "status": 200 if remote_ok else None,
            "error": None if remote_ok else "Unable to connect to the remote server",
        },
    }
