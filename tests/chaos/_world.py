"""A seeded fleet with shared and private NSGs, and an audit that reads it back through the SDK.

The audit reads ARM state with the plain aio SDK clients of a session (never the
emulator's internals) and checks the invariants a fleet run must keep, whatever
faults, retries or cancellations happened on the way:

* every pre-existing security rule is JSON-equal to its snapshot (nothing lost or edited);
* no two rules of one NSG allow/deny the same traffic (duplicates);
* no two rules of one NSG share a priority and a direction;
* no rule opens the Windows Admin Center port to everyone (``*``, ``Internet``, ``Any``,
  ``0.0.0.0/0``, ``::/0``) unless the run was asked ``PublicAccess.anywhere()``;
* every rule ``Managed by wac_azure`` is whole (the fields a planned rule has);
* exactly one ``AdminCenter`` extension, ``Succeeded``, on each enabled VM, and the VM's
  NSGs let the managed flows through (inbound from the access sources, outbound 443 to
  ``WindowsAdminCenter``).
"""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from azure.core.pipeline.policies import SansIOHTTPPolicy

from wac_azure import AzureSession, PrivateAccess, VmTarget, WacAzureError
from wac_azure._core.nsg import Access, Flow, NetworkSecurityGroup, evaluate
from wac_azure.testing import ArmEmulator

#: An on-premises range behind a VPN: default rules deny it, so every NSG needs a rule.
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
ONPREM_HOST = "10.10.7.7"
PORT = 6516
MANAGED = "Managed by wac_azure"
EVERYONE = {"*", "any", "internet", "0.0.0.0/0", "::/0"}
#: The VMs meant to fail, and why (not transient: a re-run fails them again).
DEALLOCATED = "deallocated"
BLOCKED = "guest-outbound-blocked"
TRANSIENT_WORDS = (
    "toomanyrequests",
    "throttl",
    "internalservererror",
    "serviceunavailable",
    "retryableerror",
    "another operation",
    "preempted",
    "internalexecutionerror",
    "connection reset",
    "injected",
)


class CountingPolicy(SansIOHTTPPolicy[Any, Any]):
    """Counts the requests a pipeline sends (per call or per retry, by where it is installed)."""

    def __init__(self) -> None:
        self.count = 0

    def on_request(self, request: Any) -> None:
        self.count += 1


@attrs.define
class Counters:
    calls: CountingPolicy = attrs.field(factory=CountingPolicy)
    attempts: CountingPolicy = attrs.field(factory=CountingPolicy)

    def client_kwargs(self) -> dict[str, Any]:
        return {"per_call_policies": [self.calls], "per_retry_policies": [self.attempts]}

    @property
    def retries(self) -> int:
        """Requests azure-core sent again (429/5xx/connection errors)."""
        return self.attempts.count - self.calls.count


@attrs.define
class World:
    emu: ArmEmulator
    targets: list[VmTarget]
    resource_groups: list[str]
    #: VM name -> why it must not end enabled
    doomed: dict[str, str]
    #: lower rule id -> wire JSON read through the SDK before the run
    preexisting: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: lower rule id -> emu.resource() JSON before the run
    preexisting_emu: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    @property
    def subscription(self) -> str:
        return self.targets[0].subscription_id


def _rule(name: str, priority: int, direction: str, access: str, **props: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "priority": priority,
        "direction": direction,
        "access": access,
    }
    body.update(props)
    return {"name": name, "properties": body}


def build_world(emu: ArmEmulator, n: int, *, seed: int, groups: int = 2) -> World:
    """``n`` VMs over ``groups`` resource groups; half behind subnet NSGs shared by many.

    Mix per VM: subnet NSG only (shared, 4 subnets per group), NIC NSG only (private),
    both. Every NSG gets pre-existing rules (singular and plural fields, a deny-all
    inbound at 4000, on some a deny-Internet outbound, one at a random priority) so the
    planner must pick free priorities before the denies. About 5 % of the VMs are doomed:
    deallocated (skipped by the requirements) or with the guest's outbound blocked (the
    install fails), both non-transient.
    """
    rng = random.Random(seed)
    rgs = [f"rg-chaos-{g}" for g in range(groups)]
    targets: list[VmTarget] = []
    doomed: dict[str, str] = {}
    for i in range(n):
        name = f"vm{i:04d}"
        rg = rgs[i % groups]
        kind = rng.choices(["subnet", "nic", "both"], weights=[5, 3, 2])[0]
        power = "running"
        if i % 20 == 7:
            power = "deallocated"
            doomed[name] = DEALLOCATED
        t = emu.add_windows_vm(
            name,
            nsg=kind,
            resource_group=rg,
            subnet=f"s{rng.randrange(4)}",
            os=rng.choice(["2016", "2019", "2022", "2025"]),
            power_state=power,
        )
        if i % 20 == 13:
            emu.guest(t).outbound_blocked = True
            doomed[name] = BLOCKED
        targets.append(t)
    world = World(emu, targets, rgs, doomed)
    for nsg_id in nsg_ids(emu, rgs, targets[0].subscription_id):
        for rule in preexisting_rules(rng):
            emu.add_rule(nsg_id, rule)
    return world


def preexisting_rules(rng: random.Random) -> list[dict[str, Any]]:
    rules = [
        _rule(
            "AllowRdpFromJumpbox",
            300,
            "Inbound",
            "Allow",
            sourceAddressPrefix="203.0.113.10",
            destinationAddressPrefix="*",
            destinationPortRange="3389",
        ),
        _rule(
            "AllowWinRmFromMonitoring",
            310,
            "Inbound",
            "Allow",
            sourceAddressPrefixes=["198.51.100.0/28", "198.51.100.32/28"],
            destinationAddressPrefix="VirtualNetwork",
            destinationPortRanges=["5985", "5986"],
            description="monitoring (pre-existing)",
        ),
        _rule(
            "DenyAllInbound",
            4000,
            "Inbound",
            "Deny",
            protocol="*",
            sourceAddressPrefix="*",
            destinationAddressPrefix="*",
            destinationPortRange="*",
        ),
        _rule(
            "AllowStorageOut",
            200,
            "Outbound",
            "Allow",
            sourceAddressPrefix="VirtualNetwork",
            destinationAddressPrefix="Storage",
            destinationPortRange="443",
        ),
        _rule(
            "AllowDnsOut",
            rng.choice([p for p in range(100, 3900) if p != 200]),  # ARM refuses a clash
            "Outbound",
            "Allow",
            protocol="Udp",
            sourceAddressPrefix="*",
            destinationAddressPrefix="168.63.129.16",
            destinationPortRange="53",
        ),
    ]
    if rng.random() < 0.4:
        rules.append(
            _rule(
                "DenyInternetOut",
                4000,
                "Outbound",
                "Deny",
                protocol="*",
                sourceAddressPrefix="*",
                destinationAddressPrefix="Internet",
                destinationPortRange="*",
            )
        )
    return rules


def nsg_ids(emu: ArmEmulator, rgs: Iterable[str], sub: str) -> list[str]:
    out = []
    for doc in emu.store:
        rid = str(doc.get("id") or "")
        low = rid.lower()
        is_nsg = "/providers/microsoft.network/networksecuritygroups/" in low
        if (
            is_nsg
            and low.count("/") == 8
            and any(f"/resourcegroups/{rg.lower()}/" in low for rg in rgs)
        ):
            out.append(rid)
    assert out, "the world has no NSG"
    return sorted(out)


# ----------------------------------------------------------------------------- reading


@attrs.define
class State:
    """ARM state as the SDK reads it (wire JSON)."""

    nsgs: dict[str, dict[str, Any]]  # lower id -> NSG JSON
    nics: dict[str, dict[str, Any]]
    vnets: dict[str, dict[str, Any]]
    vms: dict[str, dict[str, Any]]  # lower VM name -> VM JSON
    extensions: dict[str, list[dict[str, Any]]]  # lower VM name -> extensions

    def rules(self) -> dict[str, dict[str, Any]]:
        out = {}
        for nsg in self.nsgs.values():
            for r in (nsg.get("properties") or {}).get("securityRules") or []:
                out[str(r["id"]).lower()] = r
        return out


def _wire(model: Any) -> dict[str, Any]:
    doc = model.as_dict() if hasattr(model, "as_dict") else dict(model)
    return json.loads(json.dumps(doc))  # type: ignore[no-any-return]


async def read_state(session: AzureSession, world: World, *, extensions: bool = True) -> State:
    sub = world.subscription
    network = session.network(sub)
    compute = session.compute(sub)
    state = State({}, {}, {}, {}, {})
    for rg in world.resource_groups:
        async for g in network.network_security_groups.list(rg):
            doc = _wire(g)
            state.nsgs[doc["id"].lower()] = doc
        async for nic in network.network_interfaces.list(rg):
            doc = _wire(nic)
            state.nics[doc["id"].lower()] = doc
        async for vnet in network.virtual_networks.list(rg):
            doc = _wire(vnet)
            state.vnets[doc["id"].lower()] = doc
        async for vm in compute.virtual_machines.list(rg):
            doc = _wire(vm)
            state.vms[doc["name"].lower()] = doc
            if extensions:
                listed = await compute.virtual_machine_extensions.list(rg, doc["name"])
                state.extensions[doc["name"].lower()] = [_wire(e) for e in listed.value or []]
    return state


async def snapshot(session: AzureSession, world: World) -> None:
    """Record every pre-existing rule, through the SDK and through ``emu.resource``."""
    state = await read_state(session, world, extensions=False)
    world.preexisting = state.rules()
    world.preexisting_emu = {rid: world.emu.resource(rid) for rid in world.preexisting}
    assert len(world.preexisting) >= 5 * len(state.nsgs)


# ----------------------------------------------------------------------------- invariants


def _many(props: Mapping[str, Any], singular: str) -> frozenset[str]:
    values: list[str] = []
    one = props.get(singular)
    if one not in (None, ""):
        values.append(str(one))
    values.extend(str(v) for v in props.get(singular + "es", props.get(singular + "s")) or [])
    return frozenset(v.strip().lower() for v in values)


def _asgs(props: Mapping[str, Any], field: str) -> frozenset[str]:
    return frozenset(str((a or {}).get("id", "")).lower() for a in props.get(field) or [])


def traffic_key(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a rule matches and does (names, priorities and descriptions aside)."""
    p = rule.get("properties") or {}
    return (
        str(p.get("direction", "")).lower(),
        str(p.get("access", "")).lower(),
        str(p.get("protocol", "")).lower(),
        _many(p, "sourceAddressPrefix"),
        _many(p, "destinationAddressPrefix"),
        _many(p, "sourcePortRange"),
        _many(p, "destinationPortRange"),
        _asgs(p, "sourceApplicationSecurityGroups"),
        _asgs(p, "destinationApplicationSecurityGroups"),
    )


def _covers_port(ports: frozenset[str], port: int) -> bool:
    for text in ports:
        if text == "*":
            return True
        lo, _, hi = text.partition("-")
        try:
            if int(lo) <= port <= int(hi or lo):
                return True
        except ValueError:
            continue
    return False


def _is_everyone(prefixes: frozenset[str]) -> bool:
    if prefixes & EVERYONE:
        return True
    nets = []
    for text in prefixes:
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    if any(n.prefixlen == 0 for n in nets):
        return True
    for version, total in ((4, 2**32), (6, 2**128)):
        family = [n for n in nets if n.version == version]
        if family and sum(n.num_addresses for n in ipaddress.collapse_addresses(family)) >= total:  # type: ignore[type-var,misc]
            return True
    return False


def wide_open_rules(state: State, port: int = PORT) -> list[str]:
    """Rules that allow ``port`` inbound from everyone."""
    out = []
    for rid, rule in state.rules().items():
        p = rule.get("properties") or {}
        if str(p.get("direction", "")).lower() != "inbound":
            continue
        if str(p.get("access", "")).lower() != "allow":
            continue
        if not _covers_port(_many(p, "destinationPortRange"), port):
            continue
        if _is_everyone(_many(p, "sourceAddressPrefix")):
            out.append(rid)
    return out


@attrs.define
class AuditResult:
    rules_lost: list[str] = attrs.field(factory=list)  # pre-existing rules gone or changed
    duplicates: list[str] = attrs.field(factory=list)
    priority_clashes: list[str] = attrs.field(factory=list)
    wide_open: list[str] = attrs.field(factory=list)
    broken_managed: list[str] = attrs.field(factory=list)
    extension_problems: list[str] = attrs.field(factory=list)
    unreachable: list[str] = attrs.field(factory=list)
    managed_rules: int = 0

    def problems(self) -> dict[str, list[str]]:
        return {
            k: v
            for k, v in attrs.asdict(self).items()
            if isinstance(v, list) and v  # every list is a violation list
        }


_MANAGED_FIELDS = ("protocol", "access", "direction", "priority", "sourcePortRange")


def audit(
    world: World,
    state: State,
    *,
    enabled: Sequence[str],
    disabled: Sequence[str] = (),
    anywhere: bool = False,
    access_sources: Sequence[str] = ONPREM.sources,
) -> AuditResult:
    """Check the invariants (see the module docstring) on ``state``.

    ``enabled`` are VM names that must have the extension and open flows,
    ``disabled`` VM names that must have no AdminCenter extension left.
    """
    res = AuditResult()
    rules = state.rules()
    for rid, before in world.preexisting.items():
        after = rules.get(rid)
        if after != before:
            res.rules_lost.append(rid)
        elif world.emu.resource(rid) != world.preexisting_emu[rid]:
            res.rules_lost.append(rid + " (emulator copy changed)")
    for nsg_id, nsg in state.nsgs.items():
        seen: dict[tuple[Any, ...], str] = {}
        slots: dict[tuple[str, int], str] = {}
        for r in (nsg.get("properties") or {}).get("securityRules") or []:
            p = r.get("properties") or {}
            key = traffic_key(r)
            if key in seen:
                res.duplicates.append(f"{r['name']} = {seen[key]} in {nsg_id}")
            seen[key] = r["name"]
            slot = (str(p.get("direction", "")).lower(), int(p.get("priority", -1)))
            if slot in slots:
                res.priority_clashes.append(f"{r['name']} / {slots[slot]} {slot} in {nsg_id}")
            slots[slot] = r["name"]
            if str(p.get("description") or "").startswith(MANAGED):  # marked or not
                res.managed_rules += 1
                missing = [f for f in _MANAGED_FIELDS if p.get(f) in (None, "")]
                if (
                    missing
                    or not _many(p, "sourceAddressPrefix")
                    or not _many(p, "destinationPortRange")
                    or str(p.get("provisioningState", "Succeeded")).lower() != "succeeded"
                ):
                    res.broken_managed.append(f"{r['name']} in {nsg_id}: missing {missing}")
    if not anywhere:
        res.wide_open = wide_open_rules(state)
    for name in enabled:
        _check_enabled_vm(world, state, name.lower(), access_sources, res)
    for name in disabled:
        exts = [e for e in state.extensions.get(name.lower(), []) if _is_admin_center(e)]
        if exts:
            res.extension_problems.append(f"{name}: {len(exts)} AdminCenter extension(s) remain")
    return res


def _is_admin_center(ext: Mapping[str, Any]) -> bool:
    p = ext.get("properties") or {}
    return str(ext.get("name", "")).lower() == "admincenter" or (
        str(p.get("publisher", "")).lower() == "microsoft.admincenter"
    )


def _check_enabled_vm(
    world: World, state: State, name: str, sources: Sequence[str], res: AuditResult
) -> None:
    exts = [e for e in state.extensions.get(name, []) if _is_admin_center(e)]
    if len(exts) != 1:
        res.extension_problems.append(f"{name}: {len(exts)} AdminCenter extensions")
        return
    state_ = str((exts[0].get("properties") or {}).get("provisioningState", ""))
    if state_.lower() != "succeeded":
        res.extension_problems.append(f"{name}: AdminCenter is {state_}")
    vm = state.vms.get(name)
    if vm is None:
        res.extension_problems.append(f"{name}: VM not listed")
        return
    nic_ref = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower()
    nic = state.nics[nic_ref]
    ipc = nic["properties"]["ipConfigurations"][0]["properties"]
    ip = ipc["privateIPAddress"]
    subnet_id = ipc["subnet"]["id"]
    vnet_id, _, subnet_name = subnet_id.lower().rpartition("/subnets/")
    vnet = state.vnets[vnet_id]
    subnet = next(
        s for s in vnet["properties"]["subnets"] if s["name"].lower() == subnet_name.lower()
    )
    nic_nsg_id = ((nic["properties"].get("networkSecurityGroup")) or {}).get("id")
    sub_nsg_id = ((subnet.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
    try:
        nic_nsg = (
            NetworkSecurityGroup.from_arm(state.nsgs[nic_nsg_id.lower()]) if nic_nsg_id else None
        )
        sub_nsg = (
            NetworkSecurityGroup.from_arm(state.nsgs[sub_nsg_id.lower()]) if sub_nsg_id else None
        )
    except WacAzureError as exc:  # e.g. two rules with one priority: ARM would refuse it
        res.unreachable.append(f"{name}: an NSG on its path does not parse: {exc}")
        return
    prefixes = vnet["properties"]["addressSpace"]["addressPrefixes"]
    flows = [Flow("Outbound", "Tcp", ip, None, "WindowsAdminCenter", 443)]
    for src in sources:
        host = ONPREM_HOST if src == "10.10.0.0/16" else src.split("/")[0]
        flows.append(Flow("Inbound", "Tcp", host, None, ip, PORT))
    for flow in flows:
        verdict = evaluate(flow, nic_nsg=nic_nsg, subnet_nsg=sub_nsg, vnet_prefixes=prefixes)
        if verdict.access is not Access.ALLOW:
            res.unreachable.append(f"{name}: {flow} -> {verdict.access.value} ({verdict.reason})")


def is_transient(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in TRANSIENT_WORDS)
