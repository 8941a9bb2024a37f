"""The ``AdminCenter`` extension, purely: what to write, what a state means, where to connect.

:func:`desired_extension` is the PUT body for a VM (``None`` when the
deployed extension already matches: a second run writes nothing); the salt
of a VM that has none comes from the caller (``new_salt``), so this stays
pure. :class:`ExtensionState`, :class:`PortInfo` and :class:`UninstallResult`
are the public results; :func:`url_for` builds ``https://<ip>:<port>``;
:func:`install_hints` maps an install failure's messages to the product's
troubleshooting steps. ``_azure.extension`` does the writing (AZURE_FACTS §1).
"""

from __future__ import annotations

import enum
import html
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from wac_azure._core.errors import (
    ExtensionError,
    InvalidInputError,
    NoPublicIpError,
    NotFoundError,
)
from wac_azure._core.facts import (
    DEFAULT_PORT,
    EXTENSION_NAME,
    EXTENSION_PUBLISHER,
    EXTENSION_TYPE,
    ExtensionFacts,
    StatusFacts,
    VmFacts,
    parse_extension_resource,
)
from wac_azure._core.findings import RequirementReport
from wac_azure._core.guest import GuestPort
from wac_azure._core.ids import VmTarget
from wac_azure._core.plan import ApplyResult
from wac_azure._core.validate import check_port

#: ``typeHandlerVersion`` written; ``autoUpgradeMinorVersion`` carries real builds.
HANDLER_VERSION = "0.0"
#: Where the extension's logs are (inside the VM, then in the portal).
LOG_LOCATIONS: tuple[str, ...] = (
    "C:\\WindowsAzure\\Logs\\Plugins\\AdminCenter (in the VM)",
    "C:\\Packages\\Plugins\\AdminCenter (in the VM)",
    "Azure portal: the VM > Settings > Extensions > AdminCenter > View Detailed Status",
)
TERMINAL_STATES = {"succeeded", "failed", "canceled"}


# ----------------------------------------------------------------------------- helpers


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def normalize_proxy(proxy: object) -> dict[str, str] | None:
    if proxy is None:
        return None
    if isinstance(proxy, str):
        proxy = {"mode": "application", "address": proxy}
    if not isinstance(proxy, Mapping):
        raise InvalidInputError(
            "proxy must be a URL such as 'http://proxy.example:3128' or "
            "{'mode': 'application', 'address': 'http://host:port'}"
        )
    address = str(proxy.get("address") or "")
    if "@" in address:
        # Never echo it: the text before '@' is a user name and password.
        raise InvalidInputError(
            "the proxy address must not carry credentials (user:password@host): the "
            "extension's settings are public, readable by anyone who can read the VM; give "
            "http://host:port of a proxy that allows the VM without a password"
        )
    if not re.match(r"^https?://[^\s/:]+(:\d{1,5})?/?$", address):
        raise InvalidInputError(
            f"proxy address {address!r} must look like http://host:port (no path, no spaces)"
        )
    return {"mode": str(proxy.get("mode") or "application"), "address": address}


def format_url(address: str, port: int) -> str:
    """``https://<address>:<port>``, with an IPv6 address in brackets."""
    check_port(port)
    host = address.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInputError(f"{address!r} is not an IP address") from None
    if ip.version == 6:
        return f"https://[{ip.compressed}]:{port}"
    return f"https://{ip}:{port}"


def install_hints(
    messages: Sequence[str], *, report: RequirementReport | None = None
) -> tuple[str, ...]:
    """The troubleshooting steps that match an install failure's messages.

    Follows the product's "extension failed to install" guide: requirements
    first, then outbound access to the service, then a firewall or proxy in
    the VM; ``report`` (a RequirementReport) adds its failed checks.
    """
    text = " ".join(m for m in messages if m).lower()
    hints: list[str] = []
    failed = []
    if report is not None:
        for check in getattr(report, "checks", ()):
            status = getattr(getattr(check, "status", None), "value", getattr(check, "status", ""))
            if str(status) == "fail":
                failed.append(str(getattr(check, "summary", None) or getattr(check, "code", "")))
    if failed:
        hints.append("The VM does not meet the requirements: " + "; ".join(failed) + ".")
    if any(w in text for w in ("windowsadmincenter", "service tag", "443", "outbound", "connect")):
        hints.append(
            "Allow outbound HTTPS (TCP 443) to the WindowsAdminCenter service tag: add an "
            "outbound NSG rule such as PortForWACService (wac-azure plan / enable adds it), "
            "then check inside the VM with "
            "'Invoke-RestMethod -Method GET -Uri https://wac.azure.com'."
        )
        hints.append(
            "If outbound traffic is allowed and the test still fails, check that no firewall "
            "or proxy inside the VM blocks the connection (a proxy can be passed as proxy=)."
        )
    if "azureactivedirectory" in text or "entra" in text:
        hints.append(
            "Allow outbound HTTPS (TCP 443) to the AzureActiveDirectory service tag "
            "(rule PortForAADService)."
        )
    if any(w in text for w in ("memory", "size", "operating system", "not supported", "os ")):
        hints.append(
            "Check the requirements: Windows Server 2016 or later, at least 3 GiB of memory, "
            "the Azure public cloud (wac-azure check shows each one)."
        )
    if "agent" in text or "not running" in text or "deallocated" in text:
        hints.append("Start the VM and wait until its VM agent reports Ready, then retry.")
    if not hints:
        hints.append(
            "Check the requirements (wac-azure check) and that outbound HTTPS (TCP 443) to "
            "the WindowsAdminCenter service tag is allowed."
        )
    hints.append(
        "If nothing seems wrong, open a support request with the logs listed below "
        "(a network trace can hold secrets: review it before sharing)."
    )
    return tuple(hints)


def extension_from_json(data: Mapping[str, Any]) -> ExtensionFacts:
    """Parse an extension resource (GET with ``$expand=instanceView``) into ExtensionFacts."""

    return parse_extension_resource(data)


def _status_dict(s: StatusFacts) -> dict[str, Any]:
    return {
        "code": s.code,
        "level": s.level,
        "display_status": s.display_status,
        "message": s.message,
    }


# ----------------------------------------------------------------------------- values


class PortSource(str, enum.Enum):
    """Where a :class:`PortInfo` port came from."""

    SETTINGS = "settings"
    #: ``SmePort`` in the registry (the legacy gateway).
    REGISTRY = "registry"
    #: ``Kestrel.Endpoints.WindowsAdminCenter.Url`` in appsettings.json (the modernized gateway).
    APPSETTINGS = "appsettings"
    DEFAULT = "default"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class ExtensionState:
    """The ``AdminCenter`` extension on one VM, as Azure reports it.

    ``installed`` is False when the VM has no extension of that name (every
    other field is then empty). ``port`` is the ``port`` setting,
    ``handler_version`` the running build when the instance view says it.
    ``changed`` tells whether the call that produced this state wrote anything.
    """

    target: VmTarget
    installed: bool
    provisioning_state: str | None = None
    handler_version: str | None = None
    port: int | None = None
    salt: str | None = None
    auto_upgrade: bool | None = None
    statuses: tuple[StatusFacts, ...] = ()
    substatuses: tuple[StatusFacts, ...] = ()
    changed: bool = False

    @classmethod
    def from_facts(
        cls, target: VmTarget, ext: ExtensionFacts | None, *, changed: bool = False
    ) -> ExtensionState:
        """Build the state from :class:`~wac_azure.ExtensionFacts` (None: absent)."""
        if ext is None:
            return cls(target, False, changed=changed)
        return cls(
            target,
            True,
            provisioning_state=ext.provisioning_state,
            handler_version=ext.handler_version,
            port=ext.port,
            salt=ext.salt,
            auto_upgrade=ext.auto_upgrade,
            statuses=ext.statuses,
            substatuses=ext.substatuses,
            changed=changed,
        )

    @property
    def succeeded(self) -> bool:
        """Installed and provisioned successfully."""
        return self.installed and (self.provisioning_state or "").lower() == "succeeded"

    @property
    def failed(self) -> bool:
        """Installed but provisioning ended ``Failed``."""
        return self.installed and (self.provisioning_state or "").lower() == "failed"

    @property
    def messages(self) -> tuple[str, ...]:
        """The substatus (then status) messages, non-empty ones only."""
        return tuple(s.message for s in (*self.substatuses, *self.statuses) if s.message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "installed": self.installed,
            "provisioning_state": self.provisioning_state,
            "handler_version": self.handler_version,
            "port": self.port,
            "salt": self.salt,
            "auto_upgrade": self.auto_upgrade,
            "statuses": [_status_dict(s) for s in self.statuses],
            "substatuses": [_status_dict(s) for s in self.substatuses],
            "changed": self.changed,
        }

    def summary(self) -> str:
        """One line: name, state, version, port."""
        if not self.installed:
            return f"{self.target.name}: AdminCenter extension not installed"
        return (
            f"{self.target.name}: AdminCenter {self.provisioning_state or 'unknown'}"
            f", version {self.handler_version or 'unknown'}, port {self.port or 'unset'}"
            + (" (changed)" if self.changed else "")
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        for s in self.substatuses:
            lines.append(f"  [{s.level or '-'}] {s.code or ''}: {s.message or ''}".rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{_esc(s.level)}</td><td>{_esc(s.code)}</td><td>{_esc(s.message)}</td></tr>"
            for s in self.substatuses
        )
        details = (
            f"<details><summary>{len(self.substatuses)} substatus(es)</summary>"
            f"<table><tr><th>level</th><th>code</th><th>message</th></tr>{rows}</table></details>"
            if self.substatuses
            else ""
        )
        return f"<div><strong>{_esc(self.summary())}</strong>{details}</div>"


@attrs.frozen
class PortInfo:
    """The port Windows Admin Center listens on, and where that came from.

    ``source`` is ``appsettings`` when the modernized gateway's
    appsettings.json was read inside the VM (through Run Command),
    ``registry`` when the legacy gateway's ``SmePort`` value was,
    ``settings`` when it comes from the extension's ``port`` setting,
    ``default`` (6516) when none says. ``registry_port`` is the port read
    inside the VM (from either place); ``gateway`` the gateway found there
    (``"modern"``, ``"legacy"``, or ``None`` when not read or not found).
    """

    target: VmTarget
    port: int
    source: PortSource
    settings_port: int | None = None
    registry_port: int | None = None
    gateway: str | None = None

    @property
    def mismatch(self) -> bool:
        """The registry and the settings disagree (the registry wins: it is what listens)."""
        return (
            self.settings_port is not None
            and self.registry_port is not None
            and self.settings_port != self.registry_port
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": str(self.target),
            "port": self.port,
            "source": self.source.value,
            "settings_port": self.settings_port,
            "registry_port": self.registry_port,
            "gateway": self.gateway,
            "mismatch": self.mismatch,
        }

    def __str__(self) -> str:
        text = f"{self.target.name}: port {self.port} (from {self.source.value})"
        if self.mismatch:
            where = "appsettings.json" if self.source is PortSource.APPSETTINGS else "SmePort"
            text += (
                f"; the extension settings say {self.settings_port} but the VM's "
                f"{where} says {self.registry_port}"
            )
        return text

    def _repr_html_(self) -> str:
        return f"<div>{_esc(self)}</div>"


@attrs.frozen
class UninstallResult:
    """What :meth:`ExtensionManager.uninstall` did.

    ``removed`` tells whether the extension was deleted (False: it was not
    there); ``rules`` is the NSG rule removal result when asked for.
    """

    target: VmTarget
    removed: bool
    previous: ExtensionState
    rules: ApplyResult | None = None

    @property
    def changed(self) -> bool:
        """Anything was written."""
        return self.removed or (self.rules is not None and self.rules.changed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        rules = self.rules.to_dict() if self.rules is not None else None
        return {
            "target": str(self.target),
            "removed": self.removed,
            "previous": self.previous.to_dict(),
            "rules": rules,
            "changed": self.changed,
        }

    def __str__(self) -> str:
        text = (
            f"{self.target.name}: AdminCenter extension removed"
            if self.removed
            else f"{self.target.name}: AdminCenter extension was not installed (nothing to do)"
        )
        if self.rules is not None:
            text += "\n" + str(self.rules)
        return text

    def _repr_html_(self) -> str:
        first, _, rest = str(self).partition("\n")
        details = f"<details><summary>rules</summary><pre>{_esc(rest)}</pre></details>"
        return f"<div><strong>{_esc(first)}</strong>{details if rest else ''}</div>"


def first_line(exc: BaseException) -> str:
    return (str(exc).partition("\n")[0] or type(exc).__name__)[:300]


def port_info(
    target: VmTarget,
    settings_port: int | None,
    registry_port: int | None,
    *,
    source: PortSource = PortSource.REGISTRY,
    gateway: str | None = None,
) -> PortInfo:
    """Combine the settings port and the port read inside the VM into a :class:`PortInfo`.

    ``registry_port`` is the port read inside the VM and ``source`` where
    (:attr:`PortSource.REGISTRY` for ``SmePort``, :attr:`PortSource.APPSETTINGS`
    for appsettings.json); ``gateway`` the gateway found there.
    """
    if registry_port is not None:
        return PortInfo(target, registry_port, source, settings_port, registry_port, gateway)
    if settings_port is not None:
        return PortInfo(target, settings_port, PortSource.SETTINGS, settings_port, None, gateway)
    return PortInfo(target, DEFAULT_PORT, PortSource.DEFAULT, None, None, gateway)


def guest_port_info(target: VmTarget, settings_port: int | None, guest: GuestPort) -> PortInfo:
    """A :class:`PortInfo` from the settings port and what the ``port`` guest script read."""
    source = PortSource.APPSETTINGS if guest.source == "appsettings" else PortSource.REGISTRY
    return port_info(target, settings_port, guest.port, source=source, gateway=guest.gateway)


def url_for(facts: VmFacts, port: int, *, via: str = "private") -> str:
    """The connection URL from facts (pure)."""
    nic = facts.primary_nic
    name = facts.target.name
    if via == "public":
        for n in ([nic] if nic else []) + [x for x in facts.nics if x is not nic]:
            for pip in n.public_ips:
                if pip.address:
                    return format_url(pip.address, port)
        raise NoPublicIpError(
            f"{name} has no public IP address with an assigned address; connect over the "
            "private IP (via='private') from the virtual network, or attach a public IP"
        )
    if nic is None or not nic.private_ips:
        raise NotFoundError(f"{name} has no NIC with a private IP address")
    return format_url(nic.private_ips[0], port)


def desired_extension(
    facts: VmFacts,
    *,
    port: int,
    salt: str | None,
    proxy: dict[str, str] | Literal[False] | None,
    new_salt: Callable[[], str],
) -> dict[str, Any] | None:
    """The extension PUT body for ``facts``, or ``None`` when the deployed one already matches.

    ``proxy``: ``None`` keeps whatever proxy is deployed (as it is, never
    re-validated), ``False`` removes it, a dict (already validated) sets it.
    ``new_salt`` makes a salt for a VM that has none (the caller's randomness:
    this function is pure). :class:`~wac_azure.ExtensionError` when the VM holds
    an ``AdminCenter`` extension of another publisher, or WAC under another name.
    """
    t = facts.target
    existing = facts.extension
    if existing is not None and not existing.is_admin_center:
        raise ExtensionError(
            f"{t.name} has an extension named AdminCenter from "
            f"{existing.publisher}/{existing.type}; Azure cannot change an extension's "
            "publisher or type: remove it first"
        )
    for other in facts.other_extensions:
        if other.name.lower() != EXTENSION_NAME.lower():
            raise ExtensionError(
                f"{t.name} already has the Windows Admin Center extension under the name "
                f"{other.name!r}; remove it first (the portal expects the name AdminCenter)"
            )
    settings: dict[str, Any] = dict(existing.settings) if existing is not None else {}
    chosen_salt = salt or (existing.salt if existing is not None else None)
    if not chosen_salt:
        chosen_salt = new_salt()
    if existing is not None:
        if proxy is None:
            same_proxy = True
        elif proxy is False:
            same_proxy = "proxy" not in settings
        else:
            same_proxy = settings.get("proxy") == proxy
        same = (
            existing.port == port
            and existing.salt == chosen_salt
            and same_proxy
            and (existing.provisioning_state or "").lower() not in ("failed", "canceled")
        )
        if same:
            return None
    settings["port"] = str(port)
    settings["salt"] = chosen_salt
    if proxy is False:
        settings.pop("proxy", None)
    elif proxy is not None:
        settings["proxy"] = proxy
    return {
        "location": facts.location,
        "properties": {
            "publisher": EXTENSION_PUBLISHER,
            "type": EXTENSION_TYPE,
            "typeHandlerVersion": HANDLER_VERSION,
            "autoUpgradeMinorVersion": True,
            "settings": settings,
        },
    }
