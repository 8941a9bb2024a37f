"""Access modes: who may reach Windows Admin Center's port on the VM.

:class:`AccessMode` is the protocol the checks, the planner, the decision and
the workflows use; :class:`PrivateAccess` and :class:`PublicAccess` are its two
implementations. A new mode is one class that implements the protocol (and
its tests): nothing else needs to know its name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from wac_azure._core.errors import InvalidAccessError, InvalidInputError
from wac_azure._core.nsg import NON_INTERNET
from wac_azure._core.nsg.prefixes import IpNetwork, public_address_count

#: IPv4 prefixes shorter than this (and IPv6 shorter than /32) earn a plan warning.
WIDE_IPV4 = 8
WIDE_IPV6 = 32
#: The most public address space the sources of an access mode may cover together
#: without ``acknowledge_risk=True``: a /8's worth of IPv4 (2**24 addresses) and a
#: /32's worth of IPv6 (2**96). Why these: docs/security.md, "Exposure limits".
EXPOSURE_LIMIT = {4: 2**24, 6: 2**96}
_LIMIT_NAME = {4: "a /8's worth", 6: "a /32's worth"}
_FAMILY_SIZE = {4: 2**32, 6: 2**128}
_EVERYONE = {"*", "any", "internet", "0.0.0.0/0", "::/0"}
_HOW = (
    "give the public IP addresses or CIDR ranges of the machines that connect "
    "(e.g. '203.0.113.7' or '203.0.113.0/24')"
)


@runtime_checkable
class AccessMode(Protocol):
    """Who may reach the Windows Admin Center port, and over which address.

    ``sources`` are the inbound rule's source prefixes (CIDRs, addresses or
    service tags); ``via`` the address users connect to (``"private"``: the
    NIC's private IP, ``"public"``: its public IP); ``is_public`` whether the
    port is opened on a public IP; ``open_to_everyone`` whether the sources
    are the whole internet; ``warnings`` risks the plan reports.
    """

    @property
    def sources(self) -> tuple[str, ...]: ...

    @property
    def via(self) -> Literal["private", "public"]: ...

    @property
    def is_public(self) -> bool: ...

    @property
    def open_to_everyone(self) -> bool: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_access(
    access: object, *, error: type[InvalidInputError] = InvalidAccessError
) -> AccessMode:
    """``access`` as an :class:`AccessMode` (``None``: :class:`PrivateAccess` from the
    virtual network); ``error`` (:class:`~wac_azure.InvalidAccessError` unless the
    caller documents another) for anything else."""
    if access is None:
        return PrivateAccess()
    if not isinstance(access, AccessMode):
        raise error(
            f"access must be PrivateAccess(...) or PublicAccess(...), got {type(access).__name__}"
        )
    return access


def _as_tuple(value: object) -> tuple[object, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise InvalidAccessError(f"sources must be a list of strings, got {type(value).__name__}")


def _normalize_ip(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _canonical(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    if "/" not in text:
        return str(net.network_address)
    return str(net)


def _ack(value: object, mode: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidAccessError(
            f"{mode}(acknowledge_risk=...) must be True or False, got {value!r}"
        )
    return value


def _check_everyone(mode: str, shown: list[str], nets: list[IpNetwork], fix: str) -> None:
    """Refuse sources that together cover a whole address family (whatever the flag)."""
    for version, total in _FAMILY_SIZE.items():
        family = [n for n in nets if n.version == version]
        covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(family))  # type: ignore[type-var,misc]
        if family and covered >= total:
            raise InvalidAccessError(
                f"{mode} sources {', '.join(shown)} together cover every IPv{version} "
                f"address (the whole internet); {fix}"
            )


def exposure(nets: Iterable[IpNetwork]) -> dict[int, int]:
    """How many *public* addresses of each IP version (4, 6) the union of ``nets``
    covers (overlaps once; private, CGNAT, loopback, link-local... left out)."""
    return public_address_count(nets)


def _coverage_text(version: int, count: int) -> str:
    share = 100 * count / _FAMILY_SIZE[version]
    return f"{count:,} public addresses, {share:.1f} % of IPv{version}"


def _check_exposure(mode: str, shown: list[str], nets: list[IpNetwork], fix: str) -> None:
    """Refuse sources whose public union exceeds :data:`EXPOSURE_LIMIT` (without the flag)."""
    counts = exposure(nets)
    for version, limit in EXPOSURE_LIMIT.items():
        if counts[version] > limit:
            raise InvalidAccessError(
                f"{mode} sources {', '.join(shown)} together cover "
                f"{_coverage_text(version, counts[version])}: more than "
                f"{_LIMIT_NAME[version]} ({limit:,}) needs acknowledge_risk=True. "
                f"{fix}, or pass acknowledge_risk=True if exposing the port that widely is "
                "really what you want"
            )


def _wide_warnings(nets: list[IpNetwork]) -> list[str]:
    """The warning for sources accepted beyond :data:`EXPOSURE_LIMIT` (``acknowledge_risk``)."""
    counts = exposure(nets)
    return [
        f"the sources together cover {_coverage_text(version, counts[version])}, more than "
        f"{_LIMIT_NAME[version]} (accepted with acknowledge_risk=True); restrict them to "
        "your management machines"
        for version, limit in EXPOSURE_LIMIT.items()
        if counts[version] > limit
    ]


@attrs.frozen
class PrivateAccess:
    """Connect over the VM's private IP, from inside the virtual network (recommended).

    ``sources`` default to the ``VirtualNetwork`` service tag, which the NSG
    default rule ``AllowVnetInBound`` already allows: usually nothing to open.
    Private CIDRs (an on-premises range behind a VPN) may be given as well.

    Public addresses are refused unless ``acknowledge_risk=True``: Azure
    evaluates NSG rules after translating a public IP to the private one, so on
    a VM with a public IP a rule allowing them opens the port through the
    public IP too. Sources that together cover more than
    :data:`EXPOSURE_LIMIT` public addresses need ``acknowledge_risk=True`` as
    well, and sources that cover a whole address family are always refused
    (see docs/security.md, "Exposure limits").
    """

    sources: tuple[str, ...] = attrs.field(default=("VirtualNetwork",), converter=_as_tuple)
    acknowledge_risk: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        ack = _ack(self.acknowledge_risk, "PrivateAccess")
        if not self.sources:
            raise InvalidAccessError(
                "PrivateAccess needs at least one source; the default is ('VirtualNetwork',)"
            )
        out: list[str] = []
        nets: list[IpNetwork] = []
        for src in self.sources:
            if not isinstance(src, str) or not src.strip():
                raise InvalidAccessError(f"PrivateAccess source {src!r} is not a non-empty string")
            text = src.strip()
            if text.lower() == "virtualnetwork":
                out.append("VirtualNetwork")
                continue
            if text.lower() in _EVERYONE:
                raise InvalidAccessError(
                    f"PrivateAccess source {text!r} opens the port to everyone; use "
                    "'VirtualNetwork' or private CIDR ranges"
                )
            net = _normalize_ip(text)
            if net is None:
                raise InvalidAccessError(
                    f"PrivateAccess source {text!r} is neither 'VirtualNetwork' nor an IP "
                    "address or CIDR range"
                )
            if net.prefixlen == 0:
                raise InvalidAccessError(
                    f"PrivateAccess source {text!r} covers every address; use 'VirtualNetwork'"
                )
            nets.append(net)
            out.append(_canonical(text, net))
        fix = "use 'VirtualNetwork' or private CIDR ranges"
        _check_everyone("PrivateAccess", out, nets, fix)
        if not ack:
            # "Network security groups are processed after Azure translates a public IP
            # address to a private IP address for inbound traffic" (learn.microsoft.com/
            # azure/virtual-network/network-security-groups-overview#security-rules): the
            # rule written for the private IP also admits these sources via the public IP.
            _check_exposure(
                "PrivateAccess",
                out,
                nets,
                "On a VM with a public IP they reach the port through it, because Azure "
                "evaluates NSG rules after it translates the public IP to the private one; "
                f"{fix}",
            )
            for text, net in zip([o for o in out if o != "VirtualNetwork"], nets, strict=True):
                public = exposure([net])[net.version]
                if public:
                    raise InvalidAccessError(
                        f"PrivateAccess source {text!r} holds public addresses ({public:,}): "
                        "on a VM with a public IP, a rule allowing them opens the port through "
                        "that public IP too, because Azure evaluates NSG rules after it "
                        "translates the public IP to the private one. Use PublicAccess([...]) "
                        "for machines on the internet, private ranges (10.0.0.0/8, "
                        "172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7) for networks "
                        "reached over a VPN or ExpressRoute, or pass acknowledge_risk=True if "
                        "public addresses really reach the VM's private IP"
                    )
        object.__setattr__(self, "sources", tuple(dict.fromkeys(out)))

    @property
    def is_public(self) -> bool:
        """False: the port is opened on the private IP only."""
        return False

    @property
    def via(self) -> Literal["private", "public"]:
        """Users connect to the NIC's private IP."""
        return "private"

    @property
    def open_to_everyone(self) -> bool:
        """False: private access never covers the whole internet."""
        return False

    @property
    def warnings(self) -> tuple[str, ...]:
        """Risks accepted with ``acknowledge_risk=True``: public sources, wide coverage."""
        nets = [n for n in map(_normalize_ip, self.sources) if n is not None]
        out = [
            f"source {src} holds public addresses: on a VM with a public IP it reaches the "
            "port through that public IP too (PrivateAccess(acknowledge_risk=True))"
            for src, net in zip(
                [s for s in self.sources if s != "VirtualNetwork"], nets, strict=True
            )
            if exposure([net])[net.version]
        ]
        return (*out, *_wide_warnings(nets))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": "private", "sources": list(self.sources)}
        if self.acknowledge_risk:
            out["acknowledgeRisk"] = True
        return out

    def __str__(self) -> str:
        return f"private access from {', '.join(self.sources)}"


@attrs.frozen
class PublicAccess:
    """Connect over the VM's public IP, from the given management machines only.

    ``sources`` are IPv4/IPv6 addresses or CIDR ranges. Anything that opens
    the port to everyone (``*``, ``Any``, ``Internet``, ``0.0.0.0/0``, ``::/0``,
    any ``/0``, or ranges that together cover a whole address family) and any
    service tag are refused with :class:`~wac_azure.InvalidAccessError`; only
    :meth:`anywhere` (with ``acknowledge_risk=True``) opens the port to the
    whole internet. Sources that together cover more than
    :data:`EXPOSURE_LIMIT` public addresses (a /8's worth of IPv4, a /32's
    worth of IPv6) need ``acknowledge_risk=True`` (see docs/security.md,
    "Exposure limits").
    """

    sources: tuple[str, ...] = attrs.field(converter=_as_tuple)
    acknowledge_risk: bool = attrs.field(default=False, kw_only=True)
    open_to_everyone: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        ack = _ack(self.acknowledge_risk, "PublicAccess")
        if not self.sources:
            raise InvalidAccessError(f"PublicAccess needs at least one source: {_HOW}")
        out: list[str] = []
        nets: list[IpNetwork] = []
        for src in self.sources:
            if not isinstance(src, str) or not src.strip():
                raise InvalidAccessError(
                    f"PublicAccess source {src!r} is not a non-empty string: {_HOW}"
                )
            text = src.strip()
            if text.lower() in _EVERYONE:
                raise InvalidAccessError(
                    f"PublicAccess source {text!r} would open the port to the whole internet; "
                    f"{_HOW}, or call PublicAccess.anywhere(acknowledge_risk=True) if that "
                    "really is what you want"
                )
            net = _normalize_ip(text)
            if net is None:
                raise InvalidAccessError(
                    f"PublicAccess source {text!r} is not an IP address or CIDR range (service "
                    f"tags are not accepted): {_HOW}"
                )
            if net.prefixlen == 0:
                raise InvalidAccessError(
                    f"PublicAccess source {text!r} covers every address; {_HOW}, or call "
                    "PublicAccess.anywhere(acknowledge_risk=True)"
                )
            nets.append(net)
            out.append(_canonical(text, net))
        _check_everyone(
            "PublicAccess",
            out,
            nets,
            f"{_HOW}, or call PublicAccess.anywhere(acknowledge_risk=True)",
        )
        if not ack:
            _check_exposure("PublicAccess", out, nets, f"Restrict them: {_HOW}")
        object.__setattr__(self, "sources", tuple(dict.fromkeys(out)))

    @classmethod
    def anywhere(cls, *, acknowledge_risk: bool = False) -> PublicAccess:
        """Open the port to every address on the internet (needs ``acknowledge_risk=True``).

        The product's "Open this port for me" does this; it exposes the VM to
        attack from any host, and the plan carries a warning.
        """
        if acknowledge_risk is not True:
            raise InvalidAccessError(
                "PublicAccess.anywhere() exposes the VM's Windows Admin Center port to every "
                "host on the internet; pass acknowledge_risk=True if you mean it, or prefer "
                f"PublicAccess([...]): {_HOW}"
            )
        inst = cls.__new__(cls)
        object.__setattr__(inst, "sources", ("*",))
        object.__setattr__(inst, "acknowledge_risk", True)
        object.__setattr__(inst, "open_to_everyone", True)
        return inst

    @property
    def is_public(self) -> bool:
        """True: the port is opened on the public IP."""
        return True

    @property
    def via(self) -> Literal["private", "public"]:
        """Users connect to the NIC's public IP."""
        return "public"

    @property
    def warnings(self) -> tuple[str, ...]:
        """Risks worth telling the user about (wide ranges, private addresses)."""
        if self.open_to_everyone:
            return (
                "the Windows Admin Center port is opened to every host on the internet "
                "(PublicAccess.anywhere); restrict it to your management machines' addresses",
            )
        out = []
        nets = [ipaddress.ip_network(src, strict=False) for src in self.sources]
        for src, net in zip(self.sources, nets, strict=True):
            wide = WIDE_IPV4 if net.version == 4 else WIDE_IPV6
            if net.prefixlen < wide:
                out.append(
                    f"source {src} is very wide ({net.num_addresses:,} addresses); "
                    "restrict it to your management machines"
                )
            elif any(
                x.version == net.version and net.subnet_of(x)  # type: ignore[arg-type]
                for x in NON_INTERNET
            ):
                out.append(
                    f"source {src} is a private address: it cannot reach the VM's public IP; "
                    "use PrivateAccess for connections from inside the network"
                )
        return (*out, *_wide_warnings(nets))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": "public",
            "sources": list(self.sources),
            "openToEveryone": self.open_to_everyone,
        }
        if self.acknowledge_risk and not self.open_to_everyone:
            out["acknowledgeRisk"] = True
        return out

    def __str__(self) -> str:
        if self.open_to_everyone:
            return "public access from anywhere"
        return f"public access from {', '.join(self.sources)}"
