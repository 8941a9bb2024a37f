"""Security rules and network security groups, parsed from ARM JSON."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wac_azure._core.errors import InvalidRuleError
from wac_azure._core.nsg.ports import PortRange, parse_port_range
from wac_azure._core.nsg.prefixes import Prefix, parse_prefix

_CUSTOM_MIN, _CUSTOM_MAX = 100, 4096

#: The text every rule wac_azure writes starts its description with. The text alone
#: proves nothing (anyone can copy it): ownership is the mark that follows it, see
#: :func:`ownership_mark`.
MANAGED_DESCRIPTION = "Managed by wac_azure"
_MARK = re.compile(r"^Managed by wac_azure \(mark ([0-9a-f]{16})\)$")


class Access(enum.Enum):
    """What a rule or a verdict says about a flow."""

    ALLOW = "Allow"
    DENY = "Deny"
    UNKNOWN = "Unknown"


class Direction(str, enum.Enum):
    """Traffic direction, seen from the VM."""

    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


class Protocol(str, enum.Enum):
    """A rule's protocol (``ANY`` is Azure's ``*``)."""

    TCP = "Tcp"
    UDP = "Udp"
    ICMP = "Icmp"
    ESP = "Esp"
    AH = "Ah"
    ANY = "*"


_PROTOCOLS = {p.value.lower(): p for p in Protocol} | {"all": Protocol.ANY, "any": Protocol.ANY}
_DIRECTIONS = {d.value.lower(): d for d in Direction}
_ACCESSES = {"allow": Access.ALLOW, "deny": Access.DENY}


def _enum_of(value: object, table: Mapping[str, Any], what: str) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str) and value.strip().lower() in table:
        return table[value.strip().lower()]
    raise InvalidRuleError(f"{what} {value!r} is not one of {sorted(set(table))}", field=what)


def _to_direction(value: object) -> Direction:
    result: Direction = _enum_of(value, _DIRECTIONS, "direction")
    return result


def _to_access(value: object) -> Access:
    result: Access = _enum_of(value, _ACCESSES, "access")
    return result


def _to_protocol(value: object) -> Protocol:
    result: Protocol = _enum_of(value, _PROTOCOLS, "protocol")
    return result


def _parse_prefixes(values: tuple[str, ...], rule: str, field: str) -> tuple[Prefix, ...]:
    parsed = []
    for text in values:
        prefix = parse_prefix(text) if isinstance(text, str) else None
        if prefix is None:
            raise InvalidRuleError(
                f"security rule {rule!r}: {field}: {text!r} is neither '*', an IP address, "
                "a CIDR nor a service tag name",
                rule=rule,
                field=field,
            )
        parsed.append(prefix)
    return tuple(parsed)


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _port_tuple(values: Iterable[PortRange]) -> tuple[PortRange, ...]:
    return tuple(values)


@attrs.frozen
class SecurityRule:
    """One security rule, custom or default.

    Built by :meth:`from_arm` from a rule's ARM JSON (singular and plural
    fields merged). ``source_prefixes``/``destination_prefixes`` keep the text
    Azure holds (``"*"``, ``"10.0.0.0/16"``, ``"VirtualNetwork"``...);
    ``source_asgs``/``destination_asgs`` are application security group IDs.
    """

    name: str
    priority: int
    direction: Direction = attrs.field(converter=_to_direction)
    access: Access = attrs.field(converter=_to_access)
    protocol: Protocol = attrs.field(converter=_to_protocol)
    source_prefixes: tuple[str, ...] = attrs.field(converter=_str_tuple)
    source_ports: tuple[PortRange, ...] = attrs.field(converter=_port_tuple)
    destination_prefixes: tuple[str, ...] = attrs.field(converter=_str_tuple)
    destination_ports: tuple[PortRange, ...] = attrs.field(converter=_port_tuple)
    source_asgs: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    destination_asgs: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    description: str | None = None
    is_default: bool = False
    id: str | None = attrs.field(default=None, eq=False)
    _source: tuple[Prefix, ...] = attrs.field(init=False, eq=False, repr=False)
    _destination: tuple[Prefix, ...] = attrs.field(init=False, eq=False, repr=False)

    @_source.default
    def _source_default(self) -> tuple[Prefix, ...]:
        return _parse_prefixes(self.source_prefixes, self.name, "sourceAddressPrefix")

    @_destination.default
    def _destination_default(self) -> tuple[Prefix, ...]:
        return _parse_prefixes(self.destination_prefixes, self.name, "destinationAddressPrefix")

    @property
    def parsed_sources(self) -> tuple[Prefix, ...]:
        """The source prefixes, parsed once (CIDRs, addresses, service tags, ``*``)."""
        return self._source

    @property
    def parsed_destinations(self) -> tuple[Prefix, ...]:
        """The destination prefixes, parsed once."""
        return self._destination

    @property
    def is_managed(self) -> bool:
        """Whether wac_azure wrote the rule as it stands: its description carries a valid
        ownership mark (:func:`ownership_mark` of its name and managed fields).

        A rule whose description merely says ``Managed by wac_azure`` (copied onto a
        user's rule, or written by a version before 0.4) is not managed: see
        :attr:`claims_managed`.
        """
        found = _MARK.match(self.description or "")
        return found is not None and found.group(1) == ownership_mark(self)

    @property
    def claims_managed(self) -> bool:
        """Whether the description starts with ``Managed by wac_azure`` (mark or not)."""
        return (self.description or "").startswith(MANAGED_DESCRIPTION)

    def marked(self) -> SecurityRule:
        """This rule with the description wac_azure writes: ``Managed by wac_azure (mark
        <16 hex>)``, the mark proving the name and managed fields are as it wrote them."""
        return attrs.evolve(
            self, description=f"{MANAGED_DESCRIPTION} (mark {ownership_mark(self)})"
        )

    @classmethod
    def from_arm(
        cls, rule_json: Mapping[str, Any], *, is_default: bool | None = None
    ) -> SecurityRule:
        """Parse one rule as ARM returns it (``{"name", "id", "properties": {...}}``).

        The flattened form (fields at the top level, as in effective-rule lists)
        is accepted too. ``is_default`` defaults to whether the rule's ID lies
        under ``/defaultSecurityRules/``. Raises :class:`~wac_azure.InvalidRuleError`
        naming the rule and the wire field that is wrong.
        """
        return _parse_rule(rule_json, is_default)

    def to_arm(self) -> dict[str, Any]:
        """The rule as wire JSON, ready for a ``securityRules`` PUT."""
        props: dict[str, Any] = {}
        if self.description is not None:
            props["description"] = self.description
        props["protocol"] = self.protocol.value
        _put_list(props, "sourcePortRange", [str(p) for p in self.source_ports])
        _put_list(props, "destinationPortRange", [str(p) for p in self.destination_ports])
        if self.source_asgs:
            props["sourceApplicationSecurityGroups"] = [{"id": a} for a in self.source_asgs]
        _put_list(props, "sourceAddressPrefix", list(self.source_prefixes))
        if self.destination_asgs:
            props["destinationApplicationSecurityGroups"] = [
                {"id": a} for a in self.destination_asgs
            ]
        _put_list(props, "destinationAddressPrefix", list(self.destination_prefixes))
        props["access"] = self.access.value
        props["priority"] = self.priority
        props["direction"] = self.direction.value
        return {"name": self.name, "properties": props}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (the wire form plus ``is_default``)."""
        body = self.to_arm()
        body["isDefault"] = self.is_default
        return body

    def __str__(self) -> str:
        src = ",".join(self.source_prefixes + tuple(f"asg:{a}" for a in self.source_asgs))
        dst = ",".join(self.destination_prefixes + tuple(f"asg:{a}" for a in self.destination_asgs))
        ports = ",".join(str(p) for p in self.destination_ports)
        return (
            f"{self.priority} {self.name}: {self.access.value} {self.direction.value} "
            f"{self.protocol.value} {src or '-'} -> {dst or '-'}:{ports}"
        )


@functools.lru_cache(maxsize=8192)
def ownership_mark(rule: SecurityRule) -> str:
    """The 16 hex digits that mark ``rule`` as written by wac_azure.

    SHA-256 over the rule's name and every field the library manages
    (direction, access, protocol, priority, address prefixes, ports, ASGs),
    each case-folded and lists sorted, so that a read of the rule Azure
    reformats gives the same mark. Copying the description onto another rule
    does not carry ownership with it: the mark no longer matches. It is a
    guard against accidents, not against someone who means to forge it (who
    can write the NSG can do anything to it anyway): see docs/security.md.
    Memoized: a shared NSG's rules are checked once per VM planned.
    """
    fields = {
        "name": rule.name.casefold(),
        "direction": rule.direction.value.casefold(),
        "access": rule.access.value.casefold(),
        "protocol": rule.protocol.value.casefold(),
        "priority": rule.priority,
        "src": sorted(p.casefold() for p in rule.source_prefixes),
        "dst": sorted(p.casefold() for p in rule.destination_prefixes),
        "sport": sorted(str(p) for p in rule.source_ports),
        "dport": sorted(str(p) for p in rule.destination_ports),
        "srcAsg": sorted(a.casefold() for a in rule.source_asgs),
        "dstAsg": sorted(a.casefold() for a in rule.destination_asgs),
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(("wac_azure rule v1\n" + text).encode()).hexdigest()[:16]


def _put_list(props: dict[str, Any], singular: str, values: list[str]) -> None:
    if len(values) == 1:
        props[singular] = values[0]
    elif values:
        props[_plural(singular)] = values


# -- parsing ---------------------------------------------------------------------------


def _fail(rule: str, field: str, message: str) -> InvalidRuleError:
    return InvalidRuleError(f"security rule {rule!r}: {field}: {message}", rule=rule, field=field)


def _plural(singular: str) -> str:
    return singular + ("es" if singular.endswith("x") else "s")


def _strings(props: Mapping[str, Any], singular: str, rule: str) -> list[str]:
    """Merge a singular field and its plural (``[]`` when the singular is used)."""
    out: list[str] = []
    one = props.get(singular)
    if one is not None:
        if not isinstance(one, str):
            raise _fail(rule, singular, f"expected a string, got {type(one).__name__}")
        if one.strip():
            out.append(one.strip())
    plural = _plural(singular)
    many = props.get(plural)
    if many is not None:
        if isinstance(many, (str, bytes)) or not isinstance(many, Iterable):
            raise _fail(rule, plural, f"expected a list, got {type(many).__name__}")
        for item in many:
            if not isinstance(item, str) or not item.strip():
                raise _fail(rule, plural, f"expected non-empty strings, got {item!r}")
            if item.strip() not in out:
                out.append(item.strip())
    return out


def _ports(props: Mapping[str, Any], singular: str, rule: str) -> tuple[PortRange, ...]:
    raw: list[object] = []
    one = props.get(singular)
    if isinstance(one, str) and not one.strip():
        one = None  # an empty singular next to a filled plural
    if one is not None:
        raw.append(one)
    many = props.get(singular + "s")
    if many is not None:
        if isinstance(many, (str, bytes)) or not isinstance(many, Iterable):
            raise _fail(rule, singular + "s", f"expected a list, got {type(many).__name__}")
        raw.extend(many)
    if not raw:
        raise _fail(rule, singular, "missing: give a port, a range 'N-M' or '*'")
    out: list[PortRange] = []
    for value in raw:
        port = parse_port_range(value)
        if port is None:
            field = singular if value is one else singular + "s"
            raise _fail(
                rule, field, f"{value!r} is not '*', a port 0-65535 or a range 'N-M' (N <= M)"
            )
        if port not in out:
            out.append(port)
    return tuple(out)


def _asgs(props: Mapping[str, Any], field: str, rule: str) -> list[str]:
    value = props.get(field)
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _fail(rule, field, f"expected a list of {{'id': ...}}, got {type(value).__name__}")
    out: list[str] = []
    for item in value:
        asg_id = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(asg_id, str) or not asg_id.strip():
            raise _fail(rule, field, f"expected {{'id': '<asg resource id>'}}, got {item!r}")
        out.append(asg_id.strip())
    return out


def _prefixes(props: Mapping[str, Any], singular: str, rule: str) -> list[str]:
    values = _strings(props, singular, rule)
    for text in values:
        if parse_prefix(text) is None:
            raise _fail(
                rule,
                singular,
                f"{text!r} is neither '*', an IP address, a CIDR nor a service tag name",
            )
    return values


def _parse_rule(rule_json: object, is_default: bool | None) -> SecurityRule:
    if not isinstance(rule_json, Mapping):
        raise _fail("<unnamed>", "", f"expected a JSON object, got {type(rule_json).__name__}")
    name = rule_json.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail("<unnamed>", "name", "missing or not a string")
    props = rule_json.get("properties", rule_json)
    if not isinstance(props, Mapping):
        raise _fail(name, "properties", f"expected an object, got {type(props).__name__}")
    rule_id = rule_json.get("id")
    if rule_id is not None and not isinstance(rule_id, str):
        raise _fail(name, "id", "expected a string")
    if is_default is None:
        is_default = bool(rule_id) and "/defaultsecurityrules/" in str(rule_id).lower()

    try:
        direction = _to_direction(props.get("direction"))
    except ValueError:
        raise _fail(
            name, "direction", f"{props.get('direction')!r} is not Inbound or Outbound"
        ) from None
    try:
        access = _to_access(props.get("access"))
    except ValueError:
        raise _fail(name, "access", f"{props.get('access')!r} is not Allow or Deny") from None
    try:
        protocol = _to_protocol(props.get("protocol"))
    except ValueError:
        raise _fail(
            name, "protocol", f"{props.get('protocol')!r} is not Tcp, Udp, Icmp, Esp, Ah or *"
        ) from None
    priority = props.get("priority")
    if isinstance(priority, str) and priority.strip().isdigit():
        priority = int(priority.strip())
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _fail(name, "priority", f"expected an integer, got {priority!r}")
    low, high = (1, 65535) if is_default else (_CUSTOM_MIN, _CUSTOM_MAX)
    if not low <= priority <= high:
        raise _fail(name, "priority", f"{priority} is outside {low}-{high}")
    description = props.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail(name, "description", "expected a string")

    src_asgs = _asgs(props, "sourceApplicationSecurityGroups", name)
    dst_asgs = _asgs(props, "destinationApplicationSecurityGroups", name)
    src = _prefixes(props, "sourceAddressPrefix", name)
    dst = _prefixes(props, "destinationAddressPrefix", name)
    if not src and not src_asgs:
        raise _fail(
            name,
            "sourceAddressPrefix",
            "missing: give an address prefix, a service tag, '*' or application security groups",
        )
    if not dst and not dst_asgs:
        raise _fail(
            name,
            "destinationAddressPrefix",
            "missing: give an address prefix, a service tag, '*' or application security groups",
        )
    return SecurityRule(
        name=name.strip(),
        priority=priority,
        direction=direction,
        access=access,
        protocol=protocol,
        source_prefixes=tuple(src),
        source_ports=_ports(props, "sourcePortRange", name),
        destination_prefixes=tuple(dst),
        destination_ports=_ports(props, "destinationPortRange", name),
        source_asgs=tuple(src_asgs),
        destination_asgs=tuple(dst_asgs),
        description=description,
        is_default=is_default,
        id=rule_id,
    )


# -- default rules ---------------------------------------------------------------------


def _default(
    name: str, priority: int, direction: str, access: str, src: str, dst: str, description: str
) -> SecurityRule:
    return SecurityRule(
        name=name,
        priority=priority,
        direction=direction,
        access=access,
        protocol="*",
        source_prefixes=(src,),
        source_ports=(PortRange(0, 65535),),
        destination_prefixes=(dst,),
        destination_ports=(PortRange(0, 65535),),
        description=description,
        is_default=True,
    )


#: The six rules every NSG has (implied when the JSON leaves them out).
DEFAULT_RULES: tuple[SecurityRule, ...] = (
    _default(
        "AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork",
        "Allow inbound traffic from all VMs in VNET",
    ),
    _default(
        "AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*",
        "Allow inbound traffic from azure load balancer",
    ),
    _default(
        "DenyAllInBound", 65500, "Inbound", "Deny", "*", "*", "Deny all inbound traffic"
    ),
    _default(
        "AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork",
        "Allow outbound traffic from all VMs to all VMs in VNET",
    ),
    _default(
        "AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet",
        "Allow outbound traffic from all VMs to Internet",
    ),
    _default(
        "DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*", "Deny all outbound traffic"
    ),
)  # fmt: skip


def _sorted(rules: Iterable[SecurityRule]) -> tuple[SecurityRule, ...]:
    return tuple(sorted(rules, key=lambda r: (r.direction.value, r.priority, r.name.lower())))


@attrs.frozen
class NetworkSecurityGroup:
    """A network security group: its custom rules and its default rules.

    ``rules`` and ``default_rules`` are sorted by direction then priority, so
    the order of the input never matters.
    """

    id: str
    name: str
    location: str | None = None
    etag: str | None = None
    rules: tuple[SecurityRule, ...] = attrs.field(default=(), converter=_sorted)
    default_rules: tuple[SecurityRule, ...] = attrs.field(default=DEFAULT_RULES, converter=_sorted)
    _inbound: tuple[SecurityRule, ...] = attrs.field(init=False, eq=False, repr=False)
    _outbound: tuple[SecurityRule, ...] = attrs.field(init=False, eq=False, repr=False)

    @_inbound.default
    def _inbound_default(self) -> tuple[SecurityRule, ...]:
        return self._chain(Direction.INBOUND)

    @_outbound.default
    def _outbound_default(self) -> tuple[SecurityRule, ...]:
        return self._chain(Direction.OUTBOUND)

    def _chain(self, direction: Direction) -> tuple[SecurityRule, ...]:
        rules = [r for r in (*self.rules, *self.default_rules) if r.direction is direction]
        rules.sort(key=lambda r: (r.priority, r.is_default))
        return tuple(rules)

    def all_rules(self, direction: Direction | str) -> tuple[SecurityRule, ...]:
        """Custom and default rules of one direction, lowest priority number first."""
        d = _to_direction(direction)
        return self._inbound if d is Direction.INBOUND else self._outbound

    def rule(self, name: str) -> SecurityRule | None:
        """The custom rule called ``name`` (case-insensitive), if any."""
        wanted = name.lower()
        for r in self.rules:
            if r.name.lower() == wanted:
                return r
        return None

    def with_rules(self, *extra: SecurityRule) -> NetworkSecurityGroup:
        """A copy with ``extra`` custom rules added (for planning)."""
        return attrs.evolve(self, rules=self.rules + extra)

    @classmethod
    def from_arm(cls, nsg_json: Mapping[str, Any]) -> NetworkSecurityGroup:
        """Parse an NSG as ARM returns it; the six default rules are implied when absent.

        Raises :class:`~wac_azure.InvalidRuleError` for any malformed rule, and for
        two rules sharing a name or a priority in one direction.
        """
        if not isinstance(nsg_json, Mapping):
            raise _fail("<nsg>", "", f"expected an NSG JSON object, got {type(nsg_json).__name__}")
        nsg_id = nsg_json.get("id") or ""
        if not isinstance(nsg_id, str):
            raise _fail("<nsg>", "id", "expected a string")
        name = nsg_json.get("name") or nsg_id.rstrip("/").rsplit("/", 1)[-1]
        if not isinstance(name, str):
            raise _fail("<nsg>", "name", "expected a string")
        location = nsg_json.get("location")
        etag = nsg_json.get("etag")
        props = nsg_json.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, Mapping):
            raise _fail(f"<nsg {name}>", "properties", "expected an object")
        rules = tuple(
            SecurityRule.from_arm(r, is_default=False)
            for r in _rule_list(props, "securityRules", name)
        )
        defaults = tuple(
            SecurityRule.from_arm(r, is_default=True)
            for r in _rule_list(props, "defaultSecurityRules", name)
        )
        _check_unique(rules, name)
        return cls(
            id=nsg_id,
            name=name,
            location=location if isinstance(location, str) else None,
            etag=etag if isinstance(etag, str) else None,
            rules=rules,
            default_rules=defaults or DEFAULT_RULES,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary."""
        return {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "etag": self.etag,
            "rules": [r.to_dict() for r in self.rules],
            "defaultRules": [r.to_dict() for r in self.default_rules],
        }


def _rule_list(props: Mapping[str, Any], field: str, nsg: str) -> list[Any]:
    value = props.get(field)
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _fail(f"<nsg {nsg}>", field, f"expected a list, got {type(value).__name__}")
    return list(value)


def _check_unique(rules: tuple[SecurityRule, ...], nsg: str) -> None:
    names: dict[str, str] = {}
    slots: dict[tuple[Direction, int], str] = {}
    for r in rules:
        if r.name.lower() in names:
            raise _fail(r.name, "name", f"two rules in NSG {nsg!r} share this name")
        names[r.name.lower()] = r.name
        key = (r.direction, r.priority)
        if key in slots:
            raise _fail(
                r.name,
                "priority",
                f"{r.priority} {r.direction.value} is also used by rule {slots[key]!r} "
                f"in NSG {nsg!r}",
            )
        slots[key] = r.name
