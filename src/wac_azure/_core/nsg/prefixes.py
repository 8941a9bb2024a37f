"""Address prefixes of security rules and flow endpoints: CIDRs, addresses, service tags."""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Union

import attrs

IpNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007

# Service tag names: ``Storage``, ``Storage.WestEurope``, ``AzureFrontDoor.Frontend``...
_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")

NON_INTERNET: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(p)
    for p in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
"""Address space the ``Internet`` service tag never covers.

Private (RFC 1918), shared/CGNAT (RFC 6598), loopback, link-local, "this
network", multicast and reserved space, and their IPv6 counterparts. The
virtual network's own prefixes are excluded as well, at evaluation time.
"""


class Match(enum.Enum):
    """How a rule's condition meets a flow: fully, not at all, partly, or unknown."""

    FULL = "full"
    NONE = "none"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


class PrefixKind(enum.Enum):
    ANY = "any"
    NETWORK = "network"
    TAG = "tag"


@attrs.frozen
class Prefix:
    """One parsed address prefix: ``*``, an IP network, or a service tag."""

    kind: PrefixKind
    text: str
    network: IpNetwork | None = None
    #: casefolded tag name (for TAG), used for case-insensitive comparison.
    tag: str = ""


_ANY_TEXT = {"*", "any"}


def parse_network(text: str) -> IpNetwork | None:
    """An IP network from an address or CIDR (non-strict), or ``None``."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def parse_prefix(text: str) -> Prefix | None:
    """Parse an address prefix as Azure accepts it; ``None`` when it is not one.

    Cached (the results are immutable): a fleet's planning parses the same growing
    lists of VM addresses many times.
    """
    value = text.strip()
    if value.lower() in _ANY_TEXT:
        return Prefix(PrefixKind.ANY, value)
    if not value:
        return None
    if value[0].isdigit() or ":" in value:
        net = parse_network(value)
        if net is None:
            return None
        return Prefix(PrefixKind.NETWORK, value, net)
    if _TAG_RE.match(value):
        return Prefix(PrefixKind.TAG, value, tag=value.casefold())
    return None


def compare_sets(flow_nets: Sequence[IpNetwork], rule_nets: Sequence[IpNetwork]) -> Match:
    """How ``rule_nets`` cover ``flow_nets``: FULL (each flow net inside one rule net),
    NONE (no overlap at all) or PARTIAL."""
    if not flow_nets:
        return Match.NONE
    all_covered = True
    any_overlap = False
    for f in flow_nets:
        covered = False
        for r in rule_nets:
            if f.version != r.version:
                continue
            if f.subnet_of(r):  # type: ignore[arg-type]
                covered = True
                any_overlap = True
                break
            if f.overlaps(r):
                any_overlap = True
        if not covered:
            all_covered = False
        if any_overlap and not all_covered:
            return Match.PARTIAL
    if all_covered:
        return Match.FULL
    return Match.PARTIAL if any_overlap else Match.NONE


def combine_any(matches: Iterable[Match]) -> Match:
    """The match of "any of these conditions": FULL beats UNKNOWN beats PARTIAL beats NONE."""
    seen = set(matches)
    for m in (Match.FULL, Match.UNKNOWN, Match.PARTIAL):
        if m in seen:
            return m
    return Match.NONE


def _span(net: IpNetwork) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def address_count(
    networks: Iterable[IpNetwork], *, excluding: Iterable[IpNetwork] = ()
) -> dict[int, int]:
    """How many addresses of each IP version (4, 6) the union of ``networks`` covers,
    leaving out those in ``excluding``.

    Overlaps count once: each family's networks are merged
    (:func:`ipaddress.collapse_addresses`) before counting, so ``10.0.0.0/8`` and
    ``10.1.0.0/16`` together cover 16,777,216 addresses, not 16,842,752. Two CIDR
    blocks either nest or are disjoint, and the merged blocks of one side are
    disjoint, so the excluded part is the sum of the pairwise overlaps (as integer
    address ranges).
    """
    counts: dict[int, int] = {4: 0, 6: 0}
    nets = list(networks)
    cut = list(excluding)
    for version in (4, 6):
        mine = [n for n in nets if n.version == version]
        if not mine:
            continue
        merged = [_span(n) for n in ipaddress.collapse_addresses(mine)]  # type: ignore[type-var]
        holes = [
            _span(h)
            for h in ipaddress.collapse_addresses(  # type: ignore[type-var]
                c for c in cut if c.version == version
            )
        ]
        total = 0
        for first, last in merged:
            inside = sum(max(0, min(last, e) - max(first, b) + 1) for b, e in holes)
            total += last - first + 1 - inside
        counts[version] = total
    return counts


def public_address_count(networks: Iterable[IpNetwork]) -> dict[int, int]:
    """:func:`address_count` of the public part of ``networks``: without
    :data:`NON_INTERNET` (private, CGNAT, loopback, link-local, multicast, reserved)."""
    return address_count(networks, excluding=NON_INTERNET)
