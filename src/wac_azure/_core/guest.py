r"""PowerShell scripts the library runs inside a VM through Run Command, and their parsers.

Protocol (the emulator's guest model answers the same scripts):

* a script goes through ``POST .../virtualMachines/{vm}/runCommand`` with
  ``{"commandId": "RunPowerShellScript", "script": [lines], "parameters": [...]}``;
* its first line is the marker ``# wac-azure-guest-script: <name> v2``;
* it prints exactly one JSON document on stdout and nothing else.

Scripts are real PowerShell (Windows PowerShell 5.1, the one Run Command
uses). Two gateways exist (docs/extension.md, "Inside the VM"):

* the **modernized** gateway (extension 0.24.0.0 and later): service
  ``WindowsAdminCenter``, port in
  ``%ProgramFiles%\WindowsAdminCenter\Service\appsettings.json`` at
  ``Kestrel.Endpoints.WindowsAdminCenter.Url`` (``"https://*:<port>"``),
  firewall rule ``WacInboundOpenException``, no ``SmePort``;
* the **legacy** gateway: service ``ServerManagementGateway``, port in
  ``HKLM\SOFTWARE\Microsoft\ServerManagementGateway`` value ``SmePort``,
  firewall rule ``SmeInboundOpenException``.

The scripts read both places, both services and both firewall rules, and
say which gateway they found (``"gateway": "modern" | "legacy" | null``).
The ``diagnose`` script also requests ``https://localhost:<port>`` and the
service endpoint ``https://<region>.service.waconazure.com``.

Only one Run Command runs on a VM at a time; a second gets 409 "execution is
in progress", which :func:`run_guest_script` retries (the library's policy).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from wac_azure._core.errors import GuestCommandError

_log = logging.getLogger(__name__)

#: Every script starts with this marker followed by ``<name> v2``.
MARKER_PREFIX = "# wac-azure-guest-script:"
_VERSION = 2

#: The two gateways, as the scripts name them.
Gateway = Literal["modern", "legacy"]
MODERN: Gateway = "modern"
LEGACY: Gateway = "legacy"
#: The Windows service of each gateway.
SERVICE_NAMES: Mapping[str, str] = {MODERN: "WindowsAdminCenter", LEGACY: "ServerManagementGateway"}
#: The Windows firewall rule each gateway's installer creates.
FIREWALL_RULES: Mapping[str, str] = {
    MODERN: "WacInboundOpenException",
    LEGACY: "SmeInboundOpenException",
}
#: The legacy gateway's registry key (value ``SmePort``).
REGISTRY_KEY = "HKLM\\SOFTWARE\\Microsoft\\ServerManagementGateway"
#: The modernized gateway's settings file and the JSON path of its URL.
APPSETTINGS_PATH = "%ProgramFiles%\\WindowsAdminCenter\\Service\\appsettings.json"
APPSETTINGS_URL_PATH = "Kestrel.Endpoints.WindowsAdminCenter.Url"
#: The service endpoint the VM must reach (``{region}`` is the VM's location).
SERVICE_ENDPOINT = "https://{region}.service.waconazure.com"

_PS_REG_KEY = r"HKLM:\SOFTWARE\Microsoft\ServerManagementGateway"

# Helpers shared by both scripts (PowerShell 5.1).
_HELPERS = [
    # SmePort as a string, $null when absent.
    "function Get-WacSmePort {",
    "    try {",
    f"        $item = Get-ItemProperty -Path '{_PS_REG_KEY}' -Name 'SmePort' -ErrorAction Stop",
    "        if ($null -ne $item.SmePort -and [string]$item.SmePort -ne '') {",
    "            return [string]$item.SmePort",
    "        }",
    "    } catch {",
    "    }",
    "    return $null",
    "}",
    # The Url of appsettings.json, as written (the library parses the port).
    "function Get-WacAppSettings {",
    "    $path = Join-Path $env:ProgramFiles 'WindowsAdminCenter\\Service\\appsettings.json'",
    "    $result = [ordered]@{ found = $false; url = $null; error = $null }",
    "    if (-not (Test-Path -LiteralPath $path)) { return $result }",
    "    $result.found = $true",
    "    try {",
    "        $json = Get-Content -LiteralPath $path -Raw -ErrorAction Stop"
    " | ConvertFrom-Json -ErrorAction Stop",
    "        $url = $json.Kestrel.Endpoints.WindowsAdminCenter.Url",
    "        if ($null -ne $url) { $result.url = [string]$url }",
    "    } catch {",
    "        $result.error = [string]$_.Exception.Message",
    "    }",
    "    return $result",
    "}",
    # Which gateway is installed: its service first, then its port's place.
    "function Get-WacGateway($AppSettings, $SmePort) {",
    "    if (Get-Service -Name 'WindowsAdminCenter' -ErrorAction SilentlyContinue) {"
    " return 'modern' }",
    "    if (Get-Service -Name 'ServerManagementGateway' -ErrorAction SilentlyContinue) {"
    " return 'legacy' }",
    "    if ($AppSettings.found) { return 'modern' }",
    "    if ($SmePort) { return 'legacy' }",
    "    return $null",
    "}",
]

#: Reads the port from appsettings.json and from ``SmePort``, and names the gateway.
PORT_SCRIPT: tuple[str, ...] = (
    f"{MARKER_PREFIX} port v{_VERSION}",
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    *_HELPERS,
    "$smePort = Get-WacSmePort",
    "$appSettings = Get-WacAppSettings",
    "$doc = [ordered]@{",
    "    script = 'port'",
    f"    version = {_VERSION}",
    "    gateway = (Get-WacGateway $appSettings $smePort)",
    "    appSettings = $appSettings",
    "    smePort = $smePort",
    "}",
    "Write-Output ($doc | ConvertTo-Json -Compress -Depth 4)",
)

#: Gathers everything the troubleshooting guide checks inside the VM, as one JSON document.
DIAGNOSE_SCRIPT: tuple[str, ...] = (
    f"{MARKER_PREFIX} diagnose v{_VERSION}",
    "param([string]$Port = '6516', [string]$Region = '')",
    "$ErrorActionPreference = 'Continue'",
    "$ProgressPreference = 'SilentlyContinue'",
    *_HELPERS,
    "$smePort = Get-WacSmePort",
    "$appSettings = Get-WacAppSettings",
    "$gateway = Get-WacGateway $appSettings $smePort",
    "$appPort = $null",
    "if ($appSettings.url -and ($appSettings.url -match ':(\\d+)/?$')) { $appPort = $Matches[1] }",
    "$probePort = $Port",
    "if ($gateway -eq 'modern' -and $appPort) { $probePort = $appPort }",
    "elseif ($gateway -eq 'legacy' -and $smePort) { $probePort = $smePort }",
    "elseif ($appPort) { $probePort = $appPort }",
    "elseif ($smePort) { $probePort = $smePort }",
    "$services = @(foreach ($name in @('WindowsAdminCenter', 'ServerManagementGateway',"
    " 'WindowsAdminCenterAccountManagement')) {",
    "    $svc = Get-Service -Name $name -ErrorAction SilentlyContinue",
    "    if ($svc) { [ordered]@{ name = $name; status = [string]$svc.Status } }",
    "    elseif (($gateway -eq 'legacy' -and $name -eq 'ServerManagementGateway') -or"
    " ($gateway -ne 'legacy' -and $name -eq 'WindowsAdminCenter')) {",
    "        [ordered]@{ name = $name; status = 'NotFound' }",
    "    }",
    "})",
    "function Get-WacFirewallRule([string]$RuleName) {",
    "    $profiles = [ordered]@{ Domain = $false; Private = $false; Public = $false }",
    "    $found = $false",
    "    $rules = @(Get-NetFirewallRule -Name $RuleName -ErrorAction SilentlyContinue)",
    "    $rules += @(Get-NetFirewallRule -DisplayName $RuleName -ErrorAction SilentlyContinue)",
    "    foreach ($rule in $rules) {",
    "        if ($null -eq $rule) { continue }",
    "        $found = $true",
    "        if ([string]$rule.Enabled -ne 'True' -or [string]$rule.Direction -ne 'Inbound'"
    " -or [string]$rule.Action -ne 'Allow') { continue }",
    "        $applies = [string]$rule.Profile",
    "        if ($applies -eq 'Any') { $applies = 'Domain, Private, Public' }",
    "        foreach ($p in ($applies -split ',\\s*')) {",
    "            if ($profiles.Contains($p)) { $profiles[$p] = $true }",
    "        }",
    "    }",
    "    return [ordered]@{ name = $RuleName; found = $found; profiles = $profiles }",
    "}",
    "$firewallRules = @((Get-WacFirewallRule 'WacInboundOpenException'),"
    " (Get-WacFirewallRule 'SmeInboundOpenException'))",
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
    # The region: the library passes the VM's location; else ask the instance metadata.
    "if ($Region -notmatch '^[A-Za-z0-9]+$') { $Region = '' }",
    "if (-not $Region) {",
    "    try {",
    "        $imds = [Net.HttpWebRequest]::Create("
    "'http://169.254.169.254/metadata/instance/compute/location?api-version=2021-02-01"
    "&format=text')",
    "        $imds.Headers.Add('Metadata', 'true')",
    "        $imds.Proxy = $null",
    "        $imds.Timeout = 5000",
    "        $imdsResponse = $imds.GetResponse()",
    "        $reader = New-Object IO.StreamReader($imdsResponse.GetResponseStream())",
    "        $Region = $reader.ReadToEnd().Trim()",
    "        $reader.Close()",
    "        $imdsResponse.Close()",
    "    } catch {",
    "        $Region = ''",
    "    }",
    "    if ($Region -notmatch '^[A-Za-z0-9]+$') { $Region = '' }",
    "}",
    "if ($Region) {",
    "    $endpoint = Test-WacUrl ('https://' + $Region.ToLowerInvariant()"
    " + '.service.waconazure.com') $false",
    "} else {",
    "    $endpoint = [ordered]@{ url = $null; ok = $false; status = $null;"
    " error = 'the region of the VM is not known (no Region parameter, and the instance"
    " metadata service did not answer)' }",
    "}",
    "$doc = [ordered]@{",
    "    script = 'diagnose'",
    f"    version = {_VERSION}",
    "    gateway = $gateway",
    "    appSettings = $appSettings",
    "    smePort = $smePort",
    "    services = $services",
    "    firewallRules = $firewallRules",
    "    localhost = (Test-WacUrl ('https://localhost:' + $probePort) $true)",
    "    serviceEndpoint = $endpoint",
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


_REGION = re.compile(r"[A-Za-z0-9]+")


def run_command_body(
    name: str, *, port: int | None = None, region: str | None = None
) -> dict[str, Any]:
    """The wire JSON of the ``runCommand`` action for script ``name``.

    For ``diagnose``: ``port`` is the port to request when the VM names none,
    ``region`` the VM's location (``westeurope``), which names the service
    endpoint; a region that is not a plain Azure location name is not sent
    (the script then asks the instance metadata service).
    """
    body: dict[str, Any] = {"commandId": "RunPowerShellScript", "script": script_lines(name)}
    if name == "diagnose":
        parameters = []
        if port is not None:
            parameters.append({"name": "Port", "value": str(port)})
        if region and _REGION.fullmatch(region):
            parameters.append({"name": "Region", "value": region.lower()})
        if parameters:
            body["parameters"] = parameters
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


def _port_value(value: Any, script: str, what: str = "SmePort") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise GuestCommandError(f"the {script!r} guest script gave a boolean {what}")
    try:
        port = int(str(value).strip())
    except ValueError:
        raise GuestCommandError(
            f"the {script!r} guest script gave {what} {value!r}, which is not a port number"
        ) from None
    if not 1 <= port <= 65535:
        raise GuestCommandError(f"the {script!r} guest script gave {what} {port}, out of range")
    return port


# "https://*:6516", "https://+:6516/", "https://0.0.0.0:6516", "https://[::]:6516",
# "https://host.example:6516/path": scheme, then a host (bracketed IPv6 or no colon), a port.
_URL = re.compile(
    r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[^\]]*\]|[^:/\[\]\s]*)"
    r"(?::(?P<port>[^/\s]*))?(?:/\S*)?\s*$"
)


def appsettings_port(url: Any, script: str = "port") -> int:
    """The port of a Kestrel endpoint URL from appsettings.json (``https://*:6516``...).

    Accepts any host form Kestrel takes (``*``, ``+``, ``0.0.0.0``, ``[::]``,
    ``localhost``, a name) and a trailing ``/``; several URLs separated by ``;``
    give the first one's port. :class:`GuestCommandError` for anything that
    names no port (Kestrel itself refuses such an endpoint).
    """
    if not isinstance(url, str):
        raise GuestCommandError(
            f"the {script!r} guest script gave {APPSETTINGS_URL_PATH} as a "
            f"{type(url).__name__}, not a URL string"
        )
    first = url.split(";", 1)[0]
    found = _URL.match(first)
    if found is None or found.group("port") is None:
        raise GuestCommandError(
            f"appsettings.json's {APPSETTINGS_URL_PATH} is {url[:200]!r}, which names no port"
        )
    port = _port_value(found.group("port"), script, f"the port of {first[:100]!r}")
    if port is None:
        raise GuestCommandError(
            f"appsettings.json's {APPSETTINGS_URL_PATH} is {url[:200]!r}, which names no port"
        )
    return port


def _gateway(value: Any, script: str) -> Gateway | None:
    if value is None or value == "":
        return None
    if value == MODERN:
        return MODERN
    if value == LEGACY:
        return LEGACY
    raise GuestCommandError(
        f"the {script!r} guest script named gateway {value!r}; expected 'modern', 'legacy' or null"
    )


@attrs.frozen
class AppSettings:
    """What a script read from the modernized gateway's appsettings.json.

    ``found``: the file exists; ``url``: ``Kestrel.Endpoints.WindowsAdminCenter.Url``
    as written; ``port``: its port; ``error``: why the file could not be read.
    """

    found: bool = False
    url: str | None = None
    port: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found, "url": self.url, "port": self.port, "error": self.error}


def _appsettings(value: Any, script: str) -> AppSettings:
    if value is None:
        return AppSettings()
    if not isinstance(value, Mapping):
        raise GuestCommandError(f"the {script!r} guest script's 'appSettings' is not an object")
    url = value.get("url")
    error = value.get("error")
    return AppSettings(
        found=value.get("found") is True,
        url=None if url is None else str(url),
        port=None if url is None or url == "" else appsettings_port(url, script),
        error=None if error is None else str(error),
    )


def _gateway_port(
    gateway: Gateway | None, app: AppSettings, sme_port: int | None
) -> tuple[int | None, Literal["appsettings", "registry"] | None]:
    """The port the gateway listens on, and where it was read."""
    if gateway == LEGACY and sme_port is not None:
        return sme_port, "registry"
    if gateway != LEGACY and app.port is not None:
        return app.port, "appsettings"
    if gateway is None and sme_port is not None:
        return sme_port, "registry"
    return None, None


@attrs.frozen
class GuestPort:
    """What the ``port`` script read.

    ``gateway`` is ``"modern"``, ``"legacy"`` or ``None`` (no gateway found);
    ``port`` the port that gateway listens on and ``source`` where it was read
    (``"appsettings"`` or ``"registry"``), both ``None`` when unknown;
    ``sme_port`` the legacy ``SmePort`` value and ``appsettings`` the
    modernized gateway's file, whatever the gateway.
    """

    sme_port: int | None
    gateway: Gateway | None = None
    appsettings: AppSettings = attrs.field(factory=AppSettings)

    @property
    def port(self) -> int | None:
        return _gateway_port(self.gateway, self.appsettings, self.sme_port)[0]

    @property
    def source(self) -> Literal["appsettings", "registry"] | None:
        return _gateway_port(self.gateway, self.appsettings, self.sme_port)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "port": self.port,
            "source": self.source,
            "sme_port": self.sme_port,
            "appsettings": self.appsettings.to_dict(),
        }


@attrs.frozen
class GuestService:
    """A Windows service inside the VM and its status (``"Running"``, ``"NotFound"``...)."""

    name: str
    status: str


@attrs.frozen
class GuestFirewallRule:
    """A Windows firewall rule: whether it exists, and the profiles it allows inbound on."""

    name: str
    found: bool
    profiles: Mapping[str, bool]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "found": self.found, "profiles": dict(self.profiles)}


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
    """What the ``diagnose`` script found inside the VM.

    ``gateway`` names the gateway found (``"modern"``, ``"legacy"`` or
    ``None``); :attr:`service_name`, :attr:`firewall_rule` and :attr:`port`
    are that gateway's (the modernized gateway's names when none was found).
    ``firewall_rules`` holds both rules as the script saw them.
    """

    sme_port: int | None
    services: tuple[GuestService, ...]
    firewall_rules: tuple[GuestFirewallRule, ...]
    localhost: GuestProbe
    service_endpoint: GuestProbe
    gateway: Gateway | None = None
    appsettings: AppSettings = attrs.field(factory=AppSettings)

    def service(self, name: str) -> GuestService | None:
        """The service called ``name`` (case-insensitive), if the script listed it."""
        return next((s for s in self.services if s.name.lower() == name.lower()), None)

    @property
    def service_name(self) -> str:
        """The Windows service of the gateway found."""
        return SERVICE_NAMES[self.gateway or MODERN]

    @property
    def firewall_rule(self) -> GuestFirewallRule:
        """The firewall rule of the gateway found (an absent rule when the script had none)."""
        name = FIREWALL_RULES[self.gateway or MODERN]
        for rule in self.firewall_rules:
            if rule.name.lower() == name.lower():
                return rule
        return GuestFirewallRule(name, False, dict.fromkeys(("Domain", "Private", "Public"), False))

    @property
    def firewall_rule_found(self) -> bool:
        return self.firewall_rule.found

    @property
    def firewall_profiles(self) -> Mapping[str, bool]:
        return self.firewall_rule.profiles

    @property
    def port(self) -> int | None:
        """The port the gateway found listens on (appsettings.json or SmePort)."""
        return _gateway_port(self.gateway, self.appsettings, self.sme_port)[0]

    @property
    def port_source(self) -> Literal["appsettings", "registry"] | None:
        return _gateway_port(self.gateway, self.appsettings, self.sme_port)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "port": self.port,
            "port_source": self.port_source,
            "sme_port": self.sme_port,
            "appsettings": self.appsettings.to_dict(),
            "services": [{"name": s.name, "status": s.status} for s in self.services],
            "firewall_rule": self.firewall_rule.to_dict(),
            "firewall_rules": [r.to_dict() for r in self.firewall_rules],
            "localhost": self.localhost.to_dict(),
            "service_endpoint": self.service_endpoint.to_dict(),
        }


def parse_port(stdout: str, stderr: str = "") -> GuestPort:
    """Parse the ``port`` script's output; :class:`GuestCommandError` on anything else."""
    doc = _document(stdout, stderr, "port")
    if "smePort" not in doc or "appSettings" not in doc or "gateway" not in doc:
        raise GuestCommandError(
            "the 'port' guest script's JSON lacks 'gateway', 'appSettings' or 'smePort'"
        )
    return GuestPort(
        sme_port=_port_value(doc["smePort"], "port"),
        gateway=_gateway(doc["gateway"], "port"),
        appsettings=_appsettings(doc["appSettings"], "port"),
    )


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


def _rules(value: Any) -> tuple[GuestFirewallRule, ...]:
    if isinstance(value, Mapping):  # PowerShell unwraps one-element arrays
        value = [value]
    if not isinstance(value, list):
        raise GuestCommandError("the 'diagnose' guest script's 'firewallRules' is not a list")
    out = []
    for rule in value:
        if (
            not isinstance(rule, Mapping)
            or not isinstance(rule.get("name"), str)
            or not isinstance(rule.get("profiles", {}), Mapping)
        ):
            raise GuestCommandError("the 'diagnose' guest script listed a malformed firewall rule")
        profiles = {str(k): v is True for k, v in dict(rule.get("profiles") or {}).items()}
        for name in ("Domain", "Private", "Public"):
            profiles.setdefault(name, False)
        out.append(GuestFirewallRule(rule["name"], rule.get("found") is True, profiles))
    return tuple(out)


def parse_diagnosis(stdout: str, stderr: str = "") -> GuestDiagnosis:
    """Parse the ``diagnose`` script's output; :class:`GuestCommandError` on anything else."""
    doc = _document(stdout, stderr, "diagnose")
    services_raw = doc.get("services")
    if isinstance(services_raw, Mapping):  # PowerShell unwraps one-element arrays
        services_raw = [services_raw]
    if services_raw is None:  # PowerShell turns an empty @() into null
        services_raw = []
    if not isinstance(services_raw, list):
        raise GuestCommandError("the 'diagnose' guest script's 'services' is not a list")
    services = []
    for item in services_raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise GuestCommandError("the 'diagnose' guest script listed a service without a name")
        services.append(GuestService(item["name"], str(item.get("status") or "Unknown")))
    return GuestDiagnosis(
        sme_port=_port_value(doc.get("smePort"), "diagnose"),
        services=tuple(services),
        firewall_rules=_rules(doc.get("firewallRules")),
        localhost=_probe(doc.get("localhost"), "localhost"),
        service_endpoint=_probe(doc.get("serviceEndpoint"), "serviceEndpoint"),
        gateway=_gateway(doc.get("gateway"), "diagnose"),
        appsettings=_appsettings(doc.get("appSettings"), "diagnose"),
    )
