"""The emulator's own small NSG evaluator (deliberately independent of ``wac_azure.nsg``).

It answers one question the way Azure does: is a flow allowed through the NSGs
in its path? Rules are processed by priority; the first match decides. An
endpoint is either an IP address or a service tag name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from wac_azure.testing.backend.builders import SERVICE_TAGS

__all__ = ["Endpoint", "Verdict", "flow_allowed"]

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class Endpoint:
    """One end of a flow: an address (``ip``) or a service (``tag``) with its prefixes."""

    ip: str | None = None
    tag: str | None = None
    tag_prefixes: tuple[str, ...] = ()
    asgs: tuple[str, ...] = ()


@attrs.frozen
class Verdict:
    allowed: bool
    rule: str | None
    nsg: str | None


def _net(text: str) -> _Net | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _in_any(ip: str, prefixes: Iterable[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for p in prefixes:
        net = _net(p)
        if net is not None and net.version == addr.version and addr in net:
            return True
    return False


def _tag_prefixes(name: str) -> list[str] | None:
    """The prefixes of service tag ``name`` (case-insensitive), ``None`` if it is no tag."""
    low = name.lower()
    for tag, (_, _, prefixes) in SERVICE_TAGS.items():
        if tag.lower() == low:
            return list(prefixes)
    return None


def _overlap(prefixes: Iterable[str], others: Iterable[str]) -> bool:
    nets = [n for n in (_net(p) for p in prefixes) if n is not None]
    for tp in others:
        other = _net(tp)
        if other is None:
            continue
        if any(n.version == other.version and n.overlaps(other) for n in nets):
            return True
    return False


def _prefix_matches(prefix: str, ep: Endpoint, vnet: Sequence[str]) -> bool:
    p = prefix.strip()
    low = p.lower()
    if low in ("*", "any", "0.0.0.0/0", "::/0"):
        return True
    if ep.tag is not None:
        if low == ep.tag.lower():
            return True
        if low == "internet":
            return ep.tag.lower() not in ("virtualnetwork", "azureloadbalancer")
        if _net(p) is not None:
            return _overlap([p], ep.tag_prefixes)
        # A rule naming another service tag (AzureCloud contains WindowsAdminCenter):
        # Azure matches by address, so the tags' prefixes decide.
        rule_tag = _tag_prefixes(p)
        return rule_tag is not None and _overlap(rule_tag, ep.tag_prefixes)
    if ep.ip is None:
        return False
    if low == "virtualnetwork":
        return _in_any(ep.ip, vnet)
    if low == "internet":
        return not _in_any(ep.ip, vnet) and not ipaddress.ip_address(ep.ip).is_private
    if _net(p) is not None:
        return _in_any(ep.ip, [p])
    rule_tag = _tag_prefixes(p)
    return rule_tag is not None and _in_any(ep.ip, rule_tag)


def _ports_match(rng: str, port: int | None) -> bool:
    r = rng.strip()
    if r == "*":
        return True
    if port is None:
        return False
    lo, _, hi = r.partition("-")
    try:
        return int(lo) <= port <= int(hi or lo)
    except ValueError:
        return False


def _plural(props: dict[str, Any], single: str, plural: str) -> list[str]:
    values = [str(v) for v in props.get(plural) or []]
    one = props.get(single)
    if one:
        values.append(str(one))
    return values


def _asg_ids(props: dict[str, Any], key: str) -> list[str]:
    return [str(a.get("id", "")).lower() for a in props.get(key) or [] if isinstance(a, dict)]


def _rule_matches(
    props: dict[str, Any],
    protocol: str,
    src: Endpoint,
    dst: Endpoint,
    dst_port: int | None,
    vnet: Sequence[str],
) -> bool:
    proto = str(props.get("protocol", "*"))
    if proto != "*" and proto.lower() != protocol.lower():
        return False
    for side, ep, single, plural, asg_key in (
        (
            "src",
            src,
            "sourceAddressPrefix",
            "sourceAddressPrefixes",
            "sourceApplicationSecurityGroups",
        ),
        (
            "dst",
            dst,
            "destinationAddressPrefix",
            "destinationAddressPrefixes",
            "destinationApplicationSecurityGroups",
        ),
    ):
        del side
        asgs = _asg_ids(props, asg_key)
        if asgs:
            if not any(a.lower() in asgs for a in ep.asgs):
                return False
        elif not any(_prefix_matches(p, ep, vnet) for p in _plural(props, single, plural)):
            return False
    ports = _plural(props, "destinationPortRange", "destinationPortRanges")
    return any(_ports_match(r, dst_port) for r in ports)


def _sorted_rules(nsg: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    props = nsg.get("properties") or {}
    rules = list(props.get("securityRules") or []) + list(props.get("defaultSecurityRules") or [])
    picked = [
        r
        for r in rules
        if str((r.get("properties") or {}).get("direction", "")).lower() == direction.lower()
    ]
    return sorted(picked, key=lambda r: int((r.get("properties") or {}).get("priority", 65535)))


def evaluate_one(
    nsg: dict[str, Any],
    direction: str,
    protocol: str,
    src: Endpoint,
    dst: Endpoint,
    dst_port: int | None,
    vnet: Sequence[str],
) -> Verdict:
    """The first matching rule of one NSG decides (default rules end with a deny)."""
    for rule in _sorted_rules(nsg, direction):
        props = rule.get("properties") or {}
        if _rule_matches(props, protocol, src, dst, dst_port, vnet):
            return Verdict(
                str(props.get("access", "")).lower() == "allow", rule.get("name"), nsg.get("id")
            )
    return Verdict(False, None, nsg.get("id"))


def flow_allowed(
    nsgs: Sequence[dict[str, Any]],
    *,
    direction: str,
    protocol: str,
    src: Endpoint,
    dst: Endpoint,
    dst_port: int | None,
    vnet: Sequence[str] = (),
) -> Verdict:
    """Every NSG on the path (in path order) must allow the flow; none at all allows it."""
    last = Verdict(True, None, None)
    for nsg in nsgs:
        last = evaluate_one(nsg, direction, protocol, src, dst, dst_port, vnet)
        if not last.allowed:
            return last
    return last
