"""Pure network planning: which NSG rules Windows Admin Center needs, and where.

:func:`plan_network` (one VM) and :func:`plan_many` (many VMs, shared NSGs
planned once) turn :class:`~wac_azure.VmFacts` into a
:class:`NetworkPlan`. No I/O: :class:`~wac_azure.NetworkRulePlanner` reads
and writes.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import html
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from wac_azure._core.access import AccessMode, PrivateAccess, PublicAccess, check_access
from wac_azure._core.errors import ConfigurationError, InvalidPlanError, WacAzureError
from wac_azure._core.facts import DEFAULT_PORT, VmFacts
from wac_azure._core.nsg import (
    ANY_PORT,
    MANAGED_DESCRIPTION,
    Access,
    Direction,
    Flow,
    NetworkSecurityGroup,
    PortRange,
    Protocol,
    SecurityRule,
    ServiceTags,
    Step,
    Verdict,
    evaluate,
    parse_network,
    walk_nsg,
)

#: Custom rule priorities Azure accepts.
PRIORITY_MIN, PRIORITY_MAX = 100, 4096

WAC_SERVICE_RULE = "PortForWACService"
AAD_SERVICE_RULE = "PortForAADService"
WAC_PORT_RULE = "PortForWAC"
WAC_TAG = "WindowsAdminCenter"
AAD_TAG = "AzureActiveDirectory"


class ChangeAction(enum.Enum):
    """What a :class:`RuleChange` does."""

    CREATE = "create"
    #: A PUT over a rule wac_azure created (its destination list grew or shrank,
    #: its port or priority moved); a rule it did not create is never updated.
    UPDATE = "update"
    DELETE = "delete"
    CREATE_NSG = "create-nsg"


@attrs.frozen
class RuleChange:
    """One write: create or delete a rule in an NSG, or create an NSG and attach it.

    ``rule`` is the rule (for ``CREATE``/``DELETE``); :attr:`body` its wire
    JSON (what the ``securityRules`` PUT sends). ``before`` names the deny rule
    the new rule must come before. For ``CREATE_NSG``, ``nic_id`` is the NIC
    the new NSG is attached to and ``location`` its region. ``previous`` is
    the rule as read before an ``UPDATE`` or ``DELETE`` (shown as
    before → after).
    """

    action: ChangeAction
    nsg_id: str
    nsg_name: str
    rule: SecurityRule | None = None
    purpose: str = ""
    before: str | None = None
    nic_id: str | None = None
    location: str | None = None
    vms: tuple[str, ...] = ()
    previous: SecurityRule | None = None

    @property
    def narrows(self) -> bool:
        """Whether the change can take reach away: a delete, or an update after which the
        rule no longer allows everything it allowed (only growing the VMs it lists does
        not). Such changes are written after every change that adds reach
        (make-before-break) and are checked by a read-back once written."""
        if self.action is ChangeAction.DELETE:
            return True
        if self.action is not ChangeAction.UPDATE or self.rule is None:
            return False
        old, new = self.previous, self.rule
        if old is None:
            return True
        same = _fixed_fields(old) == _fixed_fields(new)
        return not (
            same
            and set(old.source_prefixes) <= set(new.source_prefixes)
            and set(old.destination_prefixes) <= set(new.destination_prefixes)
        )

    def differences(self) -> list[str]:
        """What an ``UPDATE`` changes, one ``field: before → after`` each."""
        old, new = self.previous, self.rule
        if old is None or new is None:
            return []
        out = []
        for label, a, b in (
            ("sources", old.source_prefixes, new.source_prefixes),
            ("destinations", old.destination_prefixes, new.destination_prefixes),
            ("ports", old.destination_ports, new.destination_ports),
            ("priority", (old.priority,), (new.priority,)),
            ("protocol", (old.protocol.value,), (new.protocol.value,)),
            ("access", (old.access.value,), (new.access.value,)),
        ):
            if [str(x) for x in a] != [str(x) for x in b]:
                out.append(f"{label}: {_join(a)} → {_join(b)}")
        if old.description != new.description and not old.is_managed:
            out.append("ownership mark added")
        return out

    @property
    def rule_name(self) -> str | None:
        return self.rule.name if self.rule else None

    @property
    def priority(self) -> int | None:
        return self.rule.priority if self.rule else None

    @property
    def direction(self) -> Direction | None:
        return self.rule.direction if self.rule else None

    @property
    def body(self) -> dict[str, Any]:
        """Wire JSON sent to Azure (``{"properties": {...}}``)."""
        if self.action is ChangeAction.CREATE_NSG:
            return {"location": self.location, "properties": {}}
        assert self.rule is not None
        return {"properties": self.rule.to_arm()["properties"]}

    @property
    def symbol(self) -> str:
        return {ChangeAction.DELETE: "-", ChangeAction.UPDATE: "~"}.get(self.action, "+")

    def describe(self) -> str:
        """One line: ``+ PortForWAC  100 Inbound Allow Tcp 203.0.113.7 -> *:6516``."""
        if self.action is ChangeAction.CREATE_NSG:
            return (
                f"+ network security group {self.nsg_name} ({self.location}), "
                f"attached to NIC {_last(self.nic_id)}"
            )
        assert self.rule is not None
        r = self.rule
        diffs = self.differences() if self.action is ChangeAction.UPDATE else []
        if diffs:
            text = f"{self.symbol} {r.name}  " + "; ".join(diffs)
            if self.before:
                text += f"  (before {self.before})"
            return text
        src = ",".join(r.source_prefixes) or "-"
        dst = ",".join(r.destination_prefixes) or "-"
        ports = ",".join(str(p) for p in r.destination_ports)
        text = (
            f"{self.symbol} {r.name}  priority {r.priority}  {r.direction.value} "
            f"{r.access.value} {r.protocol.value} {src} -> {dst}:{ports}"
        )
        if self.before:
            text += f"  (before {self.before})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "nsgId": self.nsg_id,
            "nsgName": self.nsg_name,
            "ruleName": self.rule_name,
            "priority": self.priority,
            "direction": self.direction.value if self.direction else None,
            "body": self.body,
            "purpose": self.purpose,
            "before": self.before,
            "nicId": self.nic_id,
            "location": self.location,
            "vms": list(self.vms),
            "previous": self.previous.to_arm() if self.previous is not None else None,
        }


@attrs.frozen
class BlockingConflict:
    """Something the plan cannot fix by adding a rule; apply refuses while one exists.

    ``code``: ``"no-free-priority"`` (no free priority before the deny rule
    ``rule``), ``"nsg-required"`` (public access through a Standard public IP
    with no NSG anywhere), ``"no-public-ip"``, ``"no-nic"``, ``"nsg-unreadable"``.
    """

    code: str
    reason: str
    vm: str | None = None
    nsg_id: str | None = None
    nsg_name: str | None = None
    rule: str | None = None
    priority: int | None = None
    flow: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "reason": self.reason,
            "vm": self.vm,
            "nsgId": self.nsg_id,
            "nsgName": self.nsg_name,
            "rule": self.rule,
            "priority": self.priority,
            "flow": self.flow,
        }

    def __str__(self) -> str:
        return self.reason


@attrs.frozen
class UnownedRule:
    """A rule whose description says ``Managed by wac_azure`` but that wac_azure cannot
    prove it wrote (no valid ownership mark, and not a rule an earlier version wrote
    for the VM): it is left alone and reported."""

    nsg_id: str
    nsg_name: str
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "nsgId": self.nsg_id,
            "nsgName": self.nsg_name,
            "rule": self.rule,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        return f"rule {self.rule} in NSG {self.nsg_name} left alone: {self.reason}"


@attrs.frozen
class FlowCheck:
    """A flow Windows Admin Center needs, its verdict before and once the plan is applied.

    In a plan for many VMs, ``before`` already counts the rules planned for the
    VMs planned earlier (an NSG they share).
    """

    vm: str
    purpose: str
    flow: Flow
    before: Verdict
    after: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "purpose": self.purpose,
            "flow": self.flow.to_dict(),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }


@attrs.frozen
class NetworkPlan:
    """The NSG changes Windows Admin Center needs (``terraform plan`` style).

    ``changes`` are the writes, ``blocking`` what no write can fix,
    ``warnings`` risks worth knowing, ``checks`` each needed flow before and
    after. ``nsg_etags`` and ``nsg_fingerprints`` record the NSG versions the
    plan was made against (apply re-reads them: it re-plans when one changed,
    or raises :class:`~wac_azure.StalePlanError` with ``strict=True``).
    ``unowned`` lists the rules that say ``Managed by wac_azure`` without
    proof of it: the plan leaves them alone.

    :meth:`to_dict` / :meth:`from_dict` round-trip through JSON, so a plan can
    be saved, reviewed and applied later.
    """

    targets: tuple[str, ...]
    access: AccessMode
    port: int
    entra: bool
    create_nsg: bool = False
    changes: tuple[RuleChange, ...] = ()
    blocking: tuple[BlockingConflict, ...] = ()
    warnings: tuple[str, ...] = ()
    checks: tuple[FlowCheck, ...] = ()
    nsg_etags: Mapping[str, str | None] = attrs.field(factory=dict, eq=False, hash=False)
    nsg_fingerprints: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)
    #: ``"enable"`` (rules to add) or ``"remove"`` (wac_azure's rules to delete).
    kind: str = "enable"
    unowned: tuple[UnownedRule, ...] = ()

    @property
    def is_noop(self) -> bool:
        """Nothing to write and nothing blocking."""
        return not self.changes and not self.blocking

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocking)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "targets": list(self.targets),
            "access": self.access.to_dict(),
            "port": self.port,
            "entra": self.entra,
            "createNsg": self.create_nsg,
            "kind": self.kind,
            "isNoop": self.is_noop,
            "changes": [c.to_dict() for c in self.changes],
            "blocking": [b.to_dict() for b in self.blocking],
            "warnings": list(self.warnings),
            "checks": [c.to_dict() for c in self.checks],
            "unowned": [u.to_dict() for u in self.unowned],
            "nsgEtags": dict(self.nsg_etags),
            "nsgFingerprints": dict(self.nsg_fingerprints),
        }

    @classmethod
    def from_dict(cls, data: object) -> NetworkPlan:
        """The plan :meth:`to_dict` gave (after a trip through JSON).

        Raises :class:`~wac_azure.InvalidPlanError` naming the field that is
        missing or wrong. Keys are accepted in camelCase (as written) and in
        snake_case.
        """
        return _plan_from_dict(data)

    def summary(self) -> str:
        dels = sum(1 for c in self.changes if c.action is ChangeAction.DELETE)
        updates = sum(1 for c in self.changes if c.action is ChangeAction.UPDATE)
        adds = len(self.changes) - dels - updates
        text = f"Plan: {adds} to add, "
        if updates:
            text += f"{updates} to change, "
        text += f"{dels} to delete"
        if self.blocking:
            text += f", {len(self.blocking)} blocking"
        if self.warnings:
            text += f", {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}"
        return text + "."

    def _header(self) -> str:
        who = ", ".join(_last(t) for t in self.targets) or "(no VM)"
        if self.kind == "remove":
            return f"Network removal plan for {who}: rules managed by wac_azure"
        extra = ", Entra ID" if self.entra else ""
        return f"Network plan for {who}: {self.access}, port {self.port}{extra}"

    def __str__(self) -> str:
        lines = [self._header(), ""]
        if self.is_noop:
            lines.append(
                "No changes. No rule managed by wac_azure is left."
                if self.kind == "remove"
                else "No changes. The network already allows what Windows Admin Center needs."
            )
        by_nsg: dict[str, list[RuleChange]] = {}
        for c in self.changes:
            by_nsg.setdefault(c.nsg_id, []).append(c)
        for nsg_id, changes in by_nsg.items():
            lines.append(f"  # NSG {changes[0].nsg_name} ({nsg_id})")
            lines += [f"  {c.describe()}" for c in changes]
            lines.append("")
        for b in self.blocking:
            lines.append(f"  ! blocking: {b.reason}")
        for w in self.warnings:
            lines.append(f"  ~ warning: {w}")
        for u in self.unowned:
            lines.append(f"  ? {u}")
        if self.blocking or self.warnings or self.unowned:
            lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for c in self.changes:
            r = c.rule
            cells = (
                c.symbol,
                c.nsg_name,
                r.name if r else "(new NSG)",
                str(r.priority) if r else "",
                r.direction.value if r else "",
                r.access.value if r else "",
                r.protocol.value if r else "",
                ", ".join(r.source_prefixes) if r else "",
                ", ".join(r.destination_prefixes) if r else "",
                ", ".join(str(p) for p in r.destination_ports) if r else "",
                c.before or "",
            )
            rows.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>")
        table = ""
        if rows:
            head = "".join(
                f"<th>{h}</th>"
                for h in (
                    "",
                    "NSG",
                    "rule",
                    "priority",
                    "direction",
                    "access",
                    "protocol",
                    "source",
                    "destination",
                    "port",
                    "before",
                )
            )
            table = f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        blocking = "".join(
            f"<li><strong>blocking</strong>: {e(b.reason)}</li>" for b in self.blocking
        )
        warnings = "".join(f"<li>warning: {e(w)}</li>" for w in self.warnings)
        warnings += "".join(f"<li>left alone: {e(str(u))}</li>" for u in self.unowned)
        notes = f"<ul>{blocking}{warnings}</ul>" if blocking or warnings else ""
        checks = "".join(
            f"<tr><td>{e(_last(c.vm))}</td><td>{e(c.purpose)}</td><td>{e(str(c.flow))}</td>"
            f"<td>{e(c.before.access.value)}</td><td>{e(c.after.access.value)}</td>"
            f"<td>{e(c.before.reason)}</td></tr>"
            for c in self.checks
        )
        details = (
            "<details><summary>Flows checked</summary><table><tr><th>VM</th><th>for</th>"
            "<th>flow</th><th>now</th><th>after</th><th>why (now)</th></tr>"
            f"{checks}</table></details>"
        )
        return (
            f"<div><p><strong>{e(self.summary())}</strong> {e(self._header())}</p>"
            f"{table}{notes}{details}</div>"
        )


@attrs.frozen
class ApplyResult:
    """What :meth:`NetworkRulePlanner.apply` / ``remove`` wrote.

    ``created``, ``updated`` and ``deleted`` are the changes made (``updated``:
    rules wac_azure created whose VM list, port or priority changed);
    ``skipped`` pairs a change with the reason it was not needed;
    ``replanned`` tells whether an NSG changed between plan and apply;
    ``plan`` is the plan that was applied.
    """

    plan: NetworkPlan | None = None
    created: tuple[RuleChange, ...] = ()
    deleted: tuple[RuleChange, ...] = ()
    skipped: tuple[tuple[RuleChange, str], ...] = ()
    replanned: bool = False
    updated: tuple[RuleChange, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    @property
    def unowned(self) -> tuple[UnownedRule, ...]:
        """Rules that say ``Managed by wac_azure`` without proof: left alone."""
        return self.plan.unowned if self.plan is not None else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "replanned": self.replanned,
            "created": [c.to_dict() for c in self.created],
            "updated": [c.to_dict() for c in self.updated],
            "deleted": [c.to_dict() for c in self.deleted],
            "skipped": [{"change": c.to_dict(), "reason": r} for c, r in self.skipped],
            "unowned": [u.to_dict() for u in self.unowned],
            "plan": self.plan.to_dict() if self.plan else None,
        }

    def summary(self) -> str:
        text = f"Applied: {len(self.created)} created, "
        if self.updated:
            text += f"{len(self.updated)} updated, "
        text += f"{len(self.deleted)} deleted"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        if self.replanned:
            text += " (re-planned: an NSG changed since the plan)"
        return text + "."

    def __str__(self) -> str:
        lines = [self.summary()]
        done = (*self.created, *self.updated, *self.deleted)
        lines += [f"  {c.describe()}  [{c.nsg_name}]" for c in done]
        lines += [f"  = {c.describe()[2:]}  skipped: {r}" for c, r in self.skipped]
        lines += [f"  ? {u}" for u in self.unowned]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        items = "".join(
            f"<li>{e(c.describe())} <em>[{e(c.nsg_name)}]</em></li>"
            for c in (*self.created, *self.updated, *self.deleted)
        )
        skipped = "".join(f"<li>{e(c.describe())}: {e(r)}</li>" for c, r in self.skipped)
        return (
            f"<div><p><strong>{e(self.summary())}</strong></p>"
            f"<details><summary>Changes</summary><ul>{items}{skipped}</ul></details></div>"
        )


def _vnet(facts: VmFacts) -> tuple[str, ...]:
    """The VM's VNet prefixes that parse (an odd one must not sink the whole plan)."""
    return tuple(p for p in facts.vnet_prefixes if parse_network(str(p)) is not None)


def _last(resource_id: str | None) -> str:
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


def _join(values: Iterable[object]) -> str:
    return ",".join(str(v) for v in values) or "-"


def _fixed_fields(rule: SecurityRule) -> tuple[object, ...]:
    """What an update must keep for the rule to allow at least what it allowed."""
    return (
        rule.direction,
        rule.access,
        rule.protocol,
        rule.priority,
        rule.source_ports,
        rule.destination_ports,
        rule.source_asgs,
        rule.destination_asgs,
    )


# -- planning ---------------------------------------------------------------------------


@attrs.frozen
class _Need:
    purpose: str
    name: str
    preferred: int | None
    direction: Direction
    flows: tuple[Flow, ...]
    source_prefixes: tuple[str, ...]
    destination_prefixes: tuple[str, ...]
    port: int
    #: The VM's private IP (``"*"`` when unknown): the destination of an inbound
    #: rule, the source of an outbound one.
    scope: str = "*"


def scoped(rule: SecurityRule) -> tuple[str, ...]:
    """The side of a managed rule that names the VMs it serves.

    Inbound rules list the VMs' private IPs as destinations, outbound rules as
    sources (``("*",)`` for rules of wac_azure versions that opened the whole NSG).
    """
    return (
        rule.destination_prefixes if rule.direction is Direction.INBOUND else rule.source_prefixes
    )


# -- ownership --------------------------------------------------------------------------

#: Names the versions before ownership marks gave their rules.
_LEGACY_NAME = re.compile(
    r"^(?:portforwac(?:-\d+)*|portforwacservice(?:-\d+)*|portforaadservice(?:-\d+)*)$"
)


def legacy_rule(rule: SecurityRule) -> bool:
    """Whether ``rule`` has exactly the shape wac_azure versions before ownership marks
    wrote: the plain description ``Managed by wac_azure``, one of their names, an Allow
    for TCP from any source port to one port, no ASGs, the VMs it serves listed by
    address (or ``*``), and for the outbound rules 443 to the service tag the name says.
    """
    if rule.description != MANAGED_DESCRIPTION or not _LEGACY_NAME.match(rule.name.lower()):
        return False
    if rule.access is not Access.ALLOW or rule.protocol is not Protocol.TCP:
        return False
    if rule.source_ports != (ANY_PORT,) or rule.source_asgs or rule.destination_asgs:
        return False
    if len(rule.destination_ports) != 1:
        return False
    port = rule.destination_ports[0]
    if port.low != port.high:
        return False
    served = scoped(rule)
    if served != ("*",) and not all(_host(v) is not None for v in served):
        return False
    name = rule.name.lower()
    if rule.direction is Direction.INBOUND:
        if name.startswith(("portforwacservice", "portforaadservice")):
            return False
        return bool(rule.source_prefixes)
    tag = WAC_TAG if name.startswith("portforwacservice") else AAD_TAG
    if name.startswith("portforwac") and not name.startswith(("portforwacservice",)):
        return False
    return port.low == 443 and tuple(d.lower() for d in rule.destination_prefixes) == (tag.lower(),)


def stale_addresses(facts: VmFacts, held: Iterable[str] = ()) -> frozenset[str]:
    """The addresses wac_azure's rules were last recorded naming for the VM's NICs
    (:attr:`NicFacts.recorded_addresses`) that no NIC of the VM holds now, nor any
    address in ``held`` (other VMs planned together), nor one Network reports held by
    another NIC or could not be asked about (:func:`kept_addresses`)."""
    now = {ip for nic in facts.nics for ip in nic.private_ips} | set(held)
    now |= kept_addresses(facts)
    return frozenset(a for nic in facts.nics for a in nic.recorded_addresses if a not in now)


def kept_addresses(facts: VmFacts) -> frozenset[str]:
    """The recorded addresses no longer the VM's that stay in wac_azure's rules: another
    NIC holds them now (:attr:`NicFacts.held_elsewhere`), or that could not be checked
    (:attr:`NicFacts.unchecked_addresses`)."""
    return frozenset(
        a for nic in facts.nics for a in (*nic.held_elsewhere, *nic.unchecked_addresses)
    )


def kept_address_warnings(facts: VmFacts, held: Iterable[str] = ()) -> list[str]:
    """One warning per address :func:`kept_addresses` leaves in the rules (none for an
    address in ``held``: a VM planned together holds it and the rules serve it)."""
    skip = set(held) | {ip for nic in facts.nics for ip in nic.private_ips}
    out = []
    name = facts.target.name
    for nic in facts.nics:
        for a in nic.held_elsewhere:
            if a not in skip:
                out.append(
                    f"VM {name}: {a} is no longer its address but is held by another NIC; "
                    "left in wac_azure's rules (disable that VM to take it out)"
                )
        for a in nic.unchecked_addresses:
            if a not in skip:
                out.append(
                    f"VM {name}: {a} is no longer its address and whether another NIC holds "
                    "it could not be read (CheckIPAddressAvailability); left in wac_azure's rules"
                )
    return out


def address_record(
    facts: VmFacts, nsgs: Iterable[NetworkSecurityGroup], *, wrote: bool = True
) -> tuple[str, ...] | None:
    """What the primary NIC's address record should say once ``nsgs`` (the VM's NSGs as
    written) are in force: its addresses when a rule wac_azure owns names one of them,
    else nothing. ``None`` when there is nothing to write: the record already says so,
    or the run wrote no rule for the VM (``wrote=False``) and the NIC has no record (a
    run that finds everything in place writes nothing, not even the record)."""
    nic = facts.primary_nic
    if nic is None or (not wrote and not nic.recorded_addresses):
        return None
    ips = set(nic.private_ips)
    kept = [a for a in nic.recorded_addresses if a in kept_addresses(facts) and a not in ips]
    managed = [rule for nsg in nsgs for rule in nsg.rules if rule.is_managed]
    named = any(ips.intersection(scoped(rule)) for rule in managed)
    # A kept address (held by another NIC, or unchecked) stays on the record while a rule
    # of ours still names it: the next run asks Network again and drops it once it is free.
    still = [a for a in kept if any(a in scoped(rule) for rule in managed)]
    wanted = (*(nic.private_ips if named else ()), *still)
    return None if set(wanted) == set(nic.recorded_addresses) else wanted


def nsgs_after(facts: VmFacts, plan: NetworkPlan) -> list[NetworkSecurityGroup]:
    """The VM's NSGs as they are once ``plan``'s rule changes are written."""
    out = []
    for key, nsg in facts.nsgs.items():
        rules = {r.name.lower(): r for r in nsg.rules}
        for change in plan.changes:
            if change.nsg_id.lower() != key or change.rule is None:
                continue
            if change.action is ChangeAction.DELETE:
                rules.pop(change.rule.name.lower(), None)
            else:
                rules[change.rule.name.lower()] = change.rule
        out.append(attrs.evolve(nsg, rules=tuple(rules.values())))
    return out


def adoption_ports(facts: VmFacts, port: int | None = None) -> frozenset[int]:
    """The WAC ports of the VM: ``port`` (what is being planned) and the port of its
    deployed extension; an earlier version's inbound rule is adopted on those only."""
    ports = {port} if port is not None else set()
    ext = facts.extension
    if ext is not None and ext.port is not None:
        ports.add(ext.port)
    return frozenset(ports)


def _adopts(rule: SecurityRule, scope: str, ports: frozenset[int]) -> bool:
    if not legacy_rule(rule):
        return False
    served = scoped(rule)
    if "*" not in served and scope not in served:
        return False
    return rule.direction is Direction.OUTBOUND or rule.destination_ports[0].low in ports


def owns(rule: SecurityRule, scope: str, ports: frozenset[int] = frozenset()) -> bool:
    """Whether wac_azure may change or delete ``rule`` for the VM at ``scope`` (its
    private IP): the rule carries a valid ownership mark, or it is an earlier version's
    rule (:func:`legacy_rule`) that serves the VM on one of its WAC ``ports``."""
    if not rule.claims_managed:
        return False
    return rule.is_managed or _adopts(rule, scope, ports)


def unowned_reason(rule: SecurityRule, scope: str, ports: frozenset[int]) -> str | None:
    """Why a rule that says ``Managed by wac_azure`` is not wac_azure's to touch for the
    VM at ``scope`` (``None``: it is, or it does not claim to be). An earlier version's
    rule is only reported when it serves the VM (it may serve another VM's port)."""
    if not rule.claims_managed or rule.is_managed:
        return None
    if legacy_rule(rule):
        served = scoped(rule)
        if "*" not in served and scope not in served:
            return None
        if _adopts(rule, scope, ports):
            return None
        return (
            f"written by an earlier wac_azure version for port "
            f"{rule.destination_ports[0].low}, which is not this VM's Windows Admin Center "
            f"port ({', '.join(str(p) for p in sorted(ports)) or 'unknown'}); delete it by "
            "hand if it is no longer needed"
        )
    if rule.description == MANAGED_DESCRIPTION:
        return (
            "its description says 'Managed by wac_azure' but it carries no ownership mark "
            "and is not a rule wac_azure writes (a copied description?)"
        )
    return (
        "its description starts with 'Managed by wac_azure' but its ownership mark does not "
        "match its name and fields (edited or copied after wac_azure wrote it)"
    )


@functools.lru_cache(maxsize=65536)
def _host(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``value`` as a single IP address (no ``/``, no zone), else ``None`` (memoized:
    a shared NSG's managed rules list every VM's IP and are re-read for each VM)."""
    if "/" in value or "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def _ip_key(value: str) -> tuple[int, int, str]:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return (99, 0, value)
    return (address.version, int(address), value)


class _Narrowed:
    """A managed rule's VM-side list split for :meth:`_State._view`: the entries that are
    single IP addresses (by address) and the others (CIDRs, tags, ``*``), kept as is."""

    __slots__ = ("hosts", "rest", "rule")

    def __init__(self, rule: SecurityRule) -> None:
        self.rule = rule
        self.hosts: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, list[str]] = {}
        rest: list[str] = []
        for value in scoped(rule):
            address = _host(value)
            if address is None:
                rest.append(value)
            else:
                self.hosts.setdefault(address, []).append(value)
        self.rest = tuple(rest)

    def for_ip(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> SecurityRule | None:
        """The rule as far as a flow whose VM side is ``address`` can tell: other VMs'
        addresses never match it, so they are left out (``None``: nothing is left)."""
        own = tuple(self.hosts.get(address, ()))
        if len(own) + len(self.rest) == len(scoped(self.rule)):
            return self.rule
        values = (*own, *self.rest)
        if not values:
            return None
        return _with_scope(self.rule, values)


def _with_scope(rule: SecurityRule, values: tuple[str, ...]) -> SecurityRule:
    """``rule`` with its VM side set to ``values`` as given (no sorting)."""
    if rule.direction is Direction.INBOUND:
        return attrs.evolve(rule, destination_prefixes=values)
    return attrs.evolve(rule, source_prefixes=values)


def rescoped(rule: SecurityRule, values: Iterable[str]) -> SecurityRule:
    """``rule`` serving exactly ``values`` (sorted, deduplicated; ``*`` swallows the rest)."""
    vals = set(values)
    ordered = ("*",) if "*" in vals else tuple(sorted(vals, key=_ip_key))
    if rule.direction is Direction.INBOUND:
        return attrs.evolve(rule, destination_prefixes=ordered)
    return attrs.evolve(rule, source_prefixes=ordered)


def fingerprint(nsg: NetworkSecurityGroup) -> str:
    """A digest of an NSG's custom rules (what apply compares after re-reading; short,
    so that a saved plan carries it)."""
    text = json.dumps(sorted((r.to_arm() for r in nsg.rules), key=_by_name), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _by_name(rule_json: Mapping[str, Any]) -> str:
    return str(rule_json.get("name", "")).lower()


class _State:
    """Planning state shared by every VM of one plan (NSGs with the rules planned so far)."""

    def __init__(
        self,
        *,
        access: AccessMode,
        port: int,
        entra: bool,
        create_nsg: bool,
        service_tags: ServiceTags | Mapping[str, Iterable[str]] | None,
    ) -> None:
        self.access = access
        self.port = port
        self.entra = entra
        self.create_nsg = create_nsg
        self.tags = (
            service_tags if isinstance(service_tags, ServiceTags) else ServiceTags(service_tags)
        )
        self.nsgs: dict[str, NetworkSecurityGroup] = {}
        #: each NSG as read (before any planned change): the ``previous`` of an update
        self.read: dict[str, NetworkSecurityGroup] = {}
        self.unowned: dict[tuple[str, str], UnownedRule] = {}
        #: the ports an inbound rule of an earlier version may serve the VM being planned
        #: on to be adopted (this plan's port, the port of the VM's deployed extension)
        self.adopt_ports: frozenset[int] = frozenset({port})
        #: the addresses the VMs of this plan hold now (never stale for any of them)
        self.held: set[str] = set()
        self.etags: dict[str, str | None] = {}
        self.fingerprints: dict[str, str] = {}
        self.changes: list[RuleChange] = []
        self.blocking: list[BlockingConflict] = []
        self.warnings: list[str] = list(access.warnings)
        self.checks: list[FlowCheck] = []
        self.targets: list[str] = []
        self._narrowed: dict[tuple[str, str], _Narrowed] = {}
        self._views: dict[str, tuple[NetworkSecurityGroup, str, NetworkSecurityGroup]] = {}
        self._vnet_of: tuple[VmFacts, tuple[str, ...]] | None = None

    # -- NSGs -----------------------------------------------------------------------

    def nsg(self, facts: VmFacts, nsg_id: str | None) -> NetworkSecurityGroup | None:
        if not nsg_id:
            return None
        key = nsg_id.lower()
        if key not in self.nsgs:
            found = facts.nsg(nsg_id)
            if found is None:
                return None
            self.nsgs[key] = found
            self.read[key] = found
            self.etags[key] = found.etag
            self.fingerprints[key] = fingerprint(found)
        return self.nsgs[key]

    def add_rule(self, nsg: NetworkSecurityGroup, change: RuleChange) -> NetworkSecurityGroup:
        assert change.rule is not None
        updated = nsg.with_rules(change.rule)
        self.nsgs[nsg.id.lower()] = updated
        self.changes.append(change)
        return updated

    def put_rule(
        self,
        nsg: NetworkSecurityGroup,
        rule: SecurityRule,
        action: ChangeAction,
        *,
        purpose: str,
        vm: str,
        before: str | None = None,
    ) -> None:
        """Record a create/update/delete of ``rule``, merged with an earlier change of the
        same rule in this plan (so many VMs on one NSG give one write per rule)."""
        key = nsg.id.lower()
        current = self.nsgs.get(key, nsg)
        name = rule.name.lower()
        if action is not ChangeAction.DELETE:
            rule = rule.marked()
        read = self.read.get(key)
        previous = read.rule(rule.name) if read is not None else None
        kept = tuple(r for r in current.rules if r.name.lower() != name)
        extra = () if action is ChangeAction.DELETE else (rule,)
        self.nsgs[key] = attrs.evolve(current, rules=kept + extra)
        for i, change in enumerate(self.changes):
            if (
                change.rule is None
                or change.nsg_id.lower() != key
                or change.rule.name.lower() != name
            ):
                continue
            if action is ChangeAction.DELETE and change.action is ChangeAction.CREATE:
                del self.changes[i]  # created and deleted within one plan: nothing to write
                return
            merged = action if action is ChangeAction.DELETE else change.action
            vms = change.vms if vm in change.vms else (*change.vms, vm)
            self.changes[i] = attrs.evolve(
                change, action=merged, rule=rule, vms=vms, before=before or change.before
            )
            return
        self.changes.append(
            RuleChange(
                action,
                nsg.id,
                nsg.name,
                rule=rule,
                purpose=purpose,
                before=before,
                vms=(vm,),
                previous=previous if action is not ChangeAction.CREATE else None,
            )
        )

    # -- one VM ---------------------------------------------------------------------

    def plan_vm(self, facts: VmFacts) -> None:
        vm = facts.vm_resource_id or str(facts.target)
        self.targets.append(vm)
        nic = facts.primary_nic
        if nic is None:
            self.blocking.append(
                BlockingConflict(
                    "no-nic",
                    f"VM {facts.target.name}: no network interface could be read, so its "
                    "network rules cannot be planned",
                    vm=vm,
                )
            )
            return
        roles: list[tuple[str, str | None]] = [("nic", nic.nsg_id), ("subnet", nic.subnet_nsg_id)]
        path: dict[str, NetworkSecurityGroup | None] = {}
        for role, nsg_id in roles:
            nsg = self.nsg(facts, nsg_id)
            if nsg_id and nsg is None:
                self.blocking.append(
                    BlockingConflict(
                        "nsg-unreadable",
                        f"VM {facts.target.name}: the {role} NSG {nsg_id} could not be read"
                        + "".join(f" ({n})" for n in facts.notes if nsg_id.lower() in n.lower()),
                        vm=vm,
                        nsg_id=nsg_id,
                        nsg_name=_last(nsg_id),
                    )
                )
                return
            path[role] = nsg
        vm_ip = nic.private_ip or "VirtualNetwork"
        needs = self._needs(vm_ip, nic.private_ip or "*")
        self.adopt_ports = adoption_ports(facts, self.port)
        for nsg in path.values():
            if nsg is not None:
                self._report_unowned(nsg, nic.private_ip or "*")

        if self.access.is_public:
            if not any(n.public_ips for n in facts.nics):
                self.blocking.append(
                    BlockingConflict(
                        "no-public-ip",
                        f"VM {facts.target.name} has no public IP address; use PrivateAccess "
                        "or attach a public IP first",
                        vm=vm,
                    )
                )
                needs = [n for n in needs if n.direction is Direction.OUTBOUND]
            elif path["nic"] is None and path["subnet"] is None:
                skus = {(p.sku or "Standard").lower() for p in nic.public_ips}
                if "standard" in skus or not nic.public_ips:
                    if self.create_nsg:
                        path["nic"] = self._create_nsg(facts, vm)
                    else:
                        self.blocking.append(
                            BlockingConflict(
                                "nsg-required",
                                f"VM {facts.target.name}: a Standard public IP is closed to "
                                "inbound traffic until a network security group allows it, and "
                                "the VM has none; plan with create_nsg=True to create one and "
                                "attach it to the NIC",
                                vm=vm,
                            )
                        )
                        needs = [n for n in needs if n.direction is Direction.OUTBOUND]
                else:
                    self.warnings.append(
                        f"VM {facts.target.name}: its Basic public IP is open without an NSG; "
                        "Basic public IPs were retired on 2025-09-30, move to Standard with an NSG"
                    )

        for need in needs:
            self._plan_need(facts, vm, need, path)
        self.warnings.extend(kept_address_warnings(facts, self.held))
        old = stale_addresses(facts, self.held)
        if old:
            for nsg in path.values():
                if nsg is not None:
                    self._drop_addresses(nsg, old, vm)

    def _needs(self, vm_ip: str, scope: str) -> list[_Need]:
        out = [
            _Need(
                f"outbound HTTPS to the {WAC_TAG} service",
                WAC_SERVICE_RULE,
                100,
                Direction.OUTBOUND,
                (Flow(Direction.OUTBOUND, Protocol.TCP, vm_ip, None, WAC_TAG, 443),),
                (scope,),
                (WAC_TAG,),
                443,
                scope,
            )
        ]
        if self.entra:
            out.append(
                _Need(
                    f"outbound HTTPS to {AAD_TAG} (Entra ID sign-in)",
                    AAD_SERVICE_RULE,
                    101,
                    Direction.OUTBOUND,
                    (Flow(Direction.OUTBOUND, Protocol.TCP, vm_ip, None, AAD_TAG, 443),),
                    (scope,),
                    (AAD_TAG,),
                    443,
                    scope,
                )
            )
        sources = self.access.sources
        out.append(
            _Need(
                f"inbound TCP {self.port} from {', '.join(sources)}",
                WAC_PORT_RULE,
                None,
                Direction.INBOUND,
                tuple(
                    Flow(Direction.INBOUND, Protocol.TCP, s, None, vm_ip, self.port)
                    for s in sources
                ),
                tuple(sources),
                (scope,),
                self.port,
                scope,
            )
        )
        return out

    def _drop_addresses(self, nsg: NetworkSecurityGroup, old: frozenset[str], vm: str) -> None:
        """Take the VM's former addresses out of the rules wac_azure owns on ``nsg`` (after
        the rules for its address now are planned: make-before-break orders the writes)."""
        current = self._current(nsg)
        assert current is not None
        for rule in current.rules:
            named = [a for a in scoped(rule) if a in old]
            if not named or not any(owns(rule, a, self.adopt_ports) for a in named):
                continue
            left = [v for v in scoped(rule) if v not in old]
            purpose = f"stop serving {', '.join(named)}, an address the VM no longer has"
            if left:
                self.put_rule(
                    nsg, rescoped(rule, left), ChangeAction.UPDATE, purpose=purpose, vm=vm
                )
            else:
                self.put_rule(nsg, rule, ChangeAction.DELETE, purpose=purpose, vm=vm)

    def _report_unowned(self, nsg: NetworkSecurityGroup, scope: str) -> None:
        """Record the rules of ``nsg`` that say ``Managed by wac_azure`` without proof of it
        (and, for rules shaped like an earlier version's, only those serving this VM)."""
        for rule in nsg.rules:
            reason = unowned_reason(rule, scope, self.adopt_ports)
            if reason is not None:
                key = (nsg.id.lower(), rule.name.lower())
                self.unowned.setdefault(key, UnownedRule(nsg.id, nsg.name, rule.name, reason))

    def _create_nsg(self, facts: VmFacts, vm: str) -> NetworkSecurityGroup:
        nic = facts.primary_nic
        assert nic is not None
        parts = nic.id.split("/")
        # /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{n}
        if len(parts) >= 5 and parts[1].lower() == "subscriptions":
            prefix = "/".join(parts[:5])
        else:
            t = facts.target
            prefix = f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        name = f"{facts.target.name}-nsg"
        nsg_id = f"{prefix}/providers/Microsoft.Network/networkSecurityGroups/{name}"
        nsg = NetworkSecurityGroup(id=nsg_id, name=name, location=facts.location)
        key = nsg_id.lower()
        if key not in self.nsgs:
            self.nsgs[key] = nsg
            self.etags[key] = None
            self.changes.append(
                RuleChange(
                    ChangeAction.CREATE_NSG,
                    nsg_id,
                    name,
                    purpose="a Standard public IP needs an NSG that allows the inbound port",
                    nic_id=nic.id,
                    location=facts.location,
                    vms=(vm,),
                )
            )
        return self.nsgs[key]

    def _verdict(
        self,
        facts: VmFacts,
        flow: Flow,
        path: Mapping[str, NetworkSecurityGroup | None],
        scope: str = "*",
    ) -> Verdict:
        nic = facts.primary_nic
        return evaluate(
            flow,
            nic_nsg=self._view(self._current(path.get("nic")), scope),
            subnet_nsg=self._view(self._current(path.get("subnet")), scope),
            vnet_prefixes=self._vnet(facts),
            service_tags=self.tags,
            asgs=nic.asg_ids if nic else (),
        )

    def _vnet(self, facts: VmFacts) -> tuple[str, ...]:
        """:func:`_vnet` of the VM being planned (read once per VM, not once per flow)."""
        if self._vnet_of is None or self._vnet_of[0] is not facts:
            self._vnet_of = (facts, _vnet(facts))
        return self._vnet_of[1]

    def _current(self, nsg: NetworkSecurityGroup | None) -> NetworkSecurityGroup | None:
        return None if nsg is None else self.nsgs.get(nsg.id.lower(), nsg)

    def _view(self, nsg: NetworkSecurityGroup | None, scope: str) -> NetworkSecurityGroup | None:
        """``nsg`` as the flows of the VM at ``scope`` (its private IP) see it.

        Our rules list every VM they serve; a flow of this VM never matches another
        VM's address, so those are left out before evaluating. The verdict is the
        same, but evaluating no longer grows with the VMs behind a shared NSG
        (which made planning a fleet quadratic in them).
        """
        address = _host(scope)
        if nsg is None or address is None:
            return nsg
        key = nsg.id.lower()
        cached = self._views.get(key)
        if cached is not None and cached[0] is nsg and cached[1] == scope:
            return cached[2]
        rules: list[SecurityRule] = []
        changed = False
        for rule in nsg.rules:
            if not (rule.claims_managed and rule.access is Access.ALLOW) or (
                rule.destination_asgs if rule.direction is Direction.INBOUND else rule.source_asgs
            ):
                rules.append(rule)
                continue
            slot = (key, rule.name.lower())
            narrowed = self._narrowed.get(slot)
            if narrowed is None or narrowed.rule is not rule:
                narrowed = self._narrowed[slot] = _Narrowed(rule)
            seen = narrowed.for_ip(address)
            if seen is not rule:
                changed = True
            if seen is not None:
                rules.append(seen)
        view = attrs.evolve(nsg, rules=tuple(rules)) if changed else nsg
        self._views[key] = (nsg, scope, view)
        return view

    def _plan_need(
        self,
        facts: VmFacts,
        vm: str,
        need: _Need,
        path: dict[str, NetworkSecurityGroup | None],
    ) -> None:
        nic = facts.primary_nic
        befores = [self._verdict(facts, f, path, need.scope) for f in need.flows]
        seen: set[str] = set()
        for role in ("nic", "subnet"):
            nsg = self._current(path.get(role))
            if nsg is None or nsg.id.lower() in seen:
                continue
            seen.add(nsg.id.lower())
            limit: int | None = None
            deny: SecurityRule | None = None
            family = _family(nsg, need, self.adopt_ports)
            # Our rules of this purpose that serve this VM on another port (or from other
            # sources): the VM no longer needs them, so they shrink (or go) below, after
            # the rule that replaces them is written (make-before-break). The flows are
            # judged as if they were gone already: an old, wider rule must not count as
            # serving the new sources.
            stale = [
                r
                for r in family
                if not _fits(r, need)
                and need.scope != "*"
                and need.scope in scoped(r)
                and "*" not in scoped(r)
            ]
            judged = nsg
            if stale:
                gone = {r.name.lower() for r in stale}
                judged = attrs.evolve(
                    nsg, rules=tuple(r for r in nsg.rules if r.name.lower() not in gone)
                )
            seen_by_vm = self._view(judged, need.scope)
            assert seen_by_vm is not None
            for flow in need.flows:
                walk = walk_nsg(
                    flow,
                    seen_by_vm,
                    role=role,
                    vnet_prefixes=self._vnet(facts),
                    service_tags=self.tags,
                    asgs=nic.asg_ids if nic else (),
                )
                if walk.step.access is Access.ALLOW:
                    self._serves(nsg, walk.step.rule, vm)
                    continue
                if walk.first_deny is None:
                    self.warnings.append(
                        f"VM {facts.target.name}: {need.purpose}: NSG {nsg.name} gives no "
                        f"certain answer ({walk.step.reason})"
                    )
                    continue
                if limit is None or walk.first_deny.priority < limit:
                    limit, deny = walk.first_deny.priority, walk.first_deny
            if deny is not None and limit is not None:
                taken = self._add_allow(facts, vm, need, nsg, deny, role, family, stale)
                stale = [r for r in stale if r.name != taken]
            for old in stale:
                self._shrink(nsg, old.name, need, vm)
            self._adopt(nsg, family, need, vm)
        afters = [self._verdict(facts, f, path, need.scope) for f in need.flows]
        for flow, before, after in zip(need.flows, befores, afters, strict=True):
            self.checks.append(FlowCheck(vm, need.purpose, flow, before, after))

    def _adopt(
        self, nsg: NetworkSecurityGroup, family: Sequence[SecurityRule], need: _Need, vm: str
    ) -> None:
        """Mark the earlier version's rules that serve this need as they are (one in-place
        PUT each, fields unchanged), so that they are provably ours from now on."""
        for old in family:
            if old.is_managed or not _fits(old, need) or need.scope not in scoped(old):
                continue
            current = self._current(nsg)
            rule = current.rule(old.name) if current is not None else None
            if rule is not None and not rule.is_managed:
                purpose = "add the ownership mark to a rule an earlier wac_azure version wrote"
                self.put_rule(nsg, rule, ChangeAction.UPDATE, purpose=purpose, vm=vm)

    def _serves(self, nsg: NetworkSecurityGroup, rule_name: str | None, vm: str) -> None:
        """Record that a rule planned for another VM also serves ``vm``."""
        if rule_name is None:
            return
        for i, change in enumerate(self.changes):
            if (
                change.rule is not None
                and change.nsg_id.lower() == nsg.id.lower()
                and change.rule.name == rule_name
                and vm not in change.vms
            ):
                self.changes[i] = attrs.evolve(change, vms=(*change.vms, vm))
                return

    def _shrink(self, nsg: NetworkSecurityGroup, name: str, need: _Need, vm: str) -> None:
        """Take ``need.scope`` out of our rule ``name``; delete the rule when nobody is left."""
        current = self._current(nsg)
        rule = current.rule(name) if current is not None else None
        if rule is None or need.scope not in scoped(rule):
            return
        left = [v for v in scoped(rule) if v != need.scope]
        purpose = f"stop serving {need.scope} (now served by the rule for port {need.port})"
        if left:
            self.put_rule(nsg, rescoped(rule, left), ChangeAction.UPDATE, purpose=purpose, vm=vm)
        else:
            self.put_rule(nsg, rule, ChangeAction.DELETE, purpose=purpose, vm=vm)

    def _add_allow(
        self,
        facts: VmFacts,
        vm: str,
        need: _Need,
        nsg: NetworkSecurityGroup,
        deny: SecurityRule,
        role: str,
        family: Sequence[SecurityRule] = (),
        stale: Sequence[SecurityRule] = (),
    ) -> str | None:
        """Allow ``need`` before ``deny``: grow our rule of this purpose if the NSG has one,
        take over our rule that served only this VM on another port, else add a rule.
        Returns the name of a stale rule it took over."""
        fitting = sorted((r for r in family if _fits(r, need)), key=lambda r: r.priority)
        base: SecurityRule | None = None
        taken: str | None = None
        if fitting:
            base = fitting[0]
        else:
            base = next((r for r in stale if set(scoped(r)) == {need.scope}), None)
            taken = base.name if base is not None else None
        own = base.priority if base is not None else None
        used = {r.priority for r in nsg.rules if r.direction is need.direction} - {own}
        highest = min(deny.priority - 1, PRIORITY_MAX)
        priority: int | None = None
        if own is not None and own <= highest:
            priority = own
        elif (
            need.preferred is not None and need.preferred <= highest and need.preferred not in used
        ):
            priority = need.preferred
        else:
            priority = next((p for p in range(PRIORITY_MIN, highest + 1) if p not in used), None)
        flow_text = "; ".join(str(f) for f in need.flows)
        if priority is None:
            self.blocking.append(
                BlockingConflict(
                    "no-free-priority",
                    f"VM {facts.target.name}: {need.purpose}: {role} NSG {nsg.name} denies it "
                    f"with rule {deny.name!r} (priority {deny.priority}) and every priority "
                    f"from {PRIORITY_MIN} to {deny.priority - 1} is taken, so no allow rule "
                    f"can go before it; free a priority below {deny.priority} or change "
                    f"{deny.name!r}",
                    vm=vm,
                    nsg_id=nsg.id,
                    nsg_name=nsg.name,
                    rule=deny.name,
                    priority=deny.priority,
                    flow=flow_text,
                )
            )
            return None
        if base is not None:
            values = {need.scope} if taken else {*scoped(base), need.scope}
            rule = rescoped(_rule_for(need, base.name, priority), values)
            if rule.marked() != base:
                self.put_rule(
                    nsg,
                    rule,
                    ChangeAction.UPDATE,
                    purpose=need.purpose,
                    vm=vm,
                    before=deny.name,
                )
            return taken
        names = {r.name.lower() for r in nsg.rules}
        # Inbound: a second rule on one NSG is for another port (two VMs, two ports):
        # name it after the port (PortForWAC-7000).
        stem = f"{need.name}-{need.port}" if need.direction is Direction.INBOUND else need.name
        name = need.name
        n = 2
        if name.lower() in names and stem != need.name:
            name = stem
        while name.lower() in names:
            name = f"{stem}-{n}"
            n += 1
        self.put_rule(
            nsg,
            _rule_for(need, name, priority),
            ChangeAction.CREATE,
            purpose=need.purpose,
            vm=vm,
            before=deny.name,
        )
        return None

    def result(self) -> NetworkPlan:
        return NetworkPlan(
            targets=tuple(self.targets),
            access=self.access,
            port=self.port,
            entra=self.entra,
            create_nsg=self.create_nsg,
            changes=make_before_break(self.changes),
            blocking=tuple(self.blocking),
            warnings=tuple(dict.fromkeys(self.warnings)),
            checks=tuple(self.checks),
            nsg_etags=dict(self.etags),
            nsg_fingerprints=dict(self.fingerprints),
            unowned=tuple(self.unowned.values()),
        )


def unmet_intent(fresh: NetworkPlan) -> tuple[str, ...]:
    """What a plan made again on NSGs read right after applying still finds to do: each
    change it would write, each blocking conflict, each needed flow it leaves denied
    (empty: the NSGs show what was intended). The read-back check of make-before-break."""
    problems = [f"still to write: {c.describe()} [{c.nsg_name}]" for c in fresh.changes]
    problems += [f"blocking: {b.reason}" for b in fresh.blocking]
    problems += [
        f"{_last(c.vm)}: {c.purpose}: {c.flow} is denied ({c.after.reason})"
        for c in fresh.checks
        if c.after.access is Access.DENY
    ]
    return tuple(problems)


def make_before_break(changes: Iterable[RuleChange]) -> tuple[RuleChange, ...]:
    """``changes`` in write order: new NSGs, then every change that adds reach (creates,
    updates that only grow), then those that can take reach away (:attr:`RuleChange.narrows`),
    deletes last; the plan's order otherwise. An in-place update of one rule is a single
    atomic PUT; a move to another rule creates the new one before the old one shrinks."""

    def phase(change: RuleChange) -> int:
        if change.action is ChangeAction.CREATE_NSG:
            return 0
        if change.action is ChangeAction.DELETE:
            return 3
        return 2 if change.narrows else 1

    return tuple(sorted(changes, key=phase))


def _family(
    nsg: NetworkSecurityGroup, need: _Need, adopt_ports: frozenset[int] = frozenset()
) -> list[SecurityRule]:
    """wac_azure's rules of ``need``'s purpose on ``nsg``: by name, and owned (a valid
    ownership mark, or an earlier version's rule adopted for this VM)."""
    base = need.name.lower()
    return [
        r
        for r in nsg.rules
        if r.direction is need.direction
        and r.access is Access.ALLOW
        and (r.name.lower() == base or r.name.lower().startswith(base + "-"))
        and owns(r, need.scope, adopt_ports)
    ]


def _fits(rule: SecurityRule, need: _Need) -> bool:
    """Whether our ``rule`` is ``need``'s rule but for the VMs it serves."""
    fixed = (
        rule.source_prefixes if need.direction is Direction.INBOUND else rule.destination_prefixes
    )
    wanted = (
        need.source_prefixes if need.direction is Direction.INBOUND else need.destination_prefixes
    )
    return (
        rule.protocol is Protocol.TCP
        and rule.destination_ports == (PortRange(need.port, need.port),)
        and not rule.source_asgs
        and not rule.destination_asgs
        and set(fixed) == set(wanted)
    )


def _rule_for(need: _Need, name: str, priority: int) -> SecurityRule:
    return SecurityRule(
        name=name,
        priority=priority,
        direction=need.direction,
        access=Access.ALLOW,
        protocol=Protocol.TCP,
        source_prefixes=need.source_prefixes,
        source_ports=(ANY_PORT,),
        destination_prefixes=need.destination_prefixes,
        destination_ports=(PortRange(need.port, need.port),),
        description=MANAGED_DESCRIPTION,
    )


def _check_options(access: object, port: object) -> None:
    check_access(access, error=ConfigurationError)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigurationError(f"port must be an integer 1-65535, got {port!r}")


def plan_many(
    facts: Sequence[VmFacts],
    *,
    access: AccessMode | None = None,
    port: int = DEFAULT_PORT,
    entra: bool = True,
    create_nsg: bool = False,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
) -> NetworkPlan:
    """One plan for many VMs: an NSG they share gets each needed rule once."""
    access = PrivateAccess() if access is None else access
    _check_options(access, port)
    state = _State(
        access=access, port=port, entra=entra, create_nsg=create_nsg, service_tags=service_tags
    )
    state.held = {ip for f in facts for nic in f.nics for ip in nic.private_ips}
    for f in facts:
        state.plan_vm(f)
    return state.result()


def plan_network(
    facts: VmFacts,
    *,
    access: AccessMode | None = None,
    port: int = DEFAULT_PORT,
    entra: bool = True,
    create_nsg: bool = False,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
) -> NetworkPlan:
    """The NSG rules one VM needs for Windows Admin Center (pure; see :func:`plan_many`).

    Needed flows: outbound TCP 443 to ``WindowsAdminCenter`` (rule
    ``PortForWACService``), with ``entra`` to ``AzureActiveDirectory``
    (``PortForAADService``), and inbound TCP ``port`` from the access mode's
    sources (``PortForWAC``). Every NSG on a flow's path that would not allow
    it gets one allow rule at a free priority before the first rule that
    would deny it; where no priority is free the plan has a blocking conflict.
    """
    return plan_many(
        [facts],
        access=access,
        port=port,
        entra=entra,
        create_nsg=create_nsg,
        service_tags=service_tags,
    )


def removal_plan(facts: Sequence[VmFacts], *, ports: Iterable[int] = ()) -> NetworkPlan:
    """What removing wac_azure's rules for these VMs writes on their NIC and subnet NSGs.

    Only rules wac_azure owns are touched (:func:`owns`): those carrying a valid
    ownership mark, and rules of earlier versions (the plain description, their
    exact shape) serving the VM on one of its WAC ports (the default 6516, the
    port of its deployed extension, ``ports``). A rule that says ``Managed by
    wac_azure`` without that proof is left alone and listed in
    :attr:`NetworkPlan.unowned`. Our rules list the VMs they serve by private
    IP (destination inbound, source outbound): the VMs' IPs are taken out of
    them (one update per rule, whatever the number of VMs) and a rule is
    deleted only when no IP is left, so other VMs behind a shared NSG keep
    their rules. An earlier version's rule open to ``*`` cannot say whom it
    serves and is deleted.
    """
    extra = frozenset(ports) | {DEFAULT_PORT}
    changes: list[RuleChange] = []
    etags: dict[str, str | None] = {}
    prints: dict[str, str] = {}
    targets: list[str] = []
    unowned: dict[tuple[str, str], UnownedRule] = {}
    #: per NSG: the NSG, the removed VMs' addresses, the VMs, each VM's (address, ports)
    per_nsg: dict[
        str, tuple[NetworkSecurityGroup, set[str], list[str], list[tuple[str, frozenset[int]]]]
    ] = {}
    warnings: list[str] = []
    for f in facts:
        vm = f.vm_resource_id or str(f.target)
        targets.append(vm)
        warnings.extend(kept_address_warnings(f))
        ips = {ip for nic in f.nics for ip in nic.private_ips} | stale_addresses(f)
        nic = f.primary_nic
        scope = (nic.private_ip if nic is not None else None) or "*"
        vm_ports = adoption_ports(f) | extra
        for key in sorted(f.nsgs):
            nsg = f.nsgs[key]
            etags[key] = nsg.etag
            prints[key] = fingerprint(nsg)
            _, gone, vms, who = per_nsg.setdefault(key, (nsg, set(), [], []))
            gone |= ips
            vms.append(vm)
            who.append((scope, vm_ports))
    for key in sorted(per_nsg):
        nsg, gone, vms, who = per_nsg[key]
        for rule in nsg.rules:
            if not rule.claims_managed:
                continue
            if not any(owns(rule, scope, vm_ports) for scope, vm_ports in who):
                for scope, vm_ports in who:
                    reason = unowned_reason(rule, scope, vm_ports)
                    if reason is not None:
                        unowned.setdefault(
                            (key, rule.name.lower()),
                            UnownedRule(nsg.id, nsg.name, rule.name, reason),
                        )
                continue
            serves = scoped(rule)
            left = [v for v in serves if v not in gone]
            if left and "*" not in serves and len(left) < len(serves):
                action, new = ChangeAction.UPDATE, rescoped(rule, left).marked()
                purpose = "stop serving the removed VMs in a rule wac_azure created"
            elif not left or "*" in serves:
                action, new = ChangeAction.DELETE, rule
                purpose = "remove a rule wac_azure created"
            else:
                continue  # serves other VMs only
            changes.append(
                RuleChange(
                    action,
                    nsg.id,
                    nsg.name,
                    rule=new,
                    purpose=purpose,
                    vms=tuple(vms),
                    previous=rule,
                )
            )
    return NetworkPlan(
        targets=tuple(targets),
        access=PrivateAccess(),
        port=DEFAULT_PORT,
        entra=False,
        changes=make_before_break(changes),
        nsg_etags=etags,
        nsg_fingerprints=prints,
        kind="remove",
        unowned=tuple(unowned.values()),
        warnings=tuple(warnings),
    )


# -- saved plans ------------------------------------------------------------------------


_MISSING = object()


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


class _Doc:
    """One JSON object of a saved plan, read field by field; every error names the field's
    path (``changes[2].body``) in an :class:`~wac_azure.InvalidPlanError`."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise _bad(path, f"expected a JSON object, got {type(data).__name__}")
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: object = _MISSING) -> object:
        for k in (key, _snake(key)):
            if k in self.data:
                return self.data[k]
        if default is _MISSING:
            raise _bad(self.at(key), "missing")
        return default

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.raw(key, None if optional else _MISSING)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise _bad(self.at(key), f"expected a string, got {value!r}")
        return value

    def string(self, key: str) -> str:
        value = self.text(key)
        assert value is not None
        return value

    def integer(self, key: str, *, optional: bool = False) -> int | None:
        value = self.raw(key, None if optional else _MISSING)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(self.at(key), f"expected an integer, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise _bad(self.at(key), f"expected true or false, got {value!r}")
        return value

    def items(self, key: str) -> list[tuple[object, str]]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise _bad(self.at(key), f"expected a list, got {type(value).__name__}")
        return [(v, f"{self.at(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> tuple[str, ...]:
        out = []
        for value, path in self.items(key):
            if not isinstance(value, str):
                raise _bad(path, f"expected a string, got {value!r}")
            out.append(value)
        return tuple(out)

    def child(self, key: str) -> _Doc:
        return _Doc(self.raw(key), self.at(key))

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.raw(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _bad(self.at(key), "expected a JSON object")
        return dict(value)


def _bad(path: str, message: str) -> Exception:
    return InvalidPlanError(
        f"saved network plan: {path or 'the plan'}: {message}; save it again with "
        "NetworkPlan.to_dict() (or plan again)",
        field=path,
    )


def _enum(doc: _Doc, key: str, kind: type[enum.Enum]) -> Any:
    value = doc.string(key)
    for member in kind:
        if str(member.value).lower() == value.lower():
            return member
    raise _bad(doc.at(key), f"{value!r} is not one of {[m.value for m in kind]}")


def _guard(path: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(...)``; a library error becomes an InvalidPlanError naming ``path``."""
    try:
        return build(*args, **kwargs)
    except InvalidPlanError:
        raise
    except (WacAzureError, ValueError, TypeError) as exc:
        raise _bad(path, str(exc)) from exc


def _access_from(doc: _Doc) -> AccessMode:
    mode = doc.string("mode").lower()
    sources = doc.strings("sources")
    path = doc.path
    # a risk the caller acknowledged when planning stays acknowledged (when the mode
    # takes one and the saved form carries it)
    ack = doc.raw("acknowledgeRisk", None)
    if mode == "private":
        extra = _acknowledged(PrivateAccess, ack)
        return _guard(path, PrivateAccess, sources=sources, **extra)  # type: ignore[no-any-return]
    if mode == "public":
        if doc.flag("openToEveryone", False):
            return _guard(path, PublicAccess.anywhere, acknowledge_risk=True)  # type: ignore[no-any-return]
        extra = _acknowledged(PublicAccess, ack)
        return _guard(path, PublicAccess, sources, **extra)  # type: ignore[no-any-return]
    raise _bad(doc.at("mode"), f"{mode!r} is not 'private' or 'public'")


def _acknowledged(mode: type, ack: object) -> dict[str, bool]:
    if not isinstance(ack, bool):
        return {}
    fields = {f.name for f in attrs.fields(mode)} if attrs.has(mode) else set()
    return {"acknowledge_risk": ack} if "acknowledge_risk" in fields else {}


def _rule_from(doc: _Doc, name_key: str, body_key: str) -> SecurityRule:
    name = doc.string(name_key)
    body = doc.child(body_key)
    props = body.raw("properties")
    return _guard(body.at("properties"), SecurityRule.from_arm, {"name": name, "properties": props})  # type: ignore[no-any-return]


def _change_from(doc: _Doc) -> RuleChange:
    action: ChangeAction = _enum(doc, "action", ChangeAction)
    rule = None
    if action is not ChangeAction.CREATE_NSG:
        rule = _rule_from(doc, "ruleName", "body")
    previous = None
    if doc.raw("previous", None) is not None:
        prev = doc.child("previous")
        previous = _previous_from(prev)
    location = doc.text("location", optional=True)
    if action is ChangeAction.CREATE_NSG and location is None:
        location = doc.child("body").text("location", optional=True)
    return RuleChange(
        action,
        doc.string("nsgId"),
        doc.string("nsgName"),
        rule=rule,
        purpose=doc.text("purpose", optional=True) or "",
        before=doc.text("before", optional=True),
        nic_id=doc.text("nicId", optional=True),
        location=location,
        vms=doc.strings("vms"),
        previous=previous,
    )


def _previous_from(doc: _Doc) -> SecurityRule:
    return _guard(doc.path, SecurityRule.from_arm, doc.data)  # type: ignore[no-any-return]


def _blocking_from(doc: _Doc) -> BlockingConflict:
    return BlockingConflict(
        doc.string("code"),
        doc.string("reason"),
        vm=doc.text("vm", optional=True),
        nsg_id=doc.text("nsgId", optional=True),
        nsg_name=doc.text("nsgName", optional=True),
        rule=doc.text("rule", optional=True),
        priority=doc.integer("priority", optional=True),
        flow=doc.text("flow", optional=True),
    )


def _flow_from(doc: _Doc) -> Flow:
    return _guard(  # type: ignore[no-any-return]
        doc.path,
        Flow,
        doc.string("direction"),
        doc.string("protocol"),
        doc.string("source"),
        doc.integer("sourcePort", optional=True),
        doc.string("destination"),
        doc.integer("destinationPort", optional=True),
    )


def _verdict_from(doc: _Doc) -> Verdict:
    steps = []
    for value, path in doc.items("steps"):
        s = _Doc(value, path)
        steps.append(
            Step(
                s.string("role"),
                s.string("nsg"),
                s.string("nsgName"),
                _enum(s, "access", Access),
                s.text("rule", optional=True),
                s.integer("priority", optional=True),
                s.string("reason"),
            )
        )
    return Verdict(
        _enum(doc, "access", Access),
        doc.text("rule", optional=True),
        doc.text("nsg", optional=True),
        doc.string("reason"),
        tuple(steps),
    )


def _check_from(doc: _Doc) -> FlowCheck:
    return FlowCheck(
        doc.string("vm"),
        doc.string("purpose"),
        _flow_from(doc.child("flow")),
        _verdict_from(doc.child("before")),
        _verdict_from(doc.child("after")),
    )


def _unowned_from(doc: _Doc) -> UnownedRule:
    return UnownedRule(
        doc.string("nsgId"), doc.string("nsgName"), doc.string("rule"), doc.string("reason")
    )


def _plan_from_dict(data: object) -> NetworkPlan:
    doc = _Doc(data, "")
    kind = doc.text("kind", optional=True) or "enable"
    if kind not in ("enable", "remove"):
        raise _bad("kind", f"{kind!r} is not 'enable' or 'remove'")
    port = doc.integer("port")
    assert port is not None
    if not 1 <= port <= 65535:
        raise _bad("port", f"{port} is not a port 1-65535")
    etags = doc.mapping("nsgEtags")
    if not all(v is None or isinstance(v, str) for v in etags.values()):
        raise _bad("nsgEtags", "expected strings (or null) as values")
    prints = doc.mapping("nsgFingerprints")
    if not all(isinstance(v, str) for v in prints.values()):
        raise _bad("nsgFingerprints", "expected strings as values")
    return NetworkPlan(
        targets=doc.strings("targets"),
        access=_access_from(doc.child("access")),
        port=port,
        entra=doc.flag("entra", True),
        create_nsg=doc.flag("createNsg", False),
        changes=tuple(_change_from(_Doc(v, p)) for v, p in doc.items("changes")),
        blocking=tuple(_blocking_from(_Doc(v, p)) for v, p in doc.items("blocking")),
        warnings=doc.strings("warnings"),
        checks=tuple(_check_from(_Doc(v, p)) for v, p in doc.items("checks")),
        nsg_etags={k.lower(): v for k, v in etags.items()},
        nsg_fingerprints={k.lower(): v for k, v in prints.items()},
        kind=kind,
        unowned=tuple(_unowned_from(_Doc(v, p)) for v, p in doc.items("unowned")),
    )
