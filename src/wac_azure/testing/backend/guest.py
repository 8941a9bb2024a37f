"""The guest model of an emulated VM, and the guest-script protocol Run Command answers.

Scripts sent through ``POST .../virtualMachines/{vm}/runCommand`` with
``commandId: RunPowerShellScript`` are recognized by their first line,
``# wac-azure-guest-script: <name> v<n>`` (names ``port`` and ``diagnose``), and
answered with one JSON document (protocol version 2) on stdout computed from the
:class:`GuestModel`. Anything else gets empty stdout, stderr
``unknown script (emulator)`` and exit code 1.

The model holds either gateway (docs/extension.md, "Inside the VM"):

* ``"modern"`` (what extension 0.24.0.0 and later install, the default):
  ``%ProgramFiles%\\WindowsAdminCenter\\Service\\appsettings.json`` with
  ``Kestrel.Endpoints.WindowsAdminCenter.Url = "https://*:<port>"``, service
  ``WindowsAdminCenter``, firewall rule ``WacInboundOpenException``, no ``SmePort``;
* ``"legacy"``: registry value ``SmePort``, service ``ServerManagementGateway``,
  firewall rule ``SmeInboundOpenException``.

It answers from its own state: the files, registry, services and rules a test
may change (for example write a broken appsettings.json).
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

__all__ = [
    "APPSETTINGS_PATH",
    "GATEWAYS",
    "GATEWAY_KEY",
    "GATEWAY_SERVICE",
    "MODERN_RULE",
    "MODERN_SERVICE",
    "PROFILES",
    "SME_RULE",
    "FirewallRule",
    "GuestModel",
    "GuestResult",
    "run_script",
]

#: The registry key holding ``SmePort`` (legacy gateway).
GATEWAY_KEY = "HKLM\\SOFTWARE\\Microsoft\\ServerManagementGateway"
#: The legacy gateway's Windows service.
GATEWAY_SERVICE = "ServerManagementGateway"
#: The legacy gateway's Windows firewall rule.
SME_RULE = "SmeInboundOpenException"
#: The modernized gateway's settings file (``%ProgramFiles%`` expanded as on a VM).
APPSETTINGS_PATH = "C:\\Program Files\\WindowsAdminCenter\\Service\\appsettings.json"
#: The modernized gateway's Windows service.
MODERN_SERVICE = "WindowsAdminCenter"
#: The modernized gateway's Windows firewall rule.
MODERN_RULE = "WacInboundOpenException"
#: The gateways the model can hold.
GATEWAYS = ("modern", "legacy")
#: Windows firewall profiles.
PROFILES = ("Domain", "Private", "Public")
_ACCOUNT_SERVICE = "WindowsAdminCenterAccountManagement"
_VERSION = 2

_MARKER = re.compile(r"^\s*#\s*wac-azure-guest-script:\s*(?P<name>[\w.-]+)\s+v(?P<v>\d+)\s*$", re.I)
_LOCATION = re.compile(r"^[A-Za-z0-9]+$")


@attrs.define
class FirewallRule:
    """A Windows firewall rule: enabled or not, and the profiles it applies to."""

    enabled: bool = True
    profiles: set[str] = attrs.field(factory=lambda: set(PROFILES))


def _appsettings(port: str) -> str:
    """The appsettings.json an install leaves (the parts the gateway's module writes)."""
    doc = {
        "Kestrel": {
            "Endpoints": {
                "WindowsAdminCenter": {
                    "Url": f"https://*:{port}",
                    "Certificate": {
                        "Subject": "WindowsAdminCenterSelfSigned",
                        "Store": "My",
                        "Location": "LocalMachine",
                    },
                }
            }
        },
        "WindowsAdminCenter": {
            "ServicePortRange": {"Start": 6601, "End": 6610},
            "Services": [
                {"Name": "WinREST", "Endpoint": "https://localhost:6601"},
                {"Name": "WinStream", "Endpoint": "https://localhost:6602"},
            ],
        },
    }
    return json.dumps(doc, indent=2)


@attrs.define
class GuestModel:
    """Mutable state inside one emulated VM; tests may change it to break things.

    * ``gateway`` – which gateway an install leaves: ``"modern"`` (default) or ``"legacy"``.
    * ``files`` – path → text (the modernized gateway's ``appsettings.json`` at
      :data:`APPSETTINGS_PATH`).
    * ``registry`` – key → {value name → value} (``SmePort`` under :data:`GATEWAY_KEY`).
    * ``services`` – service name → ``"Running"`` / ``"Stopped"``.
    * ``firewall_rules`` – rule name → :class:`FirewallRule`.
    * ``location`` – the VM's region (what the instance metadata service says).
    * ``outbound_blocked`` – a block inside the guest (proxy, firewall) on outbound HTTPS.
    * ``run_command_busy`` – force Run Command to answer 409 (execution in progress).
    """

    registry: dict[str, dict[str, str]] = attrs.field(factory=dict)
    services: dict[str, str] = attrs.field(factory=dict)
    firewall_rules: dict[str, FirewallRule] = attrs.field(factory=dict)
    outbound_blocked: bool = False
    run_command_busy: bool = False
    gateway: str = attrs.field(default="modern")
    files: dict[str, str] = attrs.field(factory=dict)
    location: str | None = None

    @gateway.validator
    def _known(self, _attribute: Any, value: str) -> None:
        if value not in GATEWAYS:
            raise ValueError(f"gateway must be 'modern' or 'legacy'; got {value!r}")

    @property
    def sme_port(self) -> str | None:
        """``SmePort`` from the registry, if set."""
        return self.registry.get(GATEWAY_KEY, {}).get("SmePort")

    @property
    def appsettings_url(self) -> str | None:
        """``Kestrel.Endpoints.WindowsAdminCenter.Url`` of appsettings.json, if readable."""
        text = self.files.get(APPSETTINGS_PATH)
        if text is None:
            return None
        try:
            url = json.loads(text)["Kestrel"]["Endpoints"]["WindowsAdminCenter"]["Url"]
        except (ValueError, KeyError, TypeError):
            return None
        return url if isinstance(url, str) else None

    @property
    def appsettings_port(self) -> str | None:
        """The port of :attr:`appsettings_url` (what the gateway binds), if it has one."""
        found = re.search(r":(\d+)/?$", self.appsettings_url or "")
        return found.group(1) if found else None

    @property
    def installed_gateway(self) -> str | None:
        """The gateway present: its service first, then where its port lives."""
        if MODERN_SERVICE in self.services:
            return "modern"
        if GATEWAY_SERVICE in self.services:
            return "legacy"
        if APPSETTINGS_PATH in self.files:
            return "modern"
        if self.sme_port is not None:
            return "legacy"
        return None

    @property
    def port(self) -> str | None:
        """The port the installed gateway listens on."""
        gateway = self.installed_gateway
        if gateway == "modern":
            return self.appsettings_port
        if gateway == "legacy":
            return self.sme_port
        return None

    def install_gateway(self, port: str) -> None:
        """What a successful AdminCenter install leaves in the guest (per :attr:`gateway`)."""
        if self.gateway == "modern":
            self.files[APPSETTINGS_PATH] = _appsettings(str(port))
            self.services[MODERN_SERVICE] = "Running"
            self.services.setdefault(_ACCOUNT_SERVICE, "Stopped")
            self.firewall_rules[MODERN_RULE] = FirewallRule(True, set(PROFILES))
        else:
            self.registry.setdefault(GATEWAY_KEY, {})["SmePort"] = str(port)
            self.services[GATEWAY_SERVICE] = "Running"
            self.firewall_rules[SME_RULE] = FirewallRule(True, set(PROFILES))

    def uninstall_gateway(self) -> None:
        """What uninstalling the extension removes (either gateway)."""
        self.registry.pop(GATEWAY_KEY, None)
        self.files.pop(APPSETTINGS_PATH, None)
        for name in (GATEWAY_SERVICE, MODERN_SERVICE, _ACCOUNT_SERVICE):
            self.services.pop(name, None)
        for rule in (SME_RULE, MODERN_RULE):
            self.firewall_rules.pop(rule, None)


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


def _appsettings_doc(guest: GuestModel) -> dict[str, Any]:
    text = guest.files.get(APPSETTINGS_PATH)
    if text is None:
        return {"found": False, "url": None, "error": None}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return {"found": True, "url": None, "error": f"Invalid JSON primitive: {exc}"}
    url: Any = doc
    for key in ("Kestrel", "Endpoints", "WindowsAdminCenter", "Url"):
        url = url.get(key) if isinstance(url, dict) else None
    return {"found": True, "url": None if url is None else str(url), "error": None}


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
        doc: dict[str, Any] = {
            "script": "port",
            "version": _VERSION,
            "gateway": guest.installed_gateway,
            "appSettings": _appsettings_doc(guest),
            "smePort": guest.sme_port,
        }
        return GuestResult(json.dumps(doc), "", 0)
    if name == "diagnose":
        return GuestResult(json.dumps(_diagnose(guest, params, outbound_allowed)), "", 0)
    return GuestResult("", "unknown script (emulator)", 1)


def _rule(guest: GuestModel, name: str) -> dict[str, Any]:
    rule = guest.firewall_rules.get(name)
    profiles = {p: bool(rule is not None and rule.enabled and p in rule.profiles) for p in PROFILES}
    return {"name": name, "found": rule is not None, "profiles": profiles}


def _diagnose(guest: GuestModel, params: dict[str, str], outbound_allowed: bool) -> dict[str, Any]:
    gateway = guest.installed_gateway
    listening = guest.port
    sme_port, app_port = guest.sme_port, guest.appsettings_port
    if gateway == "modern" and app_port:
        port = app_port
    elif gateway == "legacy" and sme_port:
        port = sme_port
    else:
        port = app_port or sme_port or params.get("port") or "6516"
    service_name = MODERN_SERVICE if gateway != "legacy" else GATEWAY_SERVICE
    services = []
    for svc in (MODERN_SERVICE, GATEWAY_SERVICE, _ACCOUNT_SERVICE):
        if svc in guest.services:
            services.append({"name": svc, "status": guest.services[svc]})
        elif svc == service_name:
            services.append({"name": svc, "status": "NotFound"})
    running = guest.services.get(service_name) == "Running"
    local_ok = running and listening is not None and str(listening) == str(port)
    region = params.get("region") or guest.location or ""
    if not _LOCATION.match(region):
        region = ""
    remote_ok = bool(region) and outbound_allowed and not guest.outbound_blocked
    if region:
        endpoint: dict[str, Any] = {
            "url": f"https://{region.lower()}.service.waconazure.com",
            "ok": remote_ok,
            "status": 200 if remote_ok else None,
            "error": None if remote_ok else "Unable to connect to the remote server",
        }
    else:
        endpoint = {
            "url": None,
            "ok": False,
            "status": None,
            "error": "the region of the VM is not known (no Region parameter, and the "
            "instance metadata service did not answer)",
        }
    return {
        "script": "diagnose",
        "version": _VERSION,
        "gateway": gateway,
        "appSettings": _appsettings_doc(guest),
        "smePort": sme_port,
        "services": services,
        "firewallRules": [_rule(guest, MODERN_RULE), _rule(guest, SME_RULE)],
        "localhost": {
            "url": f"https://localhost:{port}",
            "ok": local_ok,
            "status": 200 if local_ok else None,
            "error": None
            if local_ok
            else "No connection could be made because the target machine actively refused it.",
        },
        "serviceEndpoint": endpoint,
    }
