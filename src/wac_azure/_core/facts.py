"""VmFacts: an immutable snapshot of one VM, and its parsing from ARM wire JSON.

Everything the requirement checks, the network planner and the extension
manager need to know about a VM is a field here (``_azure.reader`` reads it,
fleets assemble it from resource-group lists). Parsing is defensive: ARM JSON
with missing fields, ``null`` values or unexpected case produces *unknown*
values (``None``), never ``KeyError``/``TypeError``/``AttributeError``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wac_azure._core.errors import WacAzureError
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg import NetworkSecurityGroup
from wac_azure._core.redaction import redact_repr

#: Name, publisher and type of the Windows Admin Center extension (AZURE_FACTS §1).
EXTENSION_NAME = "AdminCenter"
EXTENSION_PUBLISHER = "Microsoft.AdminCenter"
EXTENSION_TYPE = "AdminCenter"
#: The port Windows Admin Center listens on unless told otherwise.
DEFAULT_PORT = 6516

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``value`` (``{}`` for anything that is not a mapping)."""
    if isinstance(value, types.MappingProxyType):
        return value
    if not isinstance(value, Mapping):
        return _EMPTY
    return types.MappingProxyType(copy.deepcopy(dict(value)))


def _lower_keys(
    value: Mapping[str, NetworkSecurityGroup] | None,
) -> Mapping[str, NetworkSecurityGroup]:
    """A read-only mapping with lower-cased string keys."""
    if not isinstance(value, Mapping):
        return types.MappingProxyType({})
    return types.MappingProxyType({str(k).lower(): v for k, v in value.items()})


def str_tuple(value: str | Iterable[object] | None) -> tuple[str, ...]:
    """``value`` as a tuple of strings: ``None`` is empty, one string is one item."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


# --------------------------------------------------------------------------- models


@attrs.frozen
class OsInfo:
    """The VM's operating system, as far as it can be known, and where that came from.

    ``family`` is ``"windows"``, ``"linux"`` or ``None`` (unknown); ``kind``
    ``"server"``, ``"client"`` or ``None``; ``release`` a short name such as
    ``"2016"``, ``"2019"``, ``"2022"``, ``"2025"``, ``"2012-R2"``, ``"10"``,
    ``"11"`` (``None`` when not known). ``source`` names the field that
    decided (``"instanceView"``, ``"imageReference"``, ``"osDisk"`` or
    ``"unknown"``); ``evidence`` lists everything that was seen.
    """

    family: str | None = None
    kind: str | None = None
    name: str | None = None
    version: str | None = None
    build: int | None = None
    release: str | None = None
    source: str = "unknown"
    evidence: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    def describe(self) -> str:
        """A short human description ("Windows Server 2019", "Linux", "unknown OS")."""
        if self.name:
            return self.name
        if self.family == "windows":
            if self.kind == "server":
                return f"Windows Server {self.release}" if self.release else "Windows Server"
            if self.kind == "client":
                return f"Windows {self.release}" if self.release else "Windows (client)"
            return "Windows"
        if self.family == "linux":
            return "Linux"
        return "unknown OS"


@attrs.frozen
class StatusFacts:
    """One instance-view status: ``code``, ``level``, ``display_status``, ``message``."""

    code: str | None = None
    level: str | None = None
    display_status: str | None = None
    message: str | None = None


@attrs.frozen
class PublicIpFacts:
    """A public IP address attached to a NIC.

    ``address`` is ``None`` while a dynamic address is unassigned; ``sku`` is
    ``"Standard"`` or ``"Basic"`` (``None`` if unknown); ``version``
    ``"IPv4"``/``"IPv6"``.
    """

    id: str
    name: str
    address: str | None = None
    sku: str | None = None
    version: str | None = None


@attrs.frozen
class NicFacts:
    """A network interface of the VM, with the NSG ids on its path.

    ``nsg_id`` is the NSG attached to the NIC, ``subnet_nsg_id`` the one
    attached to its (primary IP configuration's) subnet; either may be
    ``None``. ``private_ips`` lists the primary IP configuration's address
    first.
    """

    id: str
    name: str
    primary: bool = False
    private_ips: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    public_ips: tuple[PublicIpFacts, ...] = ()
    asg_ids: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    load_balancer_pool_ids: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    subnet_id: str | None = None
    nsg_id: str | None = None
    subnet_nsg_id: str | None = None
    #: The addresses wac_azure's rules last named for this NIC (its tag
    #: :data:`ADDRESS_TAG`): one that is no longer the NIC's is stale, and
    #: ``enable`` / ``disable`` take it out of wac_azure's rules.
    recorded_addresses: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    #: Recorded addresses no longer this NIC's that Network reports in use by another
    #: NIC of the virtual network (``CheckIPAddressAvailability``: not available): not
    #: stale, left in the rules (read only when the NIC has an address no longer its own).
    held_elsewhere: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    #: Recorded addresses no longer this NIC's whose availability could not be read:
    #: left in the rules (the safe side), like :attr:`held_elsewhere`.
    unchecked_addresses: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    @property
    def private_ip(self) -> str | None:
        """The primary private IP address (``None`` if none is known)."""
        return self.private_ips[0] if self.private_ips else None


def _settings_repr(settings: Mapping[str, Any]) -> str:
    return redact_repr(dict(settings))


@attrs.frozen
class ExtensionFacts:
    """A VM extension as the VM GET (with its instance view) shows it.

    ``settings`` are the *public* settings only (ARM never returns
    protectedSettings); their ``repr`` (and so that of :class:`VmFacts`) hides
    what looks secret anyway (a proxy URL's ``user:password@``, keys named like
    a password or token), since anyone may have put it there.
    ``handler_version`` is the version the instance view reports running
    (e.g. ``"0.31.0.0"``) when known, else the configured ``typeHandlerVersion``
    (e.g. ``"0.0"``). ``port`` is the ``port`` setting as an int (the docs write
    a string, the quickstart an int).
    """

    name: str
    publisher: str | None = None
    type: str | None = None
    provisioning_state: str | None = None
    handler_version: str | None = None
    auto_upgrade: bool | None = None
    port: int | None = None
    salt: str | None = None
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, eq=False, hash=False, repr=_settings_repr
    )
    statuses: tuple[StatusFacts, ...] = ()
    substatuses: tuple[StatusFacts, ...] = ()

    @property
    def is_admin_center(self) -> bool:
        """True when publisher and type are those of the Windows Admin Center extension."""
        return (self.publisher or "").lower() == EXTENSION_PUBLISHER.lower() and (
            self.type or ""
        ).lower() == EXTENSION_TYPE.lower()


@attrs.frozen
class VmFacts:
    """An immutable snapshot of one VM and what surrounds it.

    Read by :func:`read_vm_facts`; built by hand in tests. ``nsgs`` maps each
    distinct NIC/subnet NSG id (lower-cased) to its parsed
    :class:`wac_azure.nsg.NetworkSecurityGroup`. ``vnet_prefixes`` is the
    address space of the primary NIC's virtual network (plus the remote space
    of its peerings), what the ``VirtualNetwork`` service tag stands for.
    ``notes`` records what could not be read (a referenced NIC or NSG that
    does not exist...) and ``unreadable`` the ids of those resources
    (compare them case-insensitively, or use :meth:`is_unreadable`);
    ``bastion_subnets`` lists the ``AzureBastionSubnet`` ids seen in the
    VM's virtual networks (a sign that an Azure Bastion is there).
    ``notes``, ``unreadable`` and ``bastion_subnets`` go beyond contract C4.
    """

    target: VmTarget
    vm_resource_id: str
    location: str
    cloud: str = "Unknown"
    size: str = ""
    memory_mib: int | None = None
    cores: int | None = None
    os: OsInfo = attrs.field(factory=OsInfo)
    power_state: str | None = None
    started_at: _dt.datetime | None = None
    agent_status: str | None = None
    agent_version: str | None = None
    nics: tuple[NicFacts, ...] = ()
    nsgs: Mapping[str, NetworkSecurityGroup] = attrs.field(
        factory=dict, converter=_lower_keys, eq=False, hash=False
    )
    vnet_prefixes: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    extension: ExtensionFacts | None = None
    other_extensions: tuple[ExtensionFacts, ...] = ()
    read_at: _dt.datetime = attrs.field(factory=lambda: _dt.datetime.now(_dt.UTC))
    notes: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    bastion_subnets: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    unreadable: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    @property
    def primary_nic(self) -> NicFacts | None:
        """The primary NIC (the first NIC when none is marked primary)."""
        for nic in self.nics:
            if nic.primary:
                return nic
        return self.nics[0] if self.nics else None

    def is_unreadable(self, resource_id: str | None) -> bool:
        """True when ``resource_id`` was referenced but could not be read."""
        if not resource_id:
            return False
        wanted = str(resource_id).lower()
        return any(u.lower() == wanted for u in self.unreadable)

    def nsg(self, nsg_id: str | None) -> NetworkSecurityGroup | None:
        """The parsed NSG with this id (case-insensitive), or ``None``."""
        if not nsg_id:
            return None
        return self.nsgs.get(nsg_id.lower())


# --------------------------------------------------------------------------- safe JSON access


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...`` or ``None``; keys match case-insensitively as a fallback."""
    cur = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        if key in cur:
            cur = cur[key]
            continue
        low = key.lower()
        for k, v in cur.items():
            if isinstance(k, str) and k.lower() == low:
                cur = v
                break
        else:
            return None
    return cur


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else ``[]`` (never a string's characters)."""
    return list(value) if isinstance(value, (list, tuple)) else []


def mappings(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def id_of(value: Any) -> str | None:
    """The ``id`` of a sub-resource reference (``{"id": ...}``)."""
    return _text(dig(value, "id"))


def _datetime(value: Any) -> _dt.datetime | None:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    text = _text(value)
    if text is None:
        return None
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    # Python < 3.11 accepts at most 6 fractional digits; ARM sends 7.
    match = re.match(r"^(.*?\.\d{6})\d*(.*)$", text)
    if match:
        text = match.group(1) + match.group(2)
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)


def normalize_location(value: Any) -> str:
    """ARM's location name: ``"West US"`` → ``"westus"`` (``""`` when unknown)."""
    text = _text(value) or ""
    return re.sub(r"[\s_-]+", "", text).lower()


def as_json(model: Any) -> Any:
    """Wire JSON of an SDK model (TypeSpec models are MutableMappings with ``as_dict``)."""
    as_dict = getattr(model, "as_dict", None)
    if callable(as_dict):
        try:
            return as_dict()
        except TypeError:  # pragma: no cover - older msrest models
            return as_dict(keep_readonly=True)
    return model


def split_resource_id(resource_id: str | None) -> tuple[str, str, list[tuple[str, str]]] | None:
    """``(subscription, resource group, [(type, name), ...])`` of an ARM id, or ``None``."""
    if not resource_id:
        return None
    segs = [s for s in resource_id.strip().split("/") if s]
    if len(segs) < 8 or segs[0].lower() != "subscriptions":
        return None
    if segs[2].lower() != "resourcegroups" or segs[4].lower() != "providers":
        return None
    rest = segs[6:]
    if len(rest) % 2:
        return None
    pairs = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
    return segs[1], segs[3], pairs


# --------------------------------------------------------------------------- OS detection

#: Windows build numbers and the Windows Server release they belong to (AZURE_FACTS §2).
SERVER_BUILDS = {
    6003: "2008",
    7601: "2008-R2",
    9200: "2012",
    9600: "2012-R2",
    14393: "2016",
    17763: "2019",
    20348: "2022",
    26100: "2025",
}
_YEAR = re.compile(r"(?<![0-9])(20[0-9]{2})(?:[\s._-]*(r2))?(?![0-9])", re.IGNORECASE)
_WS_YEAR = re.compile(r"ws(20[0-9]{2})(r2)?", re.IGNORECASE)
_CLIENT = re.compile(r"win(?:dows)?[\s_-]*(11|10|8\.1|8|7)(?![0-9])", re.IGNORECASE)
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")
_LINUX_WORDS = (
    "linux",
    "ubuntu",
    "debian",
    "centos",
    "rhel",
    "red hat",
    "redhat",
    "suse",
    "sles",
    "oracle linux",
    "almalinux",
    "rocky",
    "mariner",
    "azurelinux",
    "flatcar",
    "fedora",
    "alpine",
    "coreos",
)
_LINUX_PUBLISHERS = {
    "canonical",
    "redhat",
    "openlogic",
    "suse",
    "debian",
    "almalinux",
    "resf",
    "kinvolk",
    "microsoftcblmariner",
    "credativ",
}


@attrs.frozen
class _OsGuess:
    family: str | None = None
    kind: str | None = None
    release: str | None = None
    build: int | None = None
    name: str | None = None
    version: str | None = None


def _server_release(text: str) -> str | None:
    match = _WS_YEAR.search(text) or _YEAR.search(text)
    if match is None:
        return None
    year = match.group(1)
    return f"{year}-R2" if match.group(2) else year


def _is_linux_text(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in _LINUX_WORDS)


def _guess_from_instance_view(os_name: str | None, os_version: str | None) -> _OsGuess:
    name_low = (os_name or "").lower()
    version_low = (os_version or "").lower()
    nt_build = None
    match = _VERSION.search(os_version or "")
    if match and int(match.group(1)) in (6, 10) and int(match.group(2)) in (0, 1, 2, 3):
        nt_build = int(match.group(3))
    if "windows" in name_low or "windows" in version_low:
        family = "windows"
    elif os_name and _is_linux_text(os_name):
        family = "linux"
    elif os_name is None and match is not None and nt_build is not None and match.group(1) == "10":
        family = "windows"  # "10.0.17763.1234" alone is a Windows NT version
    else:
        family = None
    build = nt_build if family == "windows" else None
    kind = release = None
    if family == "windows":
        if "server" in name_low:
            kind = "server"
            release = _server_release(os_name or "")
            if release is None and build is not None:
                release = SERVER_BUILDS.get(build)
        elif os_name and _CLIENT.search(os_name):
            kind = "client"
            found = _CLIENT.search(os_name)
            release = found.group(1) if found else None
            # Windows 11 still reports "Windows 10" as its product name: the build tells.
            if release == "10" and build is not None and build >= 22000:
                release = "11"
    return _OsGuess(family, kind, release, build, os_name, os_version)


def _guess_from_image(image: Any) -> tuple[_OsGuess, str | None]:
    """A guess from ``imageReference`` and the evidence text (``None`` when absent)."""
    if not isinstance(image, Mapping):
        return _OsGuess(), None
    publisher = _text(dig(image, "publisher")) or ""
    offer = _text(dig(image, "offer")) or ""
    sku = _text(dig(image, "sku")) or ""
    version = _text(dig(image, "version"))
    if not (publisher or offer or sku):
        image_id = (
            _text(dig(image, "id"))
            or _text(dig(image, "sharedGalleryImageId"))
            or _text(dig(image, "communityGalleryImageId"))
        )
        if image_id:
            return _OsGuess(), f"imageReference is a custom image ({image_id})"
        return _OsGuess(), None
    evidence = f"imageReference {publisher}:{offer}:{sku}"
    pub = publisher.lower()
    both = f"{offer} {sku}"
    if pub == "microsoftwindowsserver":
        return _OsGuess("windows", "server", _server_release(both), None, None, version), evidence
    if pub == "microsoftwindowsdesktop":
        found = _CLIENT.search(both)
        return _OsGuess("windows", "client", found.group(1) if found else None), evidence
    if pub in _LINUX_PUBLISHERS or _is_linux_text(both):
        return _OsGuess("linux", None, None, None, None, version), evidence
    ws = _WS_YEAR.search(both)
    if ws is not None:  # e.g. MicrosoftSQLServer:sql2019-ws2022
        release = f"{ws.group(1)}-R2" if ws.group(2) else ws.group(1)
        return _OsGuess("windows", "server", release), evidence
    if "windows" in both.lower():
        found = _CLIENT.search(both)
        if found:
            return _OsGuess("windows", "client", found.group(1)), evidence
        return _OsGuess("windows"), evidence
    return _OsGuess(), evidence


def _display_name(guess: _OsGuess) -> str | None:
    if guess.name:
        return guess.name
    if guess.family == "windows" and guess.kind == "server" and guess.release:
        return "Windows Server " + guess.release.replace("-R2", " R2")
    if guess.family == "windows" and guess.kind == "client" and guess.release:
        return f"Windows {guess.release}"
    return None


def parse_os(vm_json: Any) -> OsInfo:
    """Work out the VM's OS from its GET (with ``$expand=instanceView``).

    The instance view (what the VM agent reports) decides when it says
    anything: it follows in-place upgrades that the image reference does not.
    Then the marketplace ``imageReference``, then ``osDisk.osType`` (family
    only). Never raises on odd JSON; nothing known → ``source="unknown"``.
    """
    props = dig(vm_json, "properties")
    iv = dig(props, "instanceView")
    os_name = _text(dig(iv, "osName"))
    os_version = _text(dig(iv, "osVersion"))
    image = dig(props, "storageProfile", "imageReference")
    os_type = _text(dig(props, "storageProfile", "osDisk", "osType"))

    evidence: list[str] = []
    if os_name:
        evidence.append(f"instanceView.osName {os_name!r}")
    if os_version:
        evidence.append(f"instanceView.osVersion {os_version!r}")
    img_guess, img_evidence = _guess_from_image(image)
    if img_evidence:
        evidence.append(img_evidence)
    if os_type:
        evidence.append(f"osDisk.osType {os_type}")
    disk_family = {"windows": "windows", "linux": "linux"}.get((os_type or "").lower())

    iv_guess = _guess_from_instance_view(os_name, os_version)
    if iv_guess.family is not None:
        guess, source = iv_guess, "instanceView"
        if img_guess.family == iv_guess.family:
            kind = guess.kind or img_guess.kind
            release = guess.release
            if release is None and img_guess.kind == kind:
                release = img_guess.release
            if release is None and kind == "server" and guess.build is not None:
                release = SERVER_BUILDS.get(guess.build)
            guess = attrs.evolve(guess, kind=kind, release=release)
    elif img_guess.family is not None:
        guess, source = img_guess, "imageReference"
    elif disk_family is not None:
        guess, source = _OsGuess(disk_family), "osDisk"
    else:
        return OsInfo(name=os_name, version=os_version, source="unknown", evidence=tuple(evidence))
    return OsInfo(
        family=guess.family,
        kind=guess.kind,
        name=_display_name(guess),
        version=guess.version,
        build=guess.build,
        release=guess.release,
        source=source,
        evidence=tuple(evidence),
    )


# --------------------------------------------------------------------------- other parsers


def parse_vm_sizes(items: Any) -> Mapping[str, tuple[int | None, int | None]]:
    """``{size name lower-cased: (memory MiB, cores)}`` from a VM sizes list (``value[]``)."""
    if isinstance(items, Mapping):
        items = dig(items, "value")
    sizes: dict[str, tuple[int | None, int | None]] = {}
    for item in mappings(items):
        name = _text(dig(item, "name"))
        if name:
            sizes[name.lower()] = (
                _int(dig(item, "memoryInMB")),
                _int(dig(item, "numberOfCores")),
            )
    return types.MappingProxyType(sizes)


def _capability_number(value: Any) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not 0 <= number <= 1e12:  # NaN, infinities, negatives and absurd sizes
        return None
    return number


def parse_resource_skus(
    items: Any, location: str | None = None
) -> Mapping[str, tuple[int | None, int | None]]:
    """``{size name lower-cased: (memory MiB, cores)}`` from Compute's resource SKUs
    (``GET .../providers/Microsoft.Compute/skus?$filter=location eq '{loc}'``, ``value[]``).

    Only ``resourceType`` ``virtualMachines``; memory from the ``MemoryGB``
    capability (a string such as ``"0.75"``, GiB), cores from ``vCPUs`` (a string).
    ``location`` keeps only SKUs offered there (when the SKU lists its locations).
    The supported replacement of the deprecated VM sizes list; never raises on junk.
    """
    if isinstance(items, Mapping):
        items = dig(items, "value")
    wanted = normalize_location(location) if location else ""
    sizes: dict[str, tuple[int | None, int | None]] = {}
    for item in mappings(items):
        if (_text(dig(item, "resourceType")) or "").lower() != "virtualmachines":
            continue
        name = _text(dig(item, "name"))
        if not name:
            continue
        places = [normalize_location(p) for p in _list(dig(item, "locations")) if _text(p)]
        if wanted and places and wanted not in places:
            continue
        caps = {
            (_text(dig(c, "name")) or "").lower(): dig(c, "value")
            for c in mappings(dig(item, "capabilities"))
        }
        memory_gb = _capability_number(caps.get("memorygb"))
        cores = _capability_number(caps.get("vcpus"))
        memory = round(memory_gb * 1024) if memory_gb is not None else None
        sizes.setdefault(
            name.lower(),
            (memory, int(cores) if cores is not None and cores == int(cores) else None),
        )
    return types.MappingProxyType(sizes)


def _status(value: Mapping[str, Any]) -> StatusFacts:
    return StatusFacts(
        code=_text(dig(value, "code")),
        level=_text(dig(value, "level")),
        display_status=_text(dig(value, "displayStatus")),
        message=_text(dig(value, "message")),
    )


def parse_power_state(vm_json: Any) -> tuple[str | None, _dt.datetime | None]:
    """``(power state, last start time)`` from the VM's instance view statuses.

    The start time is the ``PowerState`` status's ``time`` when Azure gives
    one, else the time of the last succeeded provisioning operation while
    the VM runs (that is when a start operation completed; other operations
    move it too, so it is an upper bound on the VM's uptime).
    """
    statuses = mappings(dig(vm_json, "properties", "instanceView", "statuses"))
    power = None
    started = None
    provisioned = None
    for status in statuses:
        code = _text(dig(status, "code")) or ""
        low = code.lower()
        if low.startswith("powerstate/"):
            power = low.split("/", 1)[1] or None
            started = _datetime(dig(status, "time")) or started
        elif low.startswith("provisioningstate/"):
            provisioned = _datetime(dig(status, "time")) or provisioned
    if started is None and power == "running":
        started = provisioned
    return power, started


def parse_agent(vm_json: Any) -> tuple[str | None, str | None]:
    """``(agent status, agent version)``: ``"Ready"``/``"Not Ready"``, ``"2.7.41491.949"``."""
    agent = dig(vm_json, "properties", "instanceView", "vmAgent")
    version = _text(dig(agent, "vmAgentVersion"))
    if version and version.lower() == "unknown":
        version = None
    status = None
    for item in mappings(dig(agent, "statuses")):
        status = _text(dig(item, "displayStatus"))
        if status:
            break
    return status, version


def _settings_port(settings: Mapping[str, Any]) -> int | None:
    port = _int(dig(settings, "port"))
    if port is not None and 1 <= port <= 65535:
        return port
    return None


def _short_name(value: str | None) -> str | None:
    if value is None:
        return None
    return value.rsplit("/", 1)[-1] or None


def parse_extensions(vm_json: Any) -> list[ExtensionFacts]:
    """Every extension in a VM GET: ``resources[]`` joined with ``instanceView.extensions[]``."""
    iv_by_name: dict[str, Mapping[str, Any]] = {}
    for item in mappings(dig(vm_json, "properties", "instanceView", "extensions")):
        name = _short_name(_text(dig(item, "name")))
        if name:
            iv_by_name.setdefault(name.lower(), item)
    result: list[ExtensionFacts] = []
    seen: set[str] = set()
    for res in mappings(dig(vm_json, "resources")):
        rtype = (_text(dig(res, "type")) or "").lower()
        if rtype and not rtype.endswith("extensions"):
            continue
        name = _short_name(_text(dig(res, "name"))) or _short_name(_text(dig(res, "id")))
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        result.append(_extension(name, dig(res, "properties"), iv_by_name.get(name.lower())))
    for key, item in iv_by_name.items():
        if key not in seen:
            result.append(_extension(_short_name(_text(dig(item, "name"))) or key, None, item))
    return result


def _extension(name: str, props: Any, iv: Any) -> ExtensionFacts:
    settings = dig(props, "settings")
    settings = settings if isinstance(settings, Mapping) else {}
    publisher = _text(dig(props, "publisher"))
    ext_type = _text(dig(props, "type"))
    iv_type = _text(dig(iv, "type"))
    if iv_type and (publisher is None or ext_type is None) and "." in iv_type:
        # The instance view names the handler "<publisher>.<type>".
        iv_pub, _, iv_ty = iv_type.rpartition(".")
        publisher = publisher or iv_pub
        ext_type = ext_type or iv_ty
    salt = dig(settings, "salt")
    return ExtensionFacts(
        name=name,
        publisher=publisher,
        type=ext_type,
        provisioning_state=_text(dig(props, "provisioningState")),
        handler_version=_text(dig(iv, "typeHandlerVersion"))
        or _text(dig(props, "typeHandlerVersion")),
        auto_upgrade=_bool(dig(props, "autoUpgradeMinorVersion")),
        port=_settings_port(settings),
        salt=salt if isinstance(salt, str) and salt else None,
        settings=settings,
        statuses=tuple(_status(s) for s in mappings(dig(iv, "statuses"))),
        substatuses=tuple(_status(s) for s in mappings(dig(iv, "substatuses"))),
    )


def parse_extension_resource(ext_json: Any) -> ExtensionFacts:
    """An extension from its own GET (``$expand=instanceView`` nests the view in ``properties``)."""
    props = dig(ext_json, "properties")
    name = _short_name(_text(dig(ext_json, "name"))) or EXTENSION_NAME
    return _extension(name, props, dig(props, "instanceView"))


def parse_public_ip(pip_json: Any, fallback_id: str) -> PublicIpFacts:
    """A public IP from its GET."""
    pid = _text(dig(pip_json, "id")) or fallback_id
    return PublicIpFacts(
        id=pid,
        name=_text(dig(pip_json, "name")) or _short_name(pid) or pid,
        address=_text(dig(pip_json, "properties", "ipAddress")),
        sku=_text(dig(pip_json, "sku", "name")),
        version=_text(dig(pip_json, "properties", "publicIPAddressVersion")),
    )


def _private_ip(value: Any) -> str | None:
    text = _text(value)
    return text.split("/", 1)[0] if text else None


@attrs.frozen
class _NicJson:
    """What the reader takes from a NIC GET before the dependent reads."""

    id: str
    name: str
    primary: bool | None
    private_ips: tuple[str, ...]
    public_ip_ids: tuple[str, ...]
    asg_ids: tuple[str, ...]
    pool_ids: tuple[str, ...]
    subnet_id: str | None
    nsg_id: str | None
    recorded_addresses: tuple[str, ...] = ()


#: The NIC tag in which wac_azure records the addresses its rules name for the NIC.
ADDRESS_TAG = "wac_azure-rule-addresses"


def recorded_addresses(nic_json: Any) -> tuple[str, ...]:
    """The addresses in a NIC document's :data:`ADDRESS_TAG` (comma-separated)."""
    tags = dig(nic_json, "tags")
    value = tags.get(ADDRESS_TAG) if isinstance(tags, Mapping) else None
    if not isinstance(value, str):
        return ()
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def parse_nic(nic_json: Any, fallback_id: str) -> _NicJson:
    nid = _text(dig(nic_json, "id")) or fallback_id
    configs = mappings(dig(nic_json, "properties", "ipConfigurations"))
    configs.sort(key=lambda c: _bool(dig(c, "properties", "primary")) is not True)
    private: list[str] = []
    pips: list[str] = []
    asgs: list[str] = []
    pools: list[str] = []
    subnet_id = None
    for cfg in configs:
        props = dig(cfg, "properties")
        ip = _private_ip(dig(props, "privateIPAddress"))
        if ip and ip not in private:
            private.append(ip)
        pip = id_of(dig(props, "publicIPAddress"))
        if pip and pip.lower() not in {p.lower() for p in pips}:
            pips.append(pip)
        subnet_id = subnet_id or id_of(dig(props, "subnet"))
        for ref in mappings(dig(props, "applicationSecurityGroups")):
            asg = id_of(ref)
            if asg and asg not in asgs:
                asgs.append(asg)
        for ref in mappings(dig(props, "loadBalancerBackendAddressPools")):
            pool = id_of(ref)
            if pool and pool not in pools:
                pools.append(pool)
    return _NicJson(
        id=nid,
        name=_text(dig(nic_json, "name")) or _short_name(nid) or nid,
        primary=_bool(dig(nic_json, "properties", "primary")),
        private_ips=tuple(private),
        public_ip_ids=tuple(pips),
        asg_ids=tuple(asgs),
        pool_ids=tuple(pools),
        subnet_id=subnet_id,
        nsg_id=id_of(dig(nic_json, "properties", "networkSecurityGroup")),
        recorded_addresses=recorded_addresses(nic_json),
    )


def vnet_id_of_subnet(subnet_id: str) -> str | None:
    parts = split_resource_id(subnet_id)
    if parts is None or len(parts[2]) != 2:
        return None
    head = subnet_id.rstrip("/").rsplit("/", 2)[0]
    return head if parts[2][0][0].lower() == "virtualnetworks" else None


def subnet_id_of(subnet_json: Any, vnet_id: str) -> str | None:
    """A subnet's id as listed in its VNet (built from its name when the id is absent)."""
    sid = _text(dig(subnet_json, "id"))
    name = _text(dig(subnet_json, "name"))
    if sid is None and name:
        sid = f"{vnet_id}/subnets/{name}"
    return sid


def _vnet_prefixes(vnet_json: Any) -> list[str]:
    props = dig(vnet_json, "properties")
    prefixes = [
        p for p in _list(dig(props, "addressSpace", "addressPrefixes")) if isinstance(p, str)
    ]
    for peering in mappings(dig(props, "virtualNetworkPeerings")):
        pprops = dig(peering, "properties")
        state = (_text(dig(pprops, "peeringState")) or "Connected").lower()
        if state != "connected":
            continue
        for key in ("remoteAddressSpace", "remoteVirtualNetworkAddressSpace"):
            for prefix in _list(dig(pprops, key, "addressPrefixes")):
                if isinstance(prefix, str) and prefix not in prefixes:
                    prefixes.append(prefix)
    return prefixes


_CLOUD_NAMES = {
    "AZURE_PUBLIC_CLOUD": "AzurePublicCloud",
    "AZURE_CHINA_CLOUD": "AzureChinaCloud",
    "AZURE_US_GOVERNMENT": "AzureUSGovernment",
}


def cloud_for(location: str, session_cloud: Any = None) -> str:
    """The Azure cloud of a region: ``"AzurePublicCloud"``, ``"AzureChinaCloud"``, ...

    The region decides when it is a sovereign one (``china*``; ``usgov*``,
    ``usdod*``, and the secret ``usnat*``/``ussec*`` regions); otherwise the
    session's cloud does.
    """
    loc = normalize_location(location)
    if loc.startswith("china"):
        return "AzureChinaCloud"
    if loc.startswith(("usgov", "usdod", "usnat", "ussec")):
        return "AzureUSGovernment"
    name = getattr(session_cloud, "name", None) or (
        session_cloud if isinstance(session_cloud, str) else None
    )
    cloud = _CLOUD_NAMES.get(str(name).upper()) if name else None
    if cloud is None and isinstance(session_cloud, str) and session_cloud in _CLOUD_NAMES.values():
        cloud = session_cloud
    return cloud or "Unknown"


# --------------------------------------------------------------------------- from lists
# Added for fleets (src/wac_azure/_fleet.py): the same assembly as read_vm_facts,
# from JSON that was already read (resource-group lists), without I/O.


def facts_from_arm(
    target: VmTarget,
    vm_json: Any,
    *,
    resources: Mapping[str, Any],
    sizes: Mapping[str, tuple[int | None, int | None]] | None = None,
    session_cloud: Any = None,
    parsed_nsgs: dict[str, Any] | None = None,
) -> VmFacts:
    """Build a :class:`VmFacts` from ARM JSON already read (pure: no I/O).

    ``vm_json`` is the VM as a GET or list with ``$expand=instanceView``
    returns it; ``resources`` maps lower-cased resource ids to the wire JSON
    of the VM's NICs, their public IPs, the virtual networks of their subnets
    (subnets inline) and the NIC and subnet NSGs. An id the VM references
    that ``resources`` lacks is treated as :func:`read_vm_facts` treats a 404
    (``notes`` and ``unreadable``). ``sizes`` is :func:`parse_vm_sizes` of the
    location's size list (``None``: memory unknown). ``parsed_nsgs`` (lower id
    → :class:`~wac_azure.nsg.NetworkSecurityGroup`) lets many VMs share one
    parse of a shared NSG.
    """

    notes: list[str] = []
    unreadable: list[str] = []

    def find(kind: str, rid: str) -> Any:
        doc = resources.get(rid.lower())
        if doc is None:
            unreadable.append(rid)
            notes.append(f"{kind} {rid} was not found (404)")
        return doc

    location = normalize_location(dig(vm_json, "location"))
    size = _text(dig(vm_json, "properties", "hardwareProfile", "vmSize")) or ""
    nic_refs = mappings(dig(vm_json, "properties", "networkProfile", "networkInterfaces"))
    nic_ids = [i for i in (id_of(r) for r in nic_refs) if i]
    vm_primary = {
        (id_of(r) or "").lower(): _bool(dig(r, "properties", "primary")) for r in nic_refs
    }
    nics_raw: list[_NicJson] = []
    for nid in nic_ids:
        nj = find("network interface", nid)
        if nj is not None:
            nics_raw.append(parse_nic(nj, nid))

    pips: dict[str, PublicIpFacts] = {}
    for n in nics_raw:
        for pid in n.public_ip_ids:
            if pid.lower() in pips:
                continue
            pj = find("public IP address", pid)
            if pj is not None:
                pips[pid.lower()] = parse_public_ip(pj, pid)

    subnet_ids = list({n.subnet_id.lower(): n.subnet_id for n in nics_raw if n.subnet_id}.values())
    vnet_ids = list(
        {v.lower(): v for v in (vnet_id_of_subnet(s) for s in subnet_ids) if v}.values()
    )
    subnet_nsg: dict[str, str | None] = {}
    subnet_known: set[str] = set()
    vnet_prefixes: dict[str, list[str]] = {}
    bastions: list[str] = []
    for vid in vnet_ids:
        vj = find("virtual network", vid)
        if vj is None:
            continue
        vnet_prefixes[vid.lower()] = _vnet_prefixes(vj)
        for sub in mappings(dig(vj, "properties", "subnets")):
            sid = _text(dig(sub, "id"))
            sname = _text(dig(sub, "name"))
            if sid is None and sname:
                sid = f"{vid}/subnets/{sname}"
            if sid is None:
                continue
            subnet_known.add(sid.lower())
            subnet_nsg[sid.lower()] = id_of(dig(sub, "properties", "networkSecurityGroup"))
            if (sname or _short_name(sid) or "").lower() == "azurebastionsubnet":
                bastions.append(sid)
    for sid in subnet_ids:
        vid = (vnet_id_of_subnet(sid) or "").lower()
        if sid.lower() not in subnet_known and vid not in {u.lower() for u in unreadable}:
            unreadable.append(sid)

    nsg_ids = {n.nsg_id.lower(): n.nsg_id for n in nics_raw if n.nsg_id}
    for sid in subnet_ids:
        sn_nsg = subnet_nsg.get(sid.lower())
        if sn_nsg:
            nsg_ids.setdefault(sn_nsg.lower(), sn_nsg)
    nsgs: dict[str, NetworkSecurityGroup] = {}
    for key, nsg_id in nsg_ids.items():
        if parsed_nsgs is not None and key in parsed_nsgs:
            nsgs[key] = parsed_nsgs[key]
            continue
        nj = find("network security group", nsg_id)
        if nj is None:
            continue
        try:
            nsgs[key] = NetworkSecurityGroup.from_arm(nj)
        except WacAzureError as exc:
            unreadable.append(nsg_id)
            notes.append(f"network security group {nsg_id} could not be parsed: {exc}")
            continue
        if parsed_nsgs is not None:
            parsed_nsgs[key] = nsgs[key]

    nics: list[NicFacts] = []
    any_primary = any(vm_primary.get(n.id.lower()) or n.primary for n in nics_raw)
    for index, raw in enumerate(nics_raw):
        primary = vm_primary.get(raw.id.lower())
        if primary is None:
            primary = raw.primary
        if not any_primary:
            primary = index == 0
        nics.append(
            NicFacts(
                id=raw.id,
                name=raw.name,
                primary=bool(primary),
                private_ips=raw.private_ips,
                public_ips=tuple(pips[p.lower()] for p in raw.public_ip_ids if p.lower() in pips),
                asg_ids=raw.asg_ids,
                load_balancer_pool_ids=raw.pool_ids,
                subnet_id=raw.subnet_id,
                nsg_id=raw.nsg_id,
                subnet_nsg_id=subnet_nsg.get(raw.subnet_id.lower()) if raw.subnet_id else None,
                recorded_addresses=raw.recorded_addresses,
            )
        )
    primary_nic = next((n for n in nics if n.primary), nics[0] if nics else None)
    prefixes: list[str] = []
    if primary_nic is not None and primary_nic.subnet_id:
        prefixes = vnet_prefixes.get((vnet_id_of_subnet(primary_nic.subnet_id) or "").lower(), [])

    memory = cores = None
    if sizes is not None:
        memory, cores = sizes.get(size.lower(), (None, None))
        if size and size.lower() not in sizes:
            notes.append(f"VM size {size} is not in the size list of {location}")
    else:
        notes.append(f"the VM size list of {location} could not be read; memory is unknown")

    extensions = parse_extensions(vm_json)
    admin = next((e for e in extensions if e.name.lower() == EXTENSION_NAME.lower()), None)
    others = tuple(
        e
        for e in extensions
        if e is not admin and (e.publisher or "").lower() == EXTENSION_PUBLISHER.lower()
    )
    power, started = parse_power_state(vm_json)
    agent_status, agent_version = parse_agent(vm_json)
    return VmFacts(
        target=target,
        vm_resource_id=_text(dig(vm_json, "id")) or target.resource_id,
        location=location,
        cloud=cloud_for(location, session_cloud),
        size=size,
        memory_mib=memory,
        cores=cores,
        os=parse_os(vm_json),
        power_state=power,
        started_at=started,
        agent_status=agent_status,
        agent_version=agent_version,
        nics=tuple(nics),
        nsgs=nsgs,
        vnet_prefixes=tuple(prefixes),
        extension=admin,
        other_extensions=others,
        read_at=_dt.datetime.now(_dt.UTC),
        notes=tuple(notes),
        bastion_subnets=tuple(bastions),
        unreadable=tuple({u.lower(): u for u in unreadable}.values()),
    )
