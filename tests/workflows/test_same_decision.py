"""A fleet of one and a single ``enable`` decide alike on hostile NSG worlds.

``enable`` and ``enable_many`` share one decision (``wac_azure._core.decide``) but
read the VM differently (one VM's documents vs. a resource group's lists) and write
differently (``NetworkRulePlanner.apply`` vs. the fleet's per-NSG queues). For each
drawn world the same VM is built twice, in two fresh emulators from the same seed:
``enable`` runs on world A, ``enable_many([t])`` on world B. They must

* end alike: success ↔ enabled, ``RequirementsNotMetError`` ↔ skipped, any other
  error ↔ failed with an error of the same type;
* leave the same security rules on every NSG (etags and ids aside) and the same
  extensions on the VM (name, publisher, state, port);
* leave the same reachability, as the emulator's own evaluator
  (``wac_azure.testing.backend.nsgeval``, independent of ``wac_azure.nsg``) judges
  it: inbound TCP on the port from the access mode's sources to the VM, outbound
  TCP 443 to ``WindowsAdminCenter`` and ``AzureActiveDirectory``;
* write nothing to the NSGs when the VM is skipped or failed, and, when it is
  enabled, leave every one of those flows allowed.

The worlds are hostile: deny rules for the port and for outbound 443 (service tags,
``Internet``, ``*``, plural fields, ``*`` protocols, ``0.0.0.0/0`` sources), priorities
crowded so that no slot is free before a deny (or only one), other writers' allow
rules, rules named like ours but not ours, rules of an earlier run for another port,
extensions of an earlier run (or someone else's), and VMs that fail a hard requirement
or have no public IP for ``PublicAccess``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from typing import Any

import attrs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wac_azure import (
    PrivateAccess,
    PublicAccess,
    RequirementsNotMetError,
    VmTarget,
    enable,
)
from wac_azure._core.access import AccessMode
from wac_azure._workflows.fleet.engine import enable_many
from wac_azure._workflows.fleet.results import OutcomeStatus
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.builders import SERVICE_TAGS
from wac_azure.testing.backend.nsgeval import Endpoint, Verdict, flow_allowed

MANAGED = "Managed by wac_azure"
NET = "/providers/Microsoft.Network"
#: Placeholders resolved when the world is built: the VM's private IP, the WAC port.
VM_IP = "@vm"
PORT = "@port"
PORT_RANGE = "@port-range"
#: An address of the virtual network that is not the VM's (a VirtualNetwork source).
VNET_PEER = "10.0.200.9"

ACCESS_MODES: list[AccessMode] = [
    PrivateAccess(),
    PrivateAccess(sources=("10.10.0.0/16",)),
    PrivateAccess(sources=("VirtualNetwork", "172.16.5.0/24")),
    PublicAccess(["203.0.113.0/24"]),
    PublicAccess(["198.51.100.7"]),
    PublicAccess(["52.1.0.0/16", "203.0.113.64/26"]),
]


# ------------------------------------------------------------------------- the world

#: Extensions a VM may hold already: (name, publisher, port, provisioning state).
#: "ours-*" are Windows Admin Center's from an earlier run (``"@port"``: this run's
#: port); "foreign" is another publisher's AdminCenter, "renamed" WAC under another name.
EXTENSIONS: dict[str, tuple[str, str, str, str]] = {
    "ours-same": ("AdminCenter", "Microsoft.AdminCenter", PORT, "Succeeded"),
    "ours-other": ("AdminCenter", "Microsoft.AdminCenter", "7000", "Succeeded"),
    "ours-failed": ("AdminCenter", "Microsoft.AdminCenter", PORT, "Failed"),
    "foreign": ("AdminCenter", "Contoso.Tools", PORT, "Succeeded"),
    "renamed": ("WindowsAdminCenter", "Microsoft.AdminCenter", PORT, "Succeeded"),
}


@attrs.frozen
class Spec:
    """One drawn world: the VM's facts, the caller's choices, the NSGs' rules."""

    nsg: str  # "nic" | "subnet" | "both"
    nics: int
    public_ip: bool
    power: str
    size: str
    os: str
    port: int
    access: AccessMode
    #: an extension already on the VM (a key of EXTENSIONS), or None
    extension: str | None
    #: "nic" / "subnet" -> rules (wire JSON with the placeholders above)
    rules: dict[str, list[dict[str, Any]]]


def _field(props: dict[str, Any], single: str) -> list[str]:
    plural = single + ("es" if single.endswith("x") else "s")
    return list(props.get(plural) or []) or [props[single]]


def _rule(
    name: str,
    priority: int,
    direction: str,
    access: str,
    protocol: str,
    sources: list[str],
    destinations: list[str],
    ports: list[str],
    description: str | None = None,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "priority": priority,
        "direction": direction,
        "access": access,
        "protocol": protocol,
        "sourcePortRange": "*",
    }
    for single, values in (
        ("sourceAddressPrefix", sources),
        ("destinationAddressPrefix", destinations),
        ("destinationPortRange", ports),
    ):
        if len(values) == 1:
            props[single] = values[0]
        else:
            props[single + ("es" if single.endswith("x") else "s")] = values
    if description is not None:
        props["description"] = description
    return {"name": name, "properties": props}


def _some(values: list[str], max_size: int = 2) -> st.SearchStrategy[list[str]]:
    """One value (a singular field) or more (a plural one)."""
    choices = list(dict.fromkeys(values))
    return st.lists(st.sampled_from(choices), min_size=1, max_size=max_size, unique=True)


def _priority() -> st.SearchStrategy[int]:
    """Mostly low priorities, close to where the planner looks for free slots (a deny at
    100, which leaves no slot before it, comes from :func:`crowd`)."""
    return st.one_of(st.integers(101, 160), st.integers(101, 4096))


@st.composite
def inbound_deny(draw: st.DrawFn, name: str, access: AccessMode) -> dict[str, Any]:
    """A deny for the WAC port, from sources that cover the access mode's (or not)."""
    sources = ["*", "Internet", "0.0.0.0/0", "VirtualNetwork", "10.0.0.0/8", "203.0.113.0/24"]
    sources += [s for s in access.sources if s not in sources]
    return _rule(
        name,
        draw(_priority()),
        "Inbound",
        "Deny",
        draw(st.sampled_from(["Tcp", "*"])),
        draw(_some(sources)),
        draw(_some(["*", VM_IP, "VirtualNetwork", "10.0.0.0/16"])),
        draw(_some([PORT, "*", "1-65535", PORT_RANGE, "3389"])),
    )


@st.composite
def outbound_deny(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A deny for outbound 443 to the services WAC needs, named or covered."""
    destinations = [
        "WindowsAdminCenter",
        "AzureActiveDirectory",
        "Internet",
        "*",
        "0.0.0.0/0",
        "AzureCloud",
    ]
    return _rule(
        name,
        draw(_priority()),
        "Outbound",
        "Deny",
        draw(st.sampled_from(["Tcp", "*"])),
        draw(_some(["*", "VirtualNetwork", VM_IP])),
        draw(_some(destinations)),
        draw(_some(["443", "*", "400-500", "80"])),
    )


@st.composite
def foreign_allow(draw: st.DrawFn, name: str, access: AccessMode) -> dict[str, Any]:
    """Another writer's allow rule (it may serve WAC's flows, or only come close)."""
    if draw(st.booleans()):
        return _rule(
            name,
            draw(_priority()),
            "Inbound",
            "Allow",
            draw(st.sampled_from(["Tcp", "*", "Udp"])),
            draw(_some(["203.0.113.5", "VirtualNetwork", *access.sources])),
            draw(_some(["*", VM_IP])),
            draw(_some([PORT, "3389", "5985-5986"])),
        )
    return _rule(
        name,
        draw(_priority()),
        "Outbound",
        "Allow",
        draw(st.sampled_from(["Tcp", "*"])),
        ["*"],
        draw(_some(["Storage", "WindowsAdminCenter", "AzureActiveDirectory", "AzureCloud"])),
        draw(_some(["443", "*"])),
    )


@st.composite
def lookalike(draw: st.DrawFn, port: int, access: AccessMode) -> dict[str, Any]:
    """A rule named like one of ours, but someone else's (no or another description)."""
    description = draw(st.sampled_from([None, "opened from the portal", "site policy"]))
    if draw(st.booleans()):
        return _rule(
            draw(st.sampled_from(["PortForWAC", f"PortForWAC-{port}", "portforwac"])),
            draw(_priority()),
            "Inbound",
            draw(st.sampled_from(["Allow", "Deny"])),
            draw(st.sampled_from(["Tcp", "*"])),
            draw(_some(["203.0.113.5", "*", *access.sources])),
            ["*"],
            [PORT],
            description,
        )
    return _rule(
        draw(st.sampled_from(["PortForWACService", "PortForAADService"])),
        draw(_priority()),
        "Outbound",
        draw(st.sampled_from(["Allow", "Deny"])),
        "Tcp",
        ["*"],
        draw(_some(["WindowsAdminCenter", "AzureActiveDirectory"])),
        ["443"],
        description,
    )


@st.composite
def earlier_run(draw: st.DrawFn, port: int, access: AccessMode) -> dict[str, Any]:
    """A rule of ours from an earlier run: for another port or other sources, or this one."""
    other = draw(st.sampled_from([port, 6516, 7000]))
    sources = draw(st.sampled_from([list(access.sources), ["VirtualNetwork"], ["10.10.0.0/16"]]))
    return _rule(
        draw(st.sampled_from(["PortForWAC", f"PortForWAC-{other}"])),
        draw(_priority()),
        "Inbound",
        "Allow",
        "Tcp",
        sources,
        [VM_IP],
        [str(other)],
        MANAGED,
    )


@st.composite
def crowd(draw: st.DrawFn, direction: str, access: AccessMode) -> list[dict[str, Any]]:
    """Inert rules on every priority from 100 up (but maybe one), then a deny of WAC's flow:
    the plan has no free slot before the deny (blocked), or exactly one."""
    size = draw(st.integers(0, 24))
    hole = draw(st.one_of(st.none(), st.integers(0, size - 1))) if size else None
    out = []
    for i in range(size):
        if i == hole:
            continue
        out.append(
            _rule(
                f"crowd-{direction[:2].lower()}-{i}",
                100 + i,
                direction,
                "Allow" if i % 2 else "Deny",
                "Udp",
                ["*"],
                ["168.63.129.16"],
                [str(5000 + i)],
            )
        )
    if direction == "Inbound":
        deny = _rule(
            "deny-port-after-crowd",
            100 + size,
            "Inbound",
            "Deny",
            "*",
            draw(st.sampled_from([["*"], list(access.sources), ["Internet", "VirtualNetwork"]])),
            ["*"],
            [PORT],
        )
    else:
        deny = _rule(
            "deny-443-after-crowd",
            100 + size,
            "Outbound",
            "Deny",
            "*",
            ["*"],
            draw(st.sampled_from([["Internet"], ["WindowsAdminCenter", "AzureActiveDirectory"]])),
            ["443"],
        )
    return [*out, deny]


@st.composite
def nsg_rules(draw: st.DrawFn, port: int, access: AccessMode) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for direction in ("Inbound", "Outbound"):
        if draw(st.integers(0, 5)) == 0:
            rules += draw(crowd(direction, access))
    n = draw(st.integers(0, 7))
    for i in range(n):
        kind = draw(st.sampled_from(["in", "in", "out", "out", "allow", "look", "earlier"]))
        if kind == "in":
            rules.append(draw(inbound_deny(f"deny-in-{i}", access)))
        elif kind == "out":
            rules.append(draw(outbound_deny(f"deny-out-{i}")))
        elif kind == "allow":
            rules.append(draw(foreign_allow(f"allow-{i}", access)))
        elif kind == "look":
            rules.append(draw(lookalike(port, access)))
        else:
            rules.append(draw(earlier_run(port, access)))
    # ARM refuses two rules with one priority and direction, and names are unique.
    seen: set[tuple[str, int]] = set()
    names: set[str] = set()
    kept = []
    for r in rules:
        p = r["properties"]
        slot = (p["direction"], p["priority"])
        if slot in seen or r["name"].lower() in names:
            continue
        seen.add(slot)
        names.add(r["name"].lower())
        kept.append(r)
    return kept


#: VM facts that fail a hard requirement, or an extension in the way.
FLAWS: dict[str, dict[str, str]] = {
    "stopped": {"power": "stopped"},
    "deallocated": {"power": "deallocated"},
    "small": {"size": "Standard_B1s"},
    "small-a1": {"size": "Standard_A1_v2"},
    "old-os": {"os": "2012-R2"},
    "foreign-extension": {"extension": "foreign"},
    "renamed-extension": {"extension": "renamed"},
}


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    nsg = draw(st.sampled_from(["nic", "subnet", "both"]))
    port = draw(st.one_of(st.just(6516), st.integers(1024, 49151)))
    access = draw(st.sampled_from(ACCESS_MODES))
    rules = {
        role: draw(nsg_rules(port, access)) for role in ("nic", "subnet") if nsg in (role, "both")
    }
    facts: dict[str, Any] = {
        "power": "running",
        "size": "Standard_D2s_v3",
        "os": draw(st.sampled_from(["2022", "2019", "2025", "2016"])),
        "extension": draw(st.sampled_from([None] * 4 + ["ours-same", "ours-other", "ours-failed"])),
    }
    # At most one flaw that fails a hard requirement.
    flaw = draw(st.sampled_from([None] * 12 + sorted(FLAWS)))
    facts.update(FLAWS.get(flaw or "", {}))
    return Spec(
        nsg=nsg,
        nics=draw(st.sampled_from([1, 1, 1, 2])),
        public_ip=draw(st.sampled_from([True, True, False])),
        port=port,
        access=access,
        rules=rules,
        **facts,
    )


@attrs.frozen
class Built:
    emu: ArmEmulator
    target: VmTarget
    nsgs: dict[str, str]  # role -> NSG id
    vm_ip: str
    vnet: tuple[str, ...]


def _resolve(values: list[str], spec: Spec, vm_ip: str) -> list[str]:
    table = {VM_IP: vm_ip, PORT: str(spec.port), PORT_RANGE: f"{spec.port - 10}-{spec.port + 10}"}
    return [table.get(v, v) for v in values]


def build(spec: Spec) -> Built:
    emu = ArmEmulator(seed=11)
    t = emu.add_windows_vm(
        "vm1",
        nsg=spec.nsg,
        nics=spec.nics,
        public_ip=spec.public_ip,
        size=spec.size,
        os=spec.os,
    )
    if spec.power != "running":
        emu.set_power_state(t, spec.power)
    rg = f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
    nic = emu.resource(f"{rg}/networkInterfaces/vm1-nic")
    ipconf = nic["properties"]["ipConfigurations"][0]["properties"]
    vm_ip = ipconf["privateIPAddress"]
    vnet_id = ipconf["subnet"]["id"].rpartition("/subnets/")[0]
    vnet = tuple(emu.resource(vnet_id)["properties"]["addressSpace"]["addressPrefixes"])
    nsgs = {}
    if spec.nsg in ("nic", "both"):
        nsgs["nic"] = nic["properties"]["networkSecurityGroup"]["id"]
    if spec.nsg in ("subnet", "both"):
        nsgs["subnet"] = f"{rg}/networkSecurityGroups/vnet-westeurope-default-nsg"
    if spec.extension is not None:
        name, publisher, port, state = EXTENSIONS[spec.extension]
        emu.seed(
            {
                "id": f"{t.resource_id}/extensions/{name}",
                "name": name,
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "location": "westeurope",
                "properties": {
                    "publisher": publisher,
                    "type": "AdminCenter",
                    "typeHandlerVersion": "0.0",
                    "autoUpgradeMinorVersion": True,
                    "provisioningState": state,
                    "settings": {"port": _resolve([port], spec, "")[0], "salt": "earlier"},
                },
            }
        )
    for role, rules in spec.rules.items():
        for rule in rules:
            props = dict(rule["properties"])
            for key in (
                "sourceAddressPrefix",
                "sourceAddressPrefixes",
                "destinationAddressPrefix",
                "destinationAddressPrefixes",
                "destinationPortRange",
                "destinationPortRanges",
            ):
                if key in props:
                    value = props[key]
                    props[key] = (
                        _resolve(value, spec, vm_ip)
                        if isinstance(value, list)
                        else _resolve([value], spec, vm_ip)[0]
                    )
            emu.add_rule(nsgs[role], {"name": rule["name"], "properties": props})
    return Built(emu, t, nsgs, vm_ip, vnet)


# ------------------------------------------------------------------------- what is left


def rule_set(emu: ArmEmulator, nsg_id: str) -> frozenset[tuple[Any, ...]]:
    out = set()
    for r in emu.resource(nsg_id)["properties"].get("securityRules") or []:
        p = r["properties"]
        out.add(
            (
                r["name"],
                p["priority"],
                p["direction"],
                p["access"],
                p["protocol"],
                tuple(sorted(_field(p, "sourceAddressPrefix"))),
                tuple(sorted(_field(p, "destinationAddressPrefix"))),
                tuple(sorted(_field(p, "destinationPortRange"))),
                p.get("description"),
            )
        )
    return frozenset(out)


def rules_left(w: Built) -> dict[str, frozenset[tuple[Any, ...]]]:
    return {role: rule_set(w.emu, nid) for role, nid in w.nsgs.items()}


def extensions_left(w: Built) -> set[tuple[Any, ...]]:
    """The VM's extensions: name, publisher, state, port (the salt is random per run)."""
    prefix = f"{w.target.resource_id}/extensions/".lower()
    out = set()
    for doc in w.emu.store:
        if str(doc.get("id") or "").lower().startswith(prefix):
            p = doc["properties"]
            port = (p.get("settings") or {}).get("port")
            out.add((doc["name"], p.get("publisher"), p.get("provisioningState"), str(port)))
    return out


def _hosts(source: str) -> list[str]:
    if source == "VirtualNetwork":
        return [VNET_PEER]
    net = ipaddress.ip_network(source, strict=False)
    if net.num_addresses == 1:
        return [str(net.network_address)]
    return [str(net.network_address + 1), str(net.broadcast_address - 1)]


def reachability(w: Built, spec: Spec) -> dict[str, Verdict]:
    """The emulator's own verdicts on the flows WAC needs, in the NSG JSON left behind."""
    docs = {role: w.emu.resource(nid) for role, nid in w.nsgs.items()}
    inbound = [docs[r] for r in ("subnet", "nic") if r in docs]
    outbound = [docs[r] for r in ("nic", "subnet") if r in docs]
    out: dict[str, Verdict] = {}
    for source in spec.access.sources:
        for host in _hosts(source):
            out[f"in {host}->{w.vm_ip}:{spec.port}"] = flow_allowed(
                inbound,
                direction="Inbound",
                protocol="Tcp",
                src=Endpoint(ip=host),
                dst=Endpoint(ip=w.vm_ip),
                dst_port=spec.port,
                vnet=w.vnet,
            )
    for tag in ("WindowsAdminCenter", "AzureActiveDirectory"):
        out[f"out {w.vm_ip}->{tag}:443"] = flow_allowed(
            outbound,
            direction="Outbound",
            protocol="Tcp",
            src=Endpoint(ip=w.vm_ip),
            dst=Endpoint(tag=tag, tag_prefixes=tuple(SERVICE_TAGS[tag][2])),
            dst_port=443,
            vnet=w.vnet,
        )
    return out


# ------------------------------------------------------------------------- the runs


def single(w: Built, spec: Spec) -> tuple[str, str | None]:
    async def run() -> tuple[str, str | None]:
        async with w.emu.session() as session:
            try:
                await enable(session, w.target, access=spec.access, port=spec.port)
            except RequirementsNotMetError:
                return "skipped", None
            except Exception as exc:
                return "failed", type(exc).__name__
        return "enabled", None

    return asyncio.run(run())


def fleet_of_one(w: Built, spec: Spec) -> tuple[str, str | None]:
    async def run() -> tuple[str, str | None]:
        async with w.emu.session() as session:
            result = await enable_many(session, [w.target], access=spec.access, port=spec.port)
        (outcome,) = result.outcomes
        if outcome.status is OutcomeStatus.ENABLED:
            return "enabled", None
        if outcome.status is OutcomeStatus.SKIPPED:
            return "skipped", None
        assert outcome.status is OutcomeStatus.FAILED, outcome
        return "failed", type(outcome.error).__name__

    return asyncio.run(run())


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("WAC_AZURE_FUZZ_RANDOM") is None,
)
@given(specs())
def test_fleet_of_one_and_enable_decide_alike(spec: Spec) -> None:
    a, b = build(spec), build(spec)
    seeded = rules_left(a)
    assert rules_left(b) == seeded
    assert reachability(a, spec) == reachability(b, spec)

    by_enable = single(a, spec)
    by_fleet = fleet_of_one(b, spec)
    assert a.emu.internal_errors == []
    assert b.emu.internal_errors == []

    event(f"enable: {by_enable[0]} {by_enable[1] or ''}".strip())
    assert by_enable == by_fleet, f"enable: {by_enable}, enable_many: {by_fleet}"
    left_a, left_b = rules_left(a), rules_left(b)
    assert left_a == left_b, (
        f"rules only after enable: {_diff(left_a, left_b)}; "
        f"only after enable_many: {_diff(left_b, left_a)}"
    )
    assert reachability(a, spec) == reachability(b, spec)
    assert extensions_left(a) == extensions_left(b)
    if by_enable[0] == "enabled":
        # and what it leaves lets Windows Admin Center through, as the emulator judges it
        for where, verdict in reachability(a, spec).items():
            assert verdict.allowed, f"enabled, yet {where} is denied by {verdict}"
    else:
        assert left_a == seeded, f"{by_enable}, yet the NSGs changed: {_diff(left_a, seeded)}"
        assert left_b == seeded, f"{by_fleet}, yet the NSGs changed: {_diff(left_b, seeded)}"


def _diff(
    x: dict[str, frozenset[tuple[Any, ...]]], y: dict[str, frozenset[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    return {role: sorted(x[role] - y.get(role, frozenset()), key=str) for role in x}
