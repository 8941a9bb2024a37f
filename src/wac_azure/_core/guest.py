"""PowerShell scripts the library runs inside a VM through Run Command, and their parsers.

Protocol (the emulator's guest model answers the same scripts):

* a script goes through ``POST .../virtualMachines/{vm}/runCommand`` with
  ``{"commandId": "RunPowerShellScript", "script": [lines], "parameters": [...]}``;
* its first line is the marker ``# wac-azure-guest-script: <name> v1``;
* it prints exactly one JSON document on stdout and nothing else.

Scripts are real PowerShell (Windows PowerShell 5.1, the one Run Command
uses): read the ``SmePort`` registry value, the Windows Admin Center
services, the ``SmeInboundOpenException`` firewall rule, and whether
``https://localhost:<port>`` and the service endpoint answer.

Only one Run Command runs on a VM at a time; a second gets 409 "execution is
in progress", which :func:`run_guest_script` retries (the library's policy).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import attrs

from wac_azure._core.errors import GuestCommandError

_log = logging.getLogger(__name__)

#: Every script starts with this marker followed by ``<name> v1``.
MARKER_PREFIX = "# wac-azure-guest-script:"
_VERSION = 1
_REG_KEY = r"HKLM:\SOFTWARE\Microsoft\ServerManagementGateway"

# The helper shared by both scripts: read SmePort as a string, $null when absent.
_READ_PORT = [
    "function Get-WacSmePort {",
    "    try {",
    f"        $item = Get-ItemProperty -Path '{_REG_KEY}' -Name 'SmePort' -ErrorAction Stop",
    "        if ($null -ne $item.SmePort -and [string]$item.SmePort -ne '') {",
    "            return [string]$item.SmePort",
    "        }",
    "    } catch {",
    "    }",
    "    return $null",
    "}",
]

#: Reads ``HKLM\SOFTWARE\Microsoft\ServerManagementGateway\SmePort``.
PORT_SCRIPT: tuple[str, ...] = (
    f"{MARKER_PREFIX} port v{_VERSION}",
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    *_READ_PORT,
    "$doc = [ordered]@{ script = 'port'; version = 1; smePort = (Get-WacSmePort) }",
    "Write-Output ($doc | ConvertTo-Json -Compress -Depth 4)",
)

#: Gathers everything the troubleshooting guide checks inside the VM, as one JSON document.
DIAGNOSE_SCRIPT: tuple[str, ...] = (
    f"{MARKER_PREFIX} diagnose v{_VERSION}",
    "param([string]$Port = '6516')",
    "$ErrorActionPreference = 'Continue'",
    "$ProgressPreference = 'SilentlyContinue'",
    *_READ_PORT,
    "$smePort = Get-WacSmePort",
    "$probePort = if ($smePort) { $smePort } else { $Port }",
    "$services = @(foreach ($name in @('ServerManagementGateway', 'WindowsAdminCenter',"
    " 'WindowsAdminCenterAccountManagement')) {",
    "    $svc = Get-Service -Name $name -ErrorAction SilentlyContinue",
    "    if ($svc) { [ordered]@{ name = $name; status = [string]$svc.Status } }",
    "    elseif ($name -eq 'ServerManagementGateway') {",
    "        [ordered]@{ name = $name; status = 'NotFound' }",
    "    }",
    "})",
    "$profiles = [ordered]@{ Domain = $false; Private = $false; Public = $false }",
    "$found = $false",
    "$rules = @(Get-NetFirewallRule -Name 'SmeInboundOpenException' -ErrorAction SilentlyContinue)",
    "$rules += @(Get-NetFirewallRule -DisplayName 'SmeInboundOpenException'"
    " -ErrorAction SilentlyContinue)",
    "foreach ($rule in $rules) {",
    "    if ($null -eq $rule) { continue }",
    "    $found = $true",
    "    if ([string]$rule.Enabled -ne 'True' -or [string]$rule.Direction -ne 'Inbound'"
    " -or [string]$rule.Action -ne 'Allow') { continue }",
    "    $applies = [string]$rule.Profile",
    "    if ($applies -eq 'Any') { $applies = 'Domain, Private, Public' }",
    "    foreach ($p in ($applies -split ',\\s*')) {",
    "        if ($profiles.Contains($p)) { $profiles[$p] = $true }",
    "    }",
    "}",
    "if (-not ('WacAzureTls' -as [type])) {",
    "Add-Type -TypeDefinition @'",
    "public static class WacAzureTls {",
    "    public static bool AcceptAny(object sender,"
    " System.Security.Cryptography.X509Certificates.X509Certificate certificate,"
    " System.Security.Cryptography.X509Certificates.X509Chain chain,"
    " System.Net.Security.SslPolicyErrors errors) { return true; }",
    "}",
    "'@",
    "}",
    "[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12",
    "function Test-WacUrl([string]$Url, [bool]$AnyCertificate) {",
    "    $result = [ordered]@{ url = $Url; ok = $false; status = $null; error = $null }",
    "    try {",
    "        $request = [Net.HttpWebRequest]::Create($Url)",
    "        $request.Method = 'GET'",
    "        $request.Timeout = 15000",
    "        if ($AnyCertificate) {",
    "            $request.ServerCertificateValidationCallback = [Delegate]::CreateDelegate("
    "[Net.Security.RemoteCertificateValidationCallback], [WacAzureTls].GetMethod('AcceptAny'))",
    "        }",
    "        $response = $request.GetResponse()",
    "        $result.status = [int]$response.StatusCode",
    "        $result.ok = $true",
    "        $response.Close()",
    "    } catch {",
    "        # .NET exceptions arrive wrapped (MethodInvocationException): find the WebException",
    "        $failure = $_.Exception",
    "        while ($null -ne $failure.InnerException -and"
    " -not ($failure -is [Net.WebException])) {",
    "            $failure = $failure.InnerException",
    "        }",
    "        if ($failure -is [Net.WebException] -and $null -ne $failure.Response) {",
    "            # an HTTP answer, even an error status, proves the endpoint is reachable",
    "            $result.status = [int]$failure.Response.StatusCode",
    "            $result.ok = $true",
    "        } else {",
    "            $result.error = [string]$failure.Message",
    "        }",
    "    }",
    "    return $result",
    "}",
    "$doc = [ordered]@{",
    "    script = 'diagnose'",
    "    version = 1",
    "    smePort = $smePort",
    "    services = $services",
    "    firewallRule = [ordered]@{ name = 'SmeInboundOpenException'; found = $found;"
    " profiles = $profiles }",
    "    localhost = (Test-WacUrl ('https://localhost:' + $probePort) $true)",
    "    serviceEndpoint = (Test-WacUrl 'https://wac.azure.com' $false)",
    "}",
    "Write-Output ($doc | ConvertTo-Json -Compress -Depth 6)",
)

_SCRIPTS: dict[str, tuple[str, ...]] = {"port": PORT_SCRIPT, "diagnose": DIAGNOSE_SCRIPT}


def script_lines(name: str) -> list[str]:
    """The lines of the guest script ``name`` (``"port"`` or ``"diagnose"``)."""
    try:
        return list(_SCRIPTS[name])
    except KeyError:
        known = ", ".join(sorted(_SCRIPTS))
        raise GuestCommandError(f"unknown guest script {name!r}; known: {known}") from None


def run_command_body(name: str, *, port: int | None = None) -> dict[str, Any]:
    """The wire JSON of the ``runCommand`` action for script ``name``."""
    body: dict[str, Any] = {"commandId": "RunPowerShellScript", "script": script_lines(name)}
    if port is not None and name == "diagnose":
        body["parameters"] = [{"name": "Port", "value": str(port)}]
    return body


def run_command_output(result: Any) -> tuple[str, str]:
    """``(stdout, stderr)`` of a Run Command result (model or wire JSON)."""
    data = result.as_dict() if hasattr(result, "as_dict") else result
    if not isinstance(data, Mapping) or not isinstance(data.get("value"), list):
        raise GuestCommandError(
            "Run Command answered without a 'value' list of statuses; cannot read its output"
        )
    stdout = stderr = ""
    for item in data["value"]:
        if not isinstance(item, Mapping):
            continue
        code = str(item.get("code") or "")
        message = item.get("message")
        text = message if isinstance(message, str) else ""
        if "/stdout/" in code.lower() + "/":
            stdout += text
        elif "/stderr/" in code.lower() + "/":
            stderr += text
    return stdout, stderr


def _document(stdout: str, stderr: str, script: str) -> dict[str, Any]:
    text = stdout.strip()
    err = stderr.strip()
    if not text:
        detail = f": {err[:500]}" if err else " and nothing on stderr"
        raise GuestCommandError(f"the {script!r} guest script printed nothing on stdout{detail}")
    try:
        doc = json.loads(text)
    except ValueError:
        raise GuestCommandError(
            f"the {script!r} guest script printed something that is not JSON: {text[:200]!r}"
            + (f" (stderr: {err[:300]})" if err else "")
        ) from None
    if not isinstance(doc, dict):
        raise GuestCommandError(
            f"the {script!r} guest script printed a JSON {type(doc).__name__}, not an object"
        )
    if doc.get("script") != script:
        raise GuestCommandError(
            f"expected the output of the {script!r} guest script, got {doc.get('script')!r}"
        )
    if doc.get("version") != _VERSION:
        raise GuestCommandError(
            f"the {script!r} guest script answered version {doc.get('version')!r}; "
            f"this library reads version {_VERSION}"
        )
    return doc


def _port_value(value: Any, script: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise GuestCommandError(f"the {script!r} guest script gave a boolean SmePort")
    try:
        port = int(str(value).strip())
    except ValueError:
        raise GuestCommandError(
            f"the {script!r} guest script gave SmePort {value!r}, which is not a port number"
        ) from None
    if not 1 <= port <= 65535:
        raise GuestCommandError(f"the {script!r} guest script gave SmePort {port}, out of range")
    return port


@attrs.frozen
class GuestPort:
    """What the ``port`` script read: ``SmePort`` (``None`` when absent)."""

    sme_port: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"sme_port": self.sme_port}


@attrs.frozen
class GuestService:
    """A Windows service inside the VM and its status (``"Running"``, ``"NotFound"``...)."""

    name: str
    status: str


@attrs.frozen
class GuestProbe:
    """An HTTPS request made from inside the VM."""

    url: str
    ok: bool
    status: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "status": self.status, "error": self.error}


@attrs.frozen
class GuestDiagnosis:
    """What the ``diagnose`` script found inside the VM."""

    sme_port: int | None
    services: tuple[GuestService, ...]
    firewall_rule_found: bool
    firewall_profiles: Mapping[str, bool]
    localhost: GuestProbe
    service_endpoint: GuestProbe

    def service(self, name: str) -> GuestService | None:
        """The service called ``name`` (case-insensitive), if the script listed it."""
        return next((s for s in self.services if s.name.lower() == name.lower()), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sme_port": self.sme_port,
            "services": [{"name": s.name, "status": s.status} for s in self.services],
            "firewall_rule": {
                "name": "SmeInboundOpenException",
                "found": self.firewall_rule_found,
                "profiles": dict(self.firewall_profiles),
            },
            "localhost": self.localhost.to_dict(),
            "service_endpoint": self.service_endpoint.to_dict(),
        }


def parse_port(stdout: str, stderr: str = "") -> GuestPort:
    """Parse the ``port`` script's output; :class:`GuestCommandError` on anything else."""
    doc = _document(stdout, stderr, "port")
    if "smePort" not in doc:
        raise GuestCommandError("the 'port' guest script's JSON has no 'smePort' field")
    return GuestPort(_port_value(doc["smePort"], "port"))


def _probe(value: Any, field: str) -> GuestProbe:
    if not isinstance(value, Mapping):
        raise GuestCommandError(f"the 'diagnose' guest script's {field!r} is not an object")
    status = value.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise GuestCommandError(f"the 'diagnose' guest script's {field}.status is not a number")
    error = value.get("error")
    return GuestProbe(
        url=str(value.get("url") or ""),
        ok=value.get("ok") is True,
        status=status,
        error=None if error is None else str(error),
    )


def parse_diagnosis(stdout: str, stderr: str = "") -> GuestDiagnosis:
    """Parse the ``diagnose`` script's output; :class:`GuestCommandError` on anything else."""
    doc = _document(stdout, stderr, "diagnose")
    services_raw = doc.get("services")
    if isinstance(services_raw, Mapping):  # PowerShell unwraps one-element arrays
        services_raw = [services_raw]
    if not isinstance(services_raw, list):
        raise GuestCommandError("the 'diagnose' guest script's 'services' is not a list")
    services = []
    for item in services_raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise GuestCommandError("the 'diagnose' guest script listed a service without a name")
        services.append(GuestService(item["name"], str(item.get("status") or "Unknown")))
    rule = doc.get("firewallRule")
    if not isinstance(rule, Mapping) or not isinstance(rule.get("profiles", {}), Mapping):
        raise GuestCommandError("the 'diagnose' guest script's 'firewallRule' is malformed")
    profiles = {str(k): v is True for k, v in dict(rule.get("profiles") or {}).items()}
    for name in ("Domain", "Private", "Public"):
        profiles.setdefault(name, False)
    return GuestDiagnosis(
        sme_port=_port_value(doc.get("smePort"), "diagnose"),
        services=tuple(services),
        firewall_rule_found=rule.get("found") is True,
        firewall_profiles=profiles,
        localhost=_probe(doc.get("localhost"), "localhost"),
        service_endpoint=_probe(doc.get("serviceEndpoint"), "serviceEndpoint"),
    )
