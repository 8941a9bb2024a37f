"""Flow evaluation through the NIC and subnet NSGs (pure; AZURE_FACTS.md §5)."""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from wac_azure._core.errors import InvalidInputError
from wac_azure._core.nsg.model import (
    Access,
    Direction,
    NetworkSecurityGroup,
    Protocol,
    SecurityRule,
)
from wac_azure._core.nsg.ports import PortRange
from wac_azure._core.nsg.prefixes import (
    NON_INTERNET,
    IpNetwork,
    Match,
    Prefix,
    PrefixKind,
    combine_any,
    compare_sets,
    parse_network,
    parse_prefix,
)

_VNET = "virtualnetwork"
_INTERNET = "internet"
_LB = "azureloadbalancer"
#: Tags for addresses that are not on the public internet.
_LOCAL_TAGS = frozenset({_VNET, _LB})
#: The host's virtual IP that the AzureLoadBalancer tag stands for.
_LB_NETS: tuple[IpNetwork, ...] = (ipaddress.ip_network("168.63.129.16/32"),)


# -- service tags -----------------------------------------------------------------------


class ServiceTags:
    """Service tag name → address prefixes, looked up case-insensitively.

    Build it from a plain mapping (``{"WindowsAdminCenter": ["20.1.2.0/24"]}``)
    or from the ServiceTags API answer with :meth:`from_arm`. Prefixes are
    parsed once, on first use of each tag.
    """

    __slots__ = ("_parsed", "_raw", "change_number")

    def __init__(
        self, tags: Mapping[str, Iterable[str]] | None = None, *, change_number: str | None = None
    ) -> None:
        self._raw: dict[str, tuple[str, ...]] = {}
        for name, prefixes in (tags or {}).items():
            if isinstance(prefixes, str):
                prefixes = (prefixes,)
            self._raw[str(name).casefold()] = tuple(str(p) for p in prefixes)
        self._parsed: dict[str, tuple[IpNetwork, ...]] = {}
        self.change_number = change_number

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> ServiceTags:
        """From ``GET .../locations/{loc}/serviceTags`` (``{"values": [{name, properties}]}``)."""
        tags: dict[str, list[str]] = {}
        values = body.get("values") if isinstance(body, Mapping) else None
        for value in values or ():
            if not isinstance(value, Mapping):
                continue
            name = value.get("name")
            props = value.get("properties")
            if not isinstance(name, str) or not isinstance(props, Mapping):
                continue
            prefixes = props.get("addressPrefixes") or []
            tags[name] = [p for p in prefixes if isinstance(p, str)]
        change = body.get("changeNumber") if isinstance(body, Mapping) else None
        return cls(tags, change_number=change if isinstance(change, str) else None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._raw

    def __len__(self) -> int:
        return len(self._raw)

    def names(self) -> list[str]:
        """The (casefolded) tag names known."""
        return sorted(self._raw)

    def networks(self, name: str) -> tuple[IpNetwork, ...] | None:
        """The parsed prefixes of tag ``name``, or ``None`` when the tag is unknown."""
        key = name.casefold()
        found = self._parsed.get(key)
        if found is not None:
            return found
        raw = self._raw.get(key)
        if raw is None:
            return None
        nets = tuple(n for n in (parse_network(p) for p in raw) if n is not None)
        self._parsed[key] = nets
        return nets


def _as_service_tags(tags: ServiceTags | Mapping[str, Iterable[str]] | None) -> ServiceTags:
    if isinstance(tags, ServiceTags):
        return tags
    return ServiceTags(tags)


# -- flows ------------------------------------------------------------------------------


def _endpoint(value: object) -> str:
    if not isinstance(value, str) or parse_prefix(value) is None:
        raise InvalidInputError(
            f"flow endpoint {value!r} must be an IP address, a CIDR, a service tag name or '*'"
        )
    return value.strip()


def _flow_port(value: object) -> int | None:
    if value is None or value == "*":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidInputError(f"flow port {value!r} must be 0-65535, '*' or None")
    return value


def _flow_protocol(value: object) -> Protocol:
    text = value.value if isinstance(value, Protocol) else value
    proto = None
    if isinstance(text, str):
        proto = {p.value.lower(): p for p in Protocol}.get(text.strip().lower())
    if proto is None or proto is Protocol.ANY:
        raise InvalidInputError(f"flow protocol {value!r} must be one of Tcp, Udp, Icmp, Esp, Ah")
    return proto


def _flow_direction(value: object) -> Direction:
    if isinstance(value, Direction):
        return value
    if isinstance(value, str):
        for d in Direction:
            if d.value.lower() == value.strip().lower():
                return d
    raise InvalidInputError(f"flow direction {value!r} must be 'Inbound' or 'Outbound'")


@attrs.frozen
class Flow:
    """One kind of traffic, seen from the VM.

    Endpoints are an IP address, a CIDR (a set of addresses), a service tag
    name (``"WindowsAdminCenter"``) or ``"*"``; ports an ``int`` or ``None``
    (``"*"``: any, such as an ephemeral source port).
    """

    direction: Direction = attrs.field(converter=_flow_direction)
    protocol: Protocol = attrs.field(converter=_flow_protocol)
    source: str = attrs.field(converter=_endpoint)
    source_port: int | None = attrs.field(converter=_flow_port)
    destination: str = attrs.field(converter=_endpoint)
    destination_port: int | None = attrs.field(converter=_flow_port)
    _src: Prefix = attrs.field(init=False, eq=False, repr=False)
    _dst: Prefix = attrs.field(init=False, eq=False, repr=False)

    @_src.default
    def _src_default(self) -> Prefix:
        parsed = parse_prefix(self.source)
        assert parsed is not None
        return parsed

    @_dst.default
    def _dst_default(self) -> Prefix:
        parsed = parse_prefix(self.destination)
        assert parsed is not None
        return parsed

    def __str__(self) -> str:
        sport = "*" if self.source_port is None else self.source_port
        dport = "*" if self.destination_port is None else self.destination_port
        return (
            f"{self.direction.value} {self.protocol.value} {self.source}:{sport} -> "
            f"{self.destination}:{dport}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "direction": self.direction.value,
            "protocol": self.protocol.value,
            "source": self.source,
            "sourcePort": self.source_port,
            "destination": self.destination,
            "destinationPort": self.destination_port,
        }


# -- verdicts ---------------------------------------------------------------------------


@attrs.frozen
class Step:
    """What one NSG on the path decided."""

    role: str  # "subnet" or "nic"
    nsg: str  # NSG id
    nsg_name: str
    access: Access
    rule: str | None
    priority: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "nsg": self.nsg,
            "nsgName": self.nsg_name,
            "access": self.access.value,
            "rule": self.rule,
            "priority": self.priority,
            "reason": self.reason,
        }


@attrs.frozen
class Verdict:
    """The outcome of :func:`evaluate`: the access, the deciding rule and NSG, why, and
    what each NSG on the path said."""

    access: Access
    rule: str | None
    nsg: str | None
    reason: str
    steps: tuple[Step, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the flow is certainly allowed."""
        return self.access is Access.ALLOW

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "access": self.access.value,
            "rule": self.rule,
            "nsg": self.nsg,
            "reason": self.reason,
            "steps": [s.to_dict() for s in self.steps],
        }

    def __str__(self) -> str:
        lines = [f"{self.access.value}: {self.reason}"]
        lines += [
            f"  {s.role} NSG {s.nsg_name}: {s.access.value}"
            + (f" by {s.rule} ({s.priority})" if s.rule else "")
            for s in self.steps
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(s.role)}</td><td>{e(s.nsg_name)}</td><td>{e(s.access.value)}</td>"
            f"<td>{e(s.rule or '')}</td><td>{e(str(s.priority or ''))}</td>"
            f"<td>{e(s.reason)}</td></tr>"
            for s in self.steps
        )
        return (
            f"<div><strong>{e(self.access.value)}</strong>: {e(self.reason)}"
            "<details><summary>NSGs on the path</summary><table>"
            "<tr><th>on</th><th>NSG</th><th>access</th><th>rule</th><th>priority</th>"
            f"<th>why</th></tr>{rows}</table></details></div>"
        )


# -- matching ---------------------------------------------------------------------------


@attrs.define
class _Context:
    vnet: tuple[IpNetwork, ...]
    tags: ServiceTags
    asgs: frozenset[str]

    def tag_networks(self, tag: str) -> tuple[IpNetwork, ...] | None:
        if tag == _VNET:
            return self.vnet or None
        found = self.tags.networks(tag)
        if found is None and tag == _LB:
            return _LB_NETS
        return found

    def internet_match(self, net: IpNetwork) -> Match:
        """How the Internet tag covers ``net``: public space outside the VNet."""
        excluded = (*NON_INTERNET, *self.vnet)
        overlap = False
        for x in excluded:
            if x.version != net.version:
                continue
            if net.subnet_of(x):  # type: ignore[arg-type]
                return Match.NONE
            if net.overlaps(x):
                overlap = True
        return Match.PARTIAL if overlap else Match.FULL

    def in_vnet(self, endpoint: Prefix) -> bool:
        if endpoint.kind is PrefixKind.TAG:
            return endpoint.tag == _VNET
        if endpoint.kind is PrefixKind.NETWORK and endpoint.network is not None:
            return compare_sets([endpoint.network], self.vnet) is not Match.NONE
        return True


def _prefix_match(rule: Prefix, ep: Prefix, ctx: _Context) -> Match:
    if rule.kind is PrefixKind.ANY:
        return Match.FULL
    if ep.kind is PrefixKind.ANY:
        return Match.PARTIAL
    if rule.kind is PrefixKind.NETWORK:
        assert rule.network is not None
        if ep.kind is PrefixKind.NETWORK:
            assert ep.network is not None
            return compare_sets([ep.network], [rule.network])
        # endpoint is a tag
        if rule.network.prefixlen == 0:
            return Match.FULL
        if ep.tag == _INTERNET:
            m = ctx.internet_match(rule.network)
            return Match.NONE if m is Match.NONE else Match.PARTIAL
        nets = ctx.tag_networks(ep.tag)
        if nets is None:
            return Match.UNKNOWN
        return compare_sets(nets, [rule.network])
    # rule prefix is a tag
    if ep.kind is PrefixKind.TAG and ep.tag == rule.tag:
        return Match.FULL
    if rule.tag == _INTERNET:
        if ep.kind is PrefixKind.NETWORK:
            assert ep.network is not None
            return ctx.internet_match(ep.network)
        # a service tag: public Azure services are part of Internet; VNet and LB are not
        return Match.NONE if ep.tag in _LOCAL_TAGS else Match.FULL
    rule_nets = ctx.tag_networks(rule.tag)
    if ep.kind is PrefixKind.NETWORK:
        assert ep.network is not None
        if rule_nets is None:
            return Match.UNKNOWN
        return compare_sets([ep.network], rule_nets)
    if ep.tag == _INTERNET:
        return Match.NONE if rule.tag in _LOCAL_TAGS else Match.PARTIAL
    ep_nets = ctx.tag_networks(ep.tag)
    if ep_nets is not None and rule_nets is not None:
        return compare_sets(ep_nets, rule_nets)
    if (rule.tag in _LOCAL_TAGS) != (ep.tag in _LOCAL_TAGS):
        return Match.NONE
    return Match.UNKNOWN


def _side_match(
    prefixes: tuple[Prefix, ...],
    asgs: tuple[str, ...],
    ep: Prefix,
    vm_side: bool,
    ctx: _Context,
) -> Match:
    results = [_prefix_match(p, ep, ctx) for p in prefixes]
    if asgs:
        if vm_side:
            hit = any(a.casefold() in ctx.asgs for a in asgs)
            results.append(Match.FULL if hit else Match.NONE)
        else:
            # the remote machine's ASGs are unknown; only NICs in the VNet can be members
            results.append(Match.UNKNOWN if ctx.in_vnet(ep) else Match.NONE)
    return combine_any(results)


def _port_match(ranges: tuple[PortRange, ...], port: int | None) -> Match:
    if port is None:
        return Match.FULL if any(r.is_any for r in ranges) else Match.PARTIAL
    return Match.FULL if any(port in r for r in ranges) else Match.NONE


def _rule_match(rule: SecurityRule, flow: Flow, ctx: _Context) -> Match:
    if rule.protocol is not Protocol.ANY and rule.protocol is not flow.protocol:
        return Match.NONE
    dport = _port_match(rule.destination_ports, flow.destination_port)
    if dport is Match.NONE:
        return Match.NONE
    sport = _port_match(rule.source_ports, flow.source_port)
    if sport is Match.NONE:
        return Match.NONE
    outbound = flow.direction is Direction.OUTBOUND
    src = _side_match(rule.parsed_sources, rule.source_asgs, flow._src, outbound, ctx)
    if src is Match.NONE:
        return Match.NONE
    dst = _side_match(rule.parsed_destinations, rule.destination_asgs, flow._dst, not outbound, ctx)
    if dst is Match.NONE:
        return Match.NONE
    results = (dport, sport, src, dst)
    if Match.UNKNOWN in results:
        return Match.UNKNOWN
    if Match.PARTIAL in results:
        return Match.PARTIAL
    return Match.FULL


@attrs.frozen
class NsgWalk:
    """What one NSG decides for a flow, as :func:`walk_nsg` finds it.

    ``step`` is the NSG's decision (the rule that decides, or *unknown*);
    ``first_deny`` the highest-priority Deny rule that matches or may match the
    flow: where an allow rule has to go before to let the flow through.
    """

    step: Step
    first_deny: SecurityRule | None


def _walk(flow: Flow, nsg: NetworkSecurityGroup, role: str, ctx: _Context) -> NsgWalk:
    unknown: list[SecurityRule] = []
    partial_allows: list[SecurityRule] = []
    first_deny: SecurityRule | None = None

    def step(access: Access, rule: SecurityRule | None, reason: str) -> Step:
        return Step(
            role=role,
            nsg=nsg.id,
            nsg_name=nsg.name,
            access=access,
            rule=rule.name if rule else None,
            priority=rule.priority if rule else None,
            reason=reason,
        )

    for rule in nsg.all_rules(flow.direction):
        m = _rule_match(rule, flow, ctx)
        if m is Match.NONE:
            continue
        if rule.access is Access.DENY and first_deny is None:
            first_deny = rule
        decides = m is Match.FULL or (m is Match.PARTIAL and rule.access is Access.DENY)
        if decides:
            conflicting = [u for u in unknown if u.access is not rule.access]
            if conflicting:
                u = conflicting[0]
                return NsgWalk(
                    step(
                        Access.UNKNOWN,
                        u,
                        f"rule {u.name!r} ({u.priority}) would {u.access.value.lower()} the "
                        f"flow if it matches, else rule {rule.name!r} ({rule.priority}) "
                        f"would {rule.access.value.lower()} it; whether it matches depends "
                        "on service tag or application security group membership that is "
                        "not known",
                    ),
                    first_deny,
                )
            what = "part of the flow" if m is Match.PARTIAL else "the flow"
            verb = "allows" if rule.access is Access.ALLOW else "denies"
            kind = "default rule" if rule.is_default else "rule"
            return NsgWalk(
                step(rule.access, rule, f"{kind} {rule.name!r} ({rule.priority}) {verb} {what}"),
                first_deny,
            )
        if m is Match.UNKNOWN:
            unknown.append(rule)
        else:
            partial_allows.append(rule)
    if unknown:
        u = unknown[0]
        return NsgWalk(
            step(Access.UNKNOWN, u, f"rule {u.name!r} may match; no rule decides"), first_deny
        )
    return NsgWalk(step(Access.UNKNOWN, None, "no rule matches the flow"), first_deny)


def _context(
    vnet_prefixes: Iterable[str],
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None,
    asgs: Iterable[str],
) -> _Context:
    vnet: list[IpNetwork] = []
    for p in vnet_prefixes:
        net = parse_network(p) if isinstance(p, str) else None
        if net is None:
            raise InvalidInputError(f"vnet prefix {p!r} is not an IP address or CIDR")
        vnet.append(net)
    return _Context(
        tuple(vnet), _as_service_tags(service_tags), frozenset(a.casefold() for a in asgs)
    )


def _path(
    flow: Flow,
    nic_nsg: NetworkSecurityGroup | None,
    subnet_nsg: NetworkSecurityGroup | None,
) -> list[tuple[str, NetworkSecurityGroup]]:
    order = (
        [("subnet", subnet_nsg), ("nic", nic_nsg)]
        if flow.direction is Direction.INBOUND
        else [("nic", nic_nsg), ("subnet", subnet_nsg)]
    )
    return [(role, nsg) for role, nsg in order if nsg is not None]


def walk_nsg(
    flow: Flow,
    nsg: NetworkSecurityGroup,
    *,
    role: str = "nic",
    vnet_prefixes: Sequence[str] = (),
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
    asgs: Iterable[str] = (),
) -> NsgWalk:
    """Walk one NSG's rules for ``flow``: its decision plus the first Deny rule that may match.

    Unlike :func:`evaluate`, which combines the subnet and NIC NSGs into a
    :class:`Verdict`, this looks at a single NSG (``role`` is ``"nic"`` or
    ``"subnet"``, used in the :class:`Step`) and also reports where an allow
    rule would have to go (:attr:`NsgWalk.first_deny`). The other arguments
    are those of :func:`evaluate`.
    """
    return _walk(flow, nsg, role, _context(vnet_prefixes, service_tags, asgs))


def evaluate(
    flow: Flow,
    *,
    nic_nsg: NetworkSecurityGroup | None = None,
    subnet_nsg: NetworkSecurityGroup | None = None,
    vnet_prefixes: Sequence[str] = (),
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
    asgs: Iterable[str] = (),
) -> Verdict:
    """Whether Azure lets ``flow`` through the VM's subnet and NIC NSGs.

    Inbound traffic passes the subnet NSG, then the NIC NSG; outbound the NIC
    NSG, then the subnet NSG; both must allow, and no NSG at all allows. In
    each NSG the lowest-numbered matching rule decides. ``VirtualNetwork``
    resolves through ``vnet_prefixes``; ``Internet`` is public address space
    outside them; other tags through ``service_tags`` (tag → prefixes). Where
    the match of a rule that could change the outcome cannot be known (a CIDR
    against a tag whose prefixes are not given, an ASG of a remote machine),
    the verdict is ``Access.UNKNOWN``. ``asgs`` are the application security
    group IDs of the VM's NIC.
    """
    ctx = _context(vnet_prefixes, service_tags, asgs)
    path = _path(flow, nic_nsg, subnet_nsg)
    if not path:
        return Verdict(
            Access.ALLOW,
            None,
            None,
            "no network security group on the path: Azure lets the flow through",
            (),
        )
    steps = tuple(_walk(flow, nsg, role, ctx).step for role, nsg in path)
    for s in steps:
        if s.access is Access.DENY:
            return Verdict(
                Access.DENY, s.rule, s.nsg, f"{s.role} NSG {s.nsg_name!r}: {s.reason}", steps
            )
    for s in steps:
        if s.access is Access.UNKNOWN:
            return Verdict(
                Access.UNKNOWN, s.rule, s.nsg, f"{s.role} NSG {s.nsg_name!r}: {s.reason}", steps
            )
    last = steps[-1]
    reason = "; ".join(f"{s.role} NSG {s.nsg_name!r}: {s.reason}" for s in steps)
    return Verdict(Access.ALLOW, last.rule, last.nsg, reason, steps)
