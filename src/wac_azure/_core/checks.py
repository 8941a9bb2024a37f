"""Requirement checks: can this VM run Windows Admin Center, and if not, why.

:func:`evaluate_requirements` is pure: a function of a :class:`VmFacts`
snapshot and the caller's choices (access mode, port, the region's service
tags, the time). It runs every check registered with :func:`register_check`,
in registration order: adding a check is one function and its decorator.
:class:`~wac_azure.RequirementChecker` (``_azure.requirements``) reads the
facts and the region's service tags, then evaluates.

Check codes are stable; docs/requirements.md describes each one.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from wac_azure._core.access import AccessMode, check_access
from wac_azure._core.errors import InvalidInputError, WacAzureError
from wac_azure._core.facts import (
    DEFAULT_PORT,
    EXTENSION_NAME,
    EXTENSION_PUBLISHER,
    EXTENSION_TYPE,
    NicFacts,
    VmFacts,
)
from wac_azure._core.findings import CHECK_CODES, Check, CheckStatus, RequirementReport
from wac_azure._core.nsg import (
    Access,
    Flow,
    NetworkSecurityGroup,
    SecurityRule,
    ServiceTags,
    Verdict,
    evaluate,
    parse_network,
)
from wac_azure._core.validate import check_port

#: Windows Admin Center needs at least 3 GiB of memory (AZURE_FACTS §2).
MIN_MEMORY_MIB = 3072
#: Windows 10/11 clients are supported from this extension version on (AZURE_FACTS §1).
CLIENT_MIN_EXTENSION = (0, 31, 0, 0)
#: After a start the VM needs about a minute before the extension can work.
SETTLE_SECONDS = 60


@attrs.frozen
class CheckContext:
    """What a requirement check sees: the VM's facts and the caller's choices."""

    facts: VmFacts
    access: AccessMode
    port: int
    #: The time the check judges at (``facts.read_at`` unless the caller gave one).
    now: _dt.datetime
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None


#: A requirement check: a pure function of a :class:`CheckContext`.
CheckFunction = Callable[[CheckContext], Check]

#: The registered checks, by code, in report order (the order of registration).
_REGISTRY: dict[str, CheckFunction] = {}


def register_check(code: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a requirement check under a stable ``code`` with a short ``title``.

    Adding a check is one function and this decorator: it then runs in every
    :func:`evaluate_requirements` (so in ``check``, ``enable`` and fleets), in
    the order of registration, and its title shows in reports. Document the
    code in docs/requirements.md; a failed check blocks ``enable`` unless its
    code is in :data:`~wac_azure._core.decide.PLANNABLE_CHECKS`.
    """

    def add(function: CheckFunction) -> CheckFunction:
        if code in _REGISTRY:
            raise ValueError(f"a requirement check is already registered as {code!r}")
        _REGISTRY[code] = function
        CHECK_CODES[code] = title
        return function

    return add


def registered_checks() -> tuple[str, ...]:
    """The codes of the registered checks, in report order."""
    return tuple(_REGISTRY)


# --------------------------------------------------------------------------- helpers


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = re.findall(r"[0-9]+", text)
    if not parts:
        return None
    nums = [int(p) for p in parts[:4]]
    return tuple(nums + [0] * (4 - len(nums)))


def _mib(value: int) -> str:
    return f"{value} MiB"


def _vm_cli(facts: VmFacts) -> str:
    t = facts.target
    return f"--resource-group {t.resource_group} --name {t.name}"


def _ext_cli(facts: VmFacts) -> str:
    t = facts.target
    return f"--resource-group {t.resource_group} --vm-name {t.name}"


def _check(
    code: str,
    status: CheckStatus,
    message: str,
    remedy: str | None = None,
    evidence: Iterable[str] = (),
) -> Check:
    return Check(code, status, message, remedy, tuple(str(e) for e in evidence))


# --------------------------------------------------------------------------- the checks


@register_check("os.supported", "Operating system")
def check_os(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "os.supported"
    os = facts.os
    ev = os.evidence
    where = f" (from {os.source})" if os.source != "unknown" else ""
    how = (
        "start the VM so its agent reports instanceView.osName, or look at the OS "
        "inside the VM (winver); Windows Server 2016 or newer is required"
    )
    if os.family is None:
        seen = "; ".join(ev) if ev else "no imageReference, osDisk.osType or instance-view OS"
        return _check(
            code, CheckStatus.UNKNOWN, f"the operating system is not known ({seen})", how, ev
        )
    if os.family == "linux":
        return _check(
            code,
            CheckStatus.FAIL,
            f"{os.describe()}{where}: Windows Admin Center runs only on Windows Server 2016 "
            "or newer",
            "use a Windows Server 2016, 2019, 2022 or 2025 VM",
            ev,
        )
    if os.kind == "client":
        release = os.release
        if release in ("10", "11"):
            ext = facts.extension
            version = _version_tuple(ext.handler_version if ext else None)
            if version is not None and version >= CLIENT_MIN_EXTENSION:
                return _check(
                    code,
                    CheckStatus.PASS,
                    f"{os.describe()}{where}: Windows {release} clients are supported by the "
                    f"installed extension {ext.handler_version if ext else ''}",
                    None,
                    ev,
                )
            return _check(
                code,
                CheckStatus.WARN,
                f"{os.describe()}{where}: Windows {release} is supported only by AdminCenter "
                "extension 0.31.0.0 or newer (not by the 2021 product description)",
                "install with typeHandlerVersion 0.0 and autoUpgradeMinorVersion true so Azure "
                "delivers a current build (>= 0.31.0.0), or use Windows Server 2016 or newer",
                ev,
            )
        if release is None:
            return _check(
                code,
                CheckStatus.UNKNOWN,
                f"{os.describe()}{where}: a Windows client whose version is not known",
                how,
                ev,
            )
        return _check(
            code,
            CheckStatus.FAIL,
            f"{os.describe()}{where}: Windows {release} is not supported",
            "use Windows Server 2016 or newer (or Windows 10/11 with extension >= 0.31.0.0)",
            ev,
        )
    if os.kind is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"{os.describe()}{where}: Windows, but whether Server and which version is not known",
            how,
            ev,
        )
    release = os.release
    year = None
    if release:
        match = re.match(r"^(20[0-9]{2})(-R2)?$", release)
        if match:
            year = int(match.group(1)) + (0.5 if match.group(2) else 0)
    if year is None and os.build is not None:
        year = 2016 if os.build >= 14393 else 2012
    if year is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"{os.describe()}{where}: Windows Server of an unknown version",
            how,
            ev,
        )
    if year < 2016:
        return _check(
            code,
            CheckStatus.FAIL,
            f"{os.describe()}{where}: Windows Admin Center needs Windows Server 2016 or newer",
            "upgrade the VM to Windows Server 2016 or newer, or create a new VM from a "
            "supported image (e.g. 2022-datacenter-azure-edition)",
            ev,
        )
    if year > 2022:
        return _check(
            code,
            CheckStatus.PASS,
            f"{os.describe()}{where}: newer than Windows Server 2022, the newest version "
            "Microsoft's Windows Admin Center docs list (2016, 2019, 2022); expected to work",
            None,
            ev,
        )
    return _check(code, CheckStatus.PASS, f"{os.describe()}{where} is supported", None, ev)


@register_check("memory.minimum", "Memory")
def check_memory(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "memory.minimum"
    size = facts.size or "the VM size"
    if facts.memory_mib is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"the memory of {size} is not known (not in the VM size list of "
            f"{facts.location or 'the region'})",
            f"look it up with `az vm list-sizes --location {facts.location or '<region>'}`; "
            f"Windows Admin Center needs at least {_mib(MIN_MEMORY_MIB)}",
        )
    if facts.memory_mib < MIN_MEMORY_MIB:
        return _check(
            code,
            CheckStatus.FAIL,
            f"{size} has {_mib(facts.memory_mib)}; Windows Admin Center needs at least "
            f"{_mib(MIN_MEMORY_MIB)}",
            f"resize the VM to a size with at least 3 GiB (e.g. `az vm resize {_vm_cli(facts)} "
            "--size Standard_B2s`)",
        )
    return _check(
        code,
        CheckStatus.PASS,
        f"{size} has {_mib(facts.memory_mib)} (at least {_mib(MIN_MEMORY_MIB)} needed)",
    )


@register_check("cloud.public", "Azure public cloud")
def check_cloud(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "cloud.public"
    where = facts.location or "an unknown region"
    if facts.cloud == "AzurePublicCloud":
        return _check(code, CheckStatus.PASS, f"{where} is in the Azure public cloud")
    if facts.cloud in ("AzureChinaCloud", "AzureUSGovernment"):
        return _check(
            code,
            CheckStatus.FAIL,
            f"{where} is in {facts.cloud}; Windows Admin Center in the Azure portal is "
            "available only in the Azure public cloud",
            "use a VM in a public-cloud region, or install Windows Admin Center inside the "
            "VM yourself (not through the extension)",
        )
    return _check(
        code,
        CheckStatus.UNKNOWN,
        f"the cloud of {where} is not known",
        "check that the VM is in the Azure public cloud (management.azure.com)",
    )


_STOPPED = {"deallocated", "deallocating", "stopped", "stopping"}


@register_check("vm.running", "VM running")
def check_running(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "vm.running"
    state = facts.power_state
    start = f"start it (`az vm start {_vm_cli(facts)}`)"
    if state == "running":
        return _check(code, CheckStatus.PASS, "the VM is running")
    if state in _STOPPED:
        return _check(
            code,
            CheckStatus.FAIL,
            f"the VM is {state}; extensions install only on a running VM",
            start,
        )
    if state == "starting":
        return _check(
            code,
            CheckStatus.WARN,
            "the VM is starting",
            "wait until it runs (about a minute after it started)",
        )
    return _check(
        code,
        CheckStatus.UNKNOWN,
        f"the VM's power state is {state or 'not reported'}",
        f"check it with `az vm get-instance-view {_vm_cli(facts)}` and {start} if needed",
    )


@register_check("vm.agent_ready", "VM agent ready")
def check_agent(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "vm.agent_ready"
    status = facts.agent_status
    version = f" (version {facts.agent_version})" if facts.agent_version else ""
    if status and status.lower() == "ready":
        return _check(code, CheckStatus.PASS, f"the VM agent is Ready{version}")
    if facts.power_state != "running":
        return _check(
            code,
            CheckStatus.UNKNOWN,
            "the VM agent reports only while the VM runs",
            "start the VM and check again",
        )
    if status:
        return _check(
            code,
            CheckStatus.FAIL,
            f"the VM agent is {status!r}{version}; extensions need a Ready agent",
            "make sure the WindowsAzureGuestAgent service runs inside the VM and can reach "
            "168.63.129.16; see Microsoft's VM agent troubleshooting guide",
        )
    return _check(
        code,
        CheckStatus.UNKNOWN,
        "the VM agent did not report a status",
        f"check `az vm get-instance-view {_vm_cli(facts)}` (instanceView.vmAgent)",
    )


@register_check("vm.recently_started", "Settled after start")
def check_recent(ctx: CheckContext) -> Check:
    """Judged from what Azure reports: the time of the VM's last operation.

    A VM's ``PowerState/*`` status carries no time, so Azure never says when a
    VM started. For a running VM ``facts.started_at`` holds the time of its
    last succeeded operation (the ``ProvisioningState/*`` status); a start is
    one, so the VM has been running at least since then. Older than a minute
    passes; recent warns that the VM *may* just have started; no time at all
    is unknown. The message never names a start time.
    """
    facts, now, code = ctx.facts, ctx.now, "vm.recently_started"
    if facts.power_state != "running":
        return _check(
            code,
            CheckStatus.UNKNOWN,
            "the VM is not running, so it has not settled after a start",
            "start the VM and wait about a minute",
        )
    last = facts.started_at
    if last is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            "Azure reports no start time (the PowerState status carries none) and the "
            "instance view gives no time of a last operation, so whether the VM started "
            "within the last minute cannot be told",
            "read the ProvisioningState status time in `az vm get-instance-view "
            f"{_vm_cli(facts)}` (instanceView.statuses) or the VM's start operations in "
            "`az monitor activity-log list`; if one is under a minute ago, wait a minute",
        )
    if last.tzinfo is None:
        last = last.replace(tzinfo=_dt.UTC)
    age = (now - last).total_seconds()
    evidence = (
        f"last operation on the VM finished at {last.isoformat()} (ProvisioningState time)",
        "Azure reports no start time: the PowerState status carries none",
    )
    if age < SETTLE_SECONDS:
        return _check(
            code,
            CheckStatus.WARN,
            f"an operation on the VM finished {max(int(age), 0)} s ago, so it may have just "
            "started; after a start it needs about a minute before the extension can "
            "install and connect",
            f"if it was a start, wait {SETTLE_SECONDS - max(int(age), 0)} s more",
            evidence,
        )
    minutes = int(age // 60)
    since = f"{minutes} min" if minutes else f"{int(age)} s"
    return _check(
        code,
        CheckStatus.PASS,
        f"the VM has been running for at least {since} (its last operation finished then)",
        None,
        evidence,
    )


# -- network -------------------------------------------------------------------


@attrs.frozen
class _Path:
    nic: NicFacts | None
    ip: str | None
    nic_nsg: NetworkSecurityGroup | None
    subnet_nsg: NetworkSecurityGroup | None
    problem: str | None


def _path(facts: VmFacts) -> _Path:
    nic = facts.primary_nic
    if nic is None:
        unread = [u for u in facts.unreadable if "/networkinterfaces/" in u.lower()]
        why = (
            f"network interface {unread[0]} could not be read"
            if unread
            else "no network interface is known"
        )
        return _Path(None, None, None, None, why)
    ip = nic.private_ip
    problem = None
    if ip is None:
        problem = f"network interface {nic.name} has no private IP address"
    nic_nsg = facts.nsg(nic.nsg_id)
    subnet_nsg = facts.nsg(nic.subnet_nsg_id)
    if nic.nsg_id and nic_nsg is None:
        problem = problem or f"the NIC's network security group {nic.nsg_id} could not be read"
    if nic.subnet_nsg_id and subnet_nsg is None:
        problem = problem or (
            f"the subnet's network security group {nic.subnet_nsg_id} could not be read"
        )
    if nic.subnet_id and nic.subnet_nsg_id is None:
        vnet = nic.subnet_id.rsplit("/subnets/", 1)[0] if "/subnets/" in nic.subnet_id else ""
        if facts.is_unreadable(nic.subnet_id) or facts.is_unreadable(vnet):
            problem = problem or (
                f"subnet {nic.subnet_id} could not be read, so its network security group is "
                "not known"
            )
    return _Path(nic, ip, nic_nsg, subnet_nsg, problem)


def _rule_of(facts: VmFacts, nsg_id: str | None, name: str | None) -> SecurityRule | None:
    nsg = facts.nsg(nsg_id)
    if nsg is None or not name:
        return None
    for rule in (*nsg.rules, *nsg.default_rules):
        if rule.name.lower() == name.lower():
            return rule
    return None


def _nsg_name(facts: VmFacts, nsg_id: str | None) -> str:
    nsg = facts.nsg(nsg_id)
    if nsg is not None:
        return nsg.name
    return (nsg_id or "?").rstrip("/").rsplit("/", 1)[-1]


def _describe_rule(facts: VmFacts, verdict: Verdict) -> str:
    rule = _rule_of(facts, verdict.nsg, verdict.rule)
    prio = f" (priority {rule.priority})" if rule is not None else ""
    kind = "default rule" if rule is not None and rule.is_default else "rule"
    return f"{kind} {verdict.rule}{prio} in NSG {_nsg_name(facts, verdict.nsg)}"


def _evaluate(
    facts: VmFacts,
    path: _Path,
    direction: str,
    source: str,
    destination: str,
    port: int,
    service_tags: Any,
) -> Verdict | str:
    """The verdict, or a string saying why none could be reached."""

    try:
        flow = Flow(direction, "Tcp", source, None, destination, port)
        return evaluate(
            flow,
            nic_nsg=path.nic_nsg,
            subnet_nsg=path.subnet_nsg,
            vnet_prefixes=facts.vnet_prefixes,
            service_tags=service_tags,
            asgs=path.nic.asg_ids if path.nic else (),
        )
    except WacAzureError as exc:
        return f"the flow could not be evaluated: {exc}"


def _is_default_deny(facts: VmFacts, verdict: Verdict) -> bool:
    rule = _rule_of(facts, verdict.nsg, verdict.rule)
    return rule is not None and rule.is_default


def _outbound(
    facts: VmFacts, code: str, tag: str, rule_name: str, why: str, service_tags: Any
) -> Check:

    path = _path(facts)
    what = f"outbound TCP 443 to the {tag} service tag"
    if path.problem or path.ip is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"{what} cannot be judged: {path.problem}",
            "make sure the NIC, its subnet and their NSGs exist and can be read (Reader role)",
        )
    verdict = _evaluate(facts, path, "Outbound", path.ip, tag, 443, service_tags)
    if isinstance(verdict, str):
        return _check(code, CheckStatus.UNKNOWN, f"{what}: {verdict}", None)
    ev = tuple(str(s.reason) for s in verdict.steps)
    if verdict.access is Access.ALLOW:
        return _check(code, CheckStatus.PASS, f"{what} from {path.ip} is allowed", None, ev)
    if verdict.access is Access.DENY:
        desc = _describe_rule(facts, verdict)
        if _is_default_deny(facts, verdict):
            return _check(
                code,
                CheckStatus.WARN,
                f"{what} is not allowed yet: {desc} denies it; {why}",
                f"the network plan adds {rule_name} (NetworkRulePlanner.plan/apply)",
                ev,
            )
        return _check(
            code,
            CheckStatus.FAIL,
            f"{what} from {path.ip} is denied by {desc}; {why}",
            f"allow it before that rule: NetworkRulePlanner adds {rule_name} at a free "
            "priority in front of the deny, or remove or narrow the deny rule",
            ev,
        )
    return _check(
        code,
        CheckStatus.UNKNOWN,
        f"{what} cannot be decided offline: {verdict.reason}",
        "give the region's service tags (RequirementChecker reads them), or verify with "
        "Network Watcher IP flow verify while the VM runs",
        ev,
    )


def _access_info(access: AccessMode) -> tuple[bool, tuple[str, ...], bool]:
    """``(public, sources, open_to_everyone)`` of an access mode."""
    public = access.is_public
    sources = tuple(str(s) for s in access.sources)
    everyone = access.open_to_everyone
    if not sources:
        sources = ("*",) if public else ("VirtualNetwork",)
    return public, sources, everyone


def _reachable_from_internet(nic: NicFacts, no_nsg: bool) -> tuple[bool, str]:
    """Whether internet traffic can reach the NIC at all, and how."""
    if nic.public_ips:
        pip = nic.public_ips[0]
        label = f"public IP {pip.address or pip.name} ({pip.sku or 'unknown'} SKU)"
        if no_nsg and all((p.sku or "").lower() == "standard" for p in nic.public_ips):
            return False, f"{label} stays closed to inbound traffic until an NSG allows it"
        return True, label
    if nic.load_balancer_pool_ids:
        return True, "a load balancer backend pool"
    return False, "no public IP and no load balancer"


@register_check("network.outbound_wac", "Outbound to WindowsAdminCenter")
def check_outbound_wac(ctx: CheckContext) -> Check:
    return _outbound(
        ctx.facts,
        "network.outbound_wac",
        "WindowsAdminCenter",
        "PortForWACService",
        "the extension cannot install or serve without it",
        ctx.service_tags,
    )


@register_check("network.outbound_entra", "Outbound to AzureActiveDirectory")
def check_outbound_entra(ctx: CheckContext) -> Check:
    return _outbound(
        ctx.facts,
        "network.outbound_entra",
        "AzureActiveDirectory",
        "PortForAADService",
        "Microsoft Entra sign-in to Windows Admin Center needs it",
        ctx.service_tags,
    )


def _families(addresses: Iterable[str | None]) -> set[int]:
    out: set[int] = set()
    for text in addresses:
        net = parse_network(text) if text else None
        if net is not None:
            out.add(net.version)
    return out


def _connect_families(nic: NicFacts, via: str) -> tuple[set[int], str]:
    """The IP versions of the addresses users connect to (``via``), and those addresses."""
    if via == "public":
        have = _families(p.address for p in nic.public_ips)
        have |= {
            6 if (p.version or "").lower() == "ipv6" else 4 for p in nic.public_ips if p.version
        }
        shown = ", ".join(p.address or p.name for p in nic.public_ips)
        return have, f"public IP {shown}" if shown else "no public IP"
    return _families(nic.private_ips), f"private IP {', '.join(nic.private_ips)}"


@register_check("network.source_family", "Source address family")
def check_source_family(ctx: CheckContext) -> Check:
    """Sources of an IP version the VM has no address of can never reach it: an IPv6
    source cannot connect to an IPv4-only VM (a security rule does not translate
    between families), and writing it would only widen the NSG."""
    facts, access, code = ctx.facts, ctx.access, "network.source_family"
    nets = [(src, parse_network(src)) for src in access.sources]
    needed = {net.version for _, net in nets if net is not None}
    if not needed:
        return _check(
            code,
            CheckStatus.PASS,
            f"the sources ({', '.join(access.sources)}) are not addresses of one IP version",
        )
    nic = facts.primary_nic
    if nic is None:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            "which IP versions the VM has is not known: no network interface is known",
            "make sure the VM's NIC can be read (Reader role)",
        )
    have, where = _connect_families(nic, access.via)
    if not have:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"which IP versions NIC {nic.name} has is not known ({where})",
            "make sure the VM's NIC and public IPs can be read",
        )
    wrong = [src for src, net in nets if net is not None and net.version not in have]
    versions = " and ".join(f"IPv{v}" for v in sorted(have))
    if wrong:
        other = sorted(needed - have)
        return _check(
            code,
            CheckStatus.FAIL,
            f"source{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} "
            f"{'are' if len(wrong) > 1 else 'is'} {' and '.join(f'IPv{v}' for v in other)}, "
            f"but NIC {nic.name} connects over {versions} only ({where}): such a source can "
            "never reach the VM, and a rule for it would only widen the NSG",
            f"give {versions} sources only, or add an IPv{other[0]} IP configuration "
            f"{'with a public IP ' if access.via == 'public' else ''}to NIC {nic.name}",
        )
    return _check(
        code,
        CheckStatus.PASS,
        f"the sources are {' and '.join(f'IPv{v}' for v in sorted(needed))}; NIC {nic.name} "
        f"has {versions} ({where})",
    )


@register_check("network.inbound_path", "Inbound path to the port")
def check_inbound(ctx: CheckContext) -> Check:
    facts, access, port, service_tags = ctx.facts, ctx.access, ctx.port, ctx.service_tags
    code = "network.inbound_path"
    public, sources, _everyone = _access_info(access)
    mode = "public" if public else "private"
    path = _path(facts)
    if path.nic is None or path.ip is None or path.problem:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"the inbound path for {mode} access cannot be judged: {path.problem}",
            "make sure the NIC, its subnet and their NSGs exist and can be read (Reader role)",
        )
    nic = path.nic
    no_nsg = path.nic_nsg is None and path.subnet_nsg is None
    if public:
        if not nic.public_ips:
            return _check(
                code,
                CheckStatus.FAIL,
                f"public access needs a public IP, and NIC {nic.name} has none",
                "attach a public IP address to the VM's NIC, or use PrivateAccess and connect "
                "from inside the virtual network",
            )
        standard = all((p.sku or "").lower() == "standard" for p in nic.public_ips)
        if no_nsg and standard:
            return _check(
                code,
                CheckStatus.FAIL,
                f"NIC {nic.name} has a Standard SKU public IP and no NSG on the NIC or its "
                "subnet: Azure keeps it closed to inbound traffic until an NSG allows it",
                "create and attach an NSG (NetworkRulePlanner.plan(..., create_nsg=True)) "
                "or attach one yourself",
            )
    verdicts: list[tuple[str, Verdict | str]] = [
        (src, _evaluate(facts, path, "Inbound", src, path.ip, port, service_tags))
        for src in sources
    ]
    ev = tuple(f"from {src}: {v if isinstance(v, str) else v.reason}" for src, v in verdicts)
    target = f"TCP {port} on {path.ip}"
    for src, v in verdicts:
        if not isinstance(v, str) and v.access is Access.DENY and not _is_default_deny(facts, v):
            return _check(
                code,
                CheckStatus.FAIL,
                f"{target} from {src} is denied by {_describe_rule(facts, v)}",
                "NetworkRulePlanner adds PortForWAC before it when a free priority exists; "
                "otherwise remove or narrow that deny rule",
                ev,
            )
    for src, v in verdicts:
        if isinstance(v, str) or v.access is Access.UNKNOWN:
            reason = v if isinstance(v, str) else v.reason
            return _check(
                code,
                CheckStatus.UNKNOWN,
                f"whether {target} is reachable from {src} is not known: {reason}",
                "give the region's service tags, or verify with Network Watcher IP flow verify",
                ev,
            )
    missing = [
        (src, v) for src, v in verdicts if not isinstance(v, str) and v.access is Access.DENY
    ]
    if missing:
        return _check(
            code,
            CheckStatus.WARN,
            f"{target} is not yet allowed from {', '.join(src for src, _ in missing)}: only "
            f"the {_describe_rule(facts, missing[0][1])} denies it",
            "the network plan adds PortForWAC for these sources (NetworkRulePlanner.plan/apply)",
            ev,
        )
    via = f" via {nic.public_ips[0].address or nic.public_ips[0].name}" if public else ""
    return _check(
        code,
        CheckStatus.PASS,
        f"{target}{via} is allowed from {', '.join(sources)} ({mode} access)",
        None,
        ev,
    )


@register_check("network.exposure", "Port exposure")
def check_exposure(ctx: CheckContext) -> Check:
    facts, access, port, service_tags = ctx.facts, ctx.access, ctx.port, ctx.service_tags
    code = "network.exposure"
    public, _sources, everyone = _access_info(access)
    path = _path(facts)
    if path.nic is None or path.ip is None or path.problem:
        return _check(
            code,
            CheckStatus.UNKNOWN,
            f"exposure of TCP {port} cannot be judged: {path.problem}",
            "make sure the NIC, its subnet and their NSGs can be read",
        )
    no_nsg = path.nic_nsg is None and path.subnet_nsg is None
    reachable, how = _reachable_from_internet(path.nic, no_nsg)
    if public and everyone and path.nic.public_ips:
        return _check(
            code,
            CheckStatus.WARN,
            f"PublicAccess.anywhere() opens TCP {port} on {how} to every host on the internet",
            "restrict access to your management machines: PublicAccess([...their IPs...])",
        )
    if not reachable:
        return _check(
            code,
            CheckStatus.PASS,
            f"TCP {port} cannot be reached from the internet: {how}",
        )
    if no_nsg:
        verdict: Verdict | str | None = None
        open_by = f"no NSG filters {how}"
    else:
        verdict = _evaluate(facts, path, "Inbound", "Internet", path.ip, port, service_tags)
        if isinstance(verdict, str):
            return _check(code, CheckStatus.UNKNOWN, f"exposure of TCP {port}: {verdict}")
        if verdict.access is Access.DENY:
            return _check(
                code,
                CheckStatus.PASS,
                f"TCP {port} is not open to every internet source ({how}): {verdict.reason}",
            )
        if verdict.access is Access.UNKNOWN:
            return _check(
                code,
                CheckStatus.UNKNOWN,
                f"whether TCP {port} is open to the internet is not known: {verdict.reason}",
                "give the region's service tags, or review the NSG rules for the port",
            )
        open_by = _describe_rule(facts, verdict)
    status = CheckStatus.WARN if everyone else CheckStatus.FAIL
    return _check(
        code,
        status,
        f"TCP {port} is open to any internet source through {how}: {open_by}",
        "restrict the rule's source to your management machines' addresses "
        "(PublicAccess([...])), or use PrivateAccess; an open Windows Admin Center port "
        "invites attacks",
    )


@register_check("extension.conflict", "Extension ownership")
def check_extension(ctx: CheckContext) -> Check:
    facts, port, code = ctx.facts, ctx.port, "extension.conflict"
    others = facts.other_extensions
    if others:
        names = ", ".join(f"{e.name} ({e.publisher}.{e.type})" for e in others)
        return _check(
            code,
            CheckStatus.FAIL,
            f"another {EXTENSION_PUBLISHER} extension already owns Windows Admin Center: {names}; "
            f"the portal and wac_azure use the name {EXTENSION_NAME}",
            f"remove it first (`az vm extension delete {_ext_cli(facts)} --name {others[0].name}`)",
        )
    ext = facts.extension
    hand = (
        "a Windows Admin Center installed by hand inside the VM cannot be seen from Azure; "
        "installing the extension reduces it to managing this VM only"
    )
    if ext is None:
        return _check(code, CheckStatus.PASS, f"no {EXTENSION_NAME} extension yet ({hand})")
    if not ext.is_admin_center:
        return _check(
            code,
            CheckStatus.FAIL,
            f"an extension named {ext.name} already exists with publisher {ext.publisher} and "
            f"type {ext.type}, not {EXTENSION_PUBLISHER}/{EXTENSION_TYPE}; Azure refuses to "
            "change an extension's publisher or type",
            f"remove that extension first (`az vm extension delete {_ext_cli(facts)} "
            f"--name {ext.name}`)",
        )
    state = ext.provisioning_state or "unknown"
    version = ext.handler_version or "unknown"
    if state.lower() == "failed":
        detail = next((s.message for s in ext.substatuses if s.message), None) or next(
            (s.message for s in ext.statuses if s.message), ""
        )
        return _check(
            code,
            CheckStatus.WARN,
            f"{EXTENSION_NAME} {version} is installed but its state is Failed"
            + (f": {detail}" if detail else ""),
            "installing again replaces it; fix the cause first (see the diagnose report)",
        )
    if ext.port is not None and ext.port != port:
        return _check(
            code,
            CheckStatus.WARN,
            f"{EXTENSION_NAME} {version} is installed on port {ext.port}, not {port}; "
            "installing again moves it",
            f"install with port={ext.port} to keep the current port",
        )
    return _check(
        code,
        CheckStatus.PASS,
        f"{EXTENSION_NAME} {version} is already installed (state {state}, port "
        f"{ext.port if ext.port is not None else 'unknown'})",
    )


@register_check("connect.bastion", "Azure Bastion")
def check_bastion(ctx: CheckContext) -> Check:
    facts, code = ctx.facts, "connect.bastion"
    if facts.bastion_subnets:
        return _check(
            code,
            CheckStatus.WARN,
            f"the VM's virtual network has an AzureBastionSubnet ({facts.bastion_subnets[0]}); "
            "Windows Admin Center cannot be reached through Azure Bastion",
            "connect over the private IP from inside the network (PrivateAccess) or over a "
            "public IP from your management machines (PublicAccess)",
        )
    return _check(
        code,
        CheckStatus.PASS,
        "no Azure Bastion subnet seen (informational: Windows Admin Center is not supported "
        "through Azure Bastion)",
    )


def evaluate_requirements(
    facts: VmFacts,
    *,
    access: AccessMode | None = None,
    now: _dt.datetime | None = None,
    service_tags: ServiceTags | Mapping[str, Iterable[str]] | None = None,
    port: int = DEFAULT_PORT,
) -> RequirementReport:
    """Every requirement check of ``facts`` (pure: no I/O, no clock).

    ``access`` is a :class:`~wac_azure.PrivateAccess` /
    :class:`~wac_azure.PublicAccess` (``None``: private access from the
    virtual network); ``now`` defaults to ``facts.read_at``; ``service_tags``
    (tag → prefixes, or :class:`wac_azure.nsg.ServiceTags`) lets rules
    written with CIDRs be judged against service tags; ``port`` is the
    Windows Admin Center port.
    """
    if not isinstance(facts, VmFacts):
        raise InvalidInputError(
            f"evaluate_requirements needs VmFacts (from read_vm_facts), got {type(facts).__name__}"
        )
    check_port(port)
    when = now or facts.read_at
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    ctx = CheckContext(
        facts=facts,
        access=check_access(access),
        port=port,
        now=when,
        service_tags=service_tags,
    )
    checks = []
    for code, run in _REGISTRY.items():
        found = run(ctx)
        if found.code != code:
            raise AssertionError(f"the check registered as {code!r} answered {found.code!r}")
        checks.append(found)
    return RequirementReport(facts.target, tuple(checks), when, facts)
