"""The troubleshooting guide's findings, as pure functions of what ``diagnose`` read.

Each function turns facts (the VM, its NSGs, the extension, the guest
script's answer, a probe result) into one :class:`~wac_azure.Finding` of a
troubleshooting step; ``_workflows.diagnose`` does the reading and puts the
findings in step order (see :func:`wac_azure.diagnose` for the steps).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import attrs

from wac_azure._core.certificate import ProbeResult, ProbeStatus
from wac_azure._core.errors import (
    WacAzureError,
)
from wac_azure._core.extension import LOG_LOCATIONS, install_hints
from wac_azure._core.facts import VmFacts
from wac_azure._core.findings import Finding, FindingStatus
from wac_azure._core.guest import (
    APPSETTINGS_PATH,
    APPSETTINGS_URL_PATH,
    REGISTRY_KEY,
    GuestDiagnosis,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg import Access, Flow, ServiceTags, Verdict, evaluate

#: How long after a VM start or an NSG change Windows Admin Center may still fail.
RECENT = _dt.timedelta(minutes=2)
SERVICE_TAGS = (
    ("outbound.windows_admin_center", "WindowsAdminCenter"),
    ("outbound.azure_active_directory", "AzureActiveDirectory"),
)
GUEST_CODES = (
    "guest.service",
    "guest.firewall_rule",
    "guest.localhost",
    "guest.service_endpoint",
    "guest.port",
)


# --------------------------------------------------------------------------- helpers


def as_utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def format_hms(moment: _dt.datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(now: _dt.datetime, then: _dt.datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return f"{-seconds} s in the future (clock skew?)"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def reason_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it did not finish within the time left for the diagnosis"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, WacAzureError) else f"{type(exc).__name__}: {text}"


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def unknown_finding(
    step: int, code: str, title: str, reason: str, remedy: str | None = None
) -> Finding:
    return Finding(step, code, FindingStatus.UNKNOWN, title, (reason,), remedy)


@attrs.frozen
class _Blocker:
    """One NSG on the path that denies a flow, and what its deny hides."""

    text: str  # "rule 'X' (priority N) in the nic NSG 'Y'"
    rule: str | None
    custom: bool  # a custom rule (not one of the NSG's default rules)
    where: str  # "the nic NSG 'Y'"
    hides: str | None  # the allow rule it takes precedence over, if any


def _blockers(
    verdict: Verdict,
    flow: Any,
    facts: VmFacts,
    *,
    tags: ServiceTags | None,
    asgs: Sequence[str],
) -> list[_Blocker]:
    """Every NSG on the path that denies ``flow`` (both may), path order."""

    out: list[_Blocker] = []
    for step in verdict.steps:
        if step.access is not Access.DENY:
            continue
        prio = f" (priority {step.priority})" if step.priority is not None else ""
        where = f"the {step.role} NSG {step.nsg_name!r}"
        text = f"rule {step.rule!r}{prio} in {where}"
        nsg = facts.nsg(step.nsg)
        custom = nsg is not None and nsg.rule(step.rule or "") is not None
        hides = None
        if nsg is not None and custom:
            # Evaluate this NSG alone without the blocking rule: what would decide?
            without = attrs.evolve(nsg, rules=tuple(r for r in nsg.rules if r.name != step.rule))
            again = evaluate(
                flow,
                nic_nsg=without,
                vnet_prefixes=facts.vnet_prefixes,
                service_tags=tags,
                asgs=asgs,
            )
            if again.access is Access.ALLOW and again.steps and again.steps[0].rule:
                hidden = again.steps[0]
                hp = f" (priority {hidden.priority})" if hidden.priority is not None else ""
                hides = f"{text} takes precedence over the allow rule {hidden.rule!r}{hp}"
        out.append(_Blocker(text, step.rule, custom, where, hides))
    return out


# --------------------------------------------------------------------------- steps


def extension_finding(facts: VmFacts) -> Finding:
    ext = facts.extension
    others = [
        f"{o.name} ({o.provisioning_state or 'state unknown'})" for o in facts.other_extensions
    ]
    if ext is None:
        evidence = ["the VM has no extension named AdminCenter"]
        if others:
            evidence.append("other Microsoft.AdminCenter extensions: " + ", ".join(others))
        return Finding(
            1,
            "extension",
            FindingStatus.PROBLEM,
            "The Windows Admin Center extension is not installed",
            evidence,
            "Install it: await ExtensionManager(session).install(target), or `wac-azure enable`."
            if facts.os.family in (None, "windows")
            else "It installs only on Windows: see the os finding.",
        )
    state = ext.provisioning_state or "unknown"
    evidence = [
        f"provisioning state: {state}",
        f"handler version: {ext.handler_version or 'unknown'}",
        f"publisher/type: {ext.publisher or '?'}/{ext.type or '?'}",
    ]
    if ext.port is not None:
        evidence.append(f"port in the extension settings: {ext.port}")
    errors = []
    for s in (*ext.statuses, *ext.substatuses):
        if s.message or s.display_status:
            line = f"{s.code or 'status'} [{s.level or '-'}]: {s.message or s.display_status}"
            evidence.append(line)
            if (s.level or "").lower() == "error":
                errors.append(s.message or s.display_status or "")
    evidence += ["other Microsoft.AdminCenter extension: " + o for o in others]
    details = {
        "provisioning_state": ext.provisioning_state,
        "handler_version": ext.handler_version,
        "port": ext.port,
        "substatuses": [attrs.asdict(s) for s in ext.substatuses],
    }
    if not ext.is_admin_center:
        return Finding(
            1,
            "extension",
            FindingStatus.PROBLEM,
            "An extension named AdminCenter exists but is not Microsoft.AdminCenter/AdminCenter",
            evidence,
            "Remove that extension and install Windows Admin Center's (publisher "
            "Microsoft.AdminCenter, type AdminCenter).",
            details,
        )
    lowered = state.lower()
    if lowered == "failed":
        # The same troubleshooting text as ExtensionInstallError (one source).
        hints = [*install_hints(errors)[:-1], "Then uninstall and install the extension again."]
        return Finding(
            1,
            "extension",
            FindingStatus.PROBLEM,
            "The Windows Admin Center extension failed to install"
            + (f": {errors[0]}" if errors else ""),
            evidence,
            " ".join(hints) + " The logs are listed in step 7.",
            details,
        )
    if lowered in ("creating", "updating", "deleting"):
        return Finding(
            1,
            "extension",
            FindingStatus.WARN,
            f"The extension is still {lowered}",
            evidence,
            "Wait for the operation to finish, then diagnose again.",
            details,
        )
    if lowered != "succeeded":
        return Finding(
            1,
            "extension",
            FindingStatus.WARN if lowered == "unknown" else FindingStatus.PROBLEM,
            f"The extension's provisioning state is {state}",
            evidence,
            "Uninstall and install the extension again.",
            details,
        )
    if errors:
        return Finding(
            1,
            "extension",
            FindingStatus.WARN,
            "The extension is installed but reports an error: " + errors[0],
            evidence,
            "Read the substatus messages and the logs listed in step 7.",
            details,
        )
    return Finding(
        1,
        "extension",
        FindingStatus.OK,
        f"The extension is installed (handler {ext.handler_version or 'version unknown'})",
        evidence,
        None,
        details,
    )


def inbound_finding(
    facts: VmFacts,
    *,
    via: str,
    client_ip: str | None,
    port: int,
    tags: ServiceTags | None,
) -> Finding:

    nic = facts.primary_nic
    if nic is None or nic.private_ip is None:
        return unknown_finding(
            2, "inbound", "The VM's network interface could not be read", "no NIC with a private IP"
        )
    standard_pip = None
    if via == "public":
        pips = [p for p in nic.public_ips if p.address]
        if not pips:
            return Finding(
                2,
                "inbound",
                FindingStatus.PROBLEM,
                "The VM has no public IP address, so it cannot be reached via='public'",
                [f"NIC {nic.name} has no public IP with an address"],
                "Connect from inside the virtual network (via='private'), or attach a "
                "Standard public IP and allow the port from your address.",
            )
        standard_pip = pips[0] if (pips[0].sku or "").lower() == "standard" else None
    source = client_ip or ("VirtualNetwork" if via == "private" else "Internet")
    nic_nsg = facts.nsg(nic.nsg_id)
    subnet_nsg = facts.nsg(nic.subnet_nsg_id)
    evidence = [
        f"flow: TCP from {source} to {nic.private_ip}:{port}",
        f"subnet NSG: {subnet_nsg.name if subnet_nsg else 'none'}; "
        f"NIC NSG: {nic_nsg.name if nic_nsg else 'none'}",
    ]
    missing = [i for i in (nic.nsg_id, nic.subnet_nsg_id) if i and facts.nsg(i) is None]
    if missing:
        return unknown_finding(
            2,
            "inbound",
            "An NSG on the path could not be read",
            f"not readable: {', '.join(missing)}",
        )
    flow = Flow("Inbound", "Tcp", source, None, nic.private_ip, port)
    try:
        verdict = evaluate(
            flow,
            nic_nsg=nic_nsg,
            subnet_nsg=subnet_nsg,
            vnet_prefixes=facts.vnet_prefixes,
            service_tags=tags,
            asgs=nic.asg_ids,
        )
    except WacAzureError as exc:
        return unknown_finding(
            2, "inbound", "The NSG rules could not be evaluated", reason_text(exc)
        )
    evidence.append(f"verdict: {verdict.reason}")
    details = {"flow": flow.to_dict(), "verdict": verdict.to_dict()}
    if verdict.access is Access.ALLOW:
        if standard_pip is not None and nic_nsg is None and subnet_nsg is None:
            return Finding(
                2,
                "inbound",
                FindingStatus.PROBLEM,
                f"Port {port} is closed on the Standard public IP: no NSG allows it",
                [
                    *evidence,
                    "a Standard SKU public IP admits no inbound traffic until an NSG allows it",
                ],
                f"Attach an NSG that allows TCP {port} from your address "
                "(NetworkRulePlanner with PublicAccess(sources=[...])).",
                details,
            )
        note = []
        if via == "public" and client_ip is None:
            note.append("the port is open to the whole internet")
        return Finding(
            2,
            "inbound",
            FindingStatus.WARN if note else FindingStatus.OK,
            f"Port {port} is reachable from {source}"
            + (" (open to the whole internet)" if note else ""),
            evidence,
            "Restrict the source to your management addresses (PublicAccess(sources=[...]))."
            if note
            else None,
            details,
        )
    if verdict.access is Access.UNKNOWN:
        return Finding(
            2,
            "inbound",
            FindingStatus.UNKNOWN,
            f"Whether port {port} is reachable from {source} cannot be told from the rules",
            evidence,
            "Pass client_ip= with your address, or verify the flow with Network Watcher's "
            "IP flow verify / Connection troubleshoot.",
            details,
        )
    blockers = _blockers(verdict, flow, facts, tags=tags, asgs=nic.asg_ids)
    evidence += [b.hides for b in blockers if b.hides]
    title = f"Port {port} from {source} is blocked by " + " and by ".join(b.text for b in blockers)
    wanted = client_ip or ("VirtualNetwork" if via == "private" else "your address")
    fixes = []
    for b in blockers:
        if b.custom:
            fixes.append(
                f"remove or narrow {b.rule!r}, or add an allow rule for TCP {port} from "
                f"{wanted} at a lower priority number than it"
            )
        else:
            fixes.append(
                f"in {b.where}, add an inbound allow rule for TCP {port} from {wanted} "
                f"(only its default rule {b.rule!r} stops it there)"
            )
    remedy = _sentence("; ".join(fixes)) + " NetworkRulePlanner.plan/apply picks free priorities."
    status = FindingStatus.PROBLEM
    if via == "public" and client_ip is None:
        status = FindingStatus.WARN
        title += " (checked for an arbitrary internet address; pass client_ip= for yours)"
    return Finding(2, "inbound", status, title, evidence, remedy, details)


def outbound_findings(facts: VmFacts, *, tags: ServiceTags | None) -> list[Finding]:

    out: list[Finding] = []
    nic = facts.primary_nic
    for code, tag in SERVICE_TAGS:
        if nic is None or nic.private_ip is None:
            out.append(
                unknown_finding(3, code, f"Outbound 443 to {tag} not checked", "no NIC read")
            )
            continue
        missing = [i for i in (nic.nsg_id, nic.subnet_nsg_id) if i and facts.nsg(i) is None]
        if missing:
            # An NSG that could not be read is not an absent NSG: its rules may deny.
            out.append(
                unknown_finding(
                    3,
                    code,
                    f"Whether outbound TCP 443 to {tag} is allowed cannot be told: "
                    "an NSG on the path could not be read",
                    f"not readable: {', '.join(missing)}",
                    "Grant Microsoft.Network/networkSecurityGroups/read (Reader) on the "
                    "NSG, then diagnose again.",
                )
            )
            continue
        nic_nsg = facts.nsg(nic.nsg_id)
        subnet_nsg = facts.nsg(nic.subnet_nsg_id)
        flow = Flow("Outbound", "Tcp", nic.private_ip, None, tag, 443)
        try:
            verdict = evaluate(
                flow,
                nic_nsg=nic_nsg,
                subnet_nsg=subnet_nsg,
                vnet_prefixes=facts.vnet_prefixes,
                service_tags=tags,
                asgs=nic.asg_ids,
            )
        except WacAzureError as exc:
            out.append(
                unknown_finding(3, code, f"Outbound 443 to {tag} not checked", reason_text(exc))
            )
            continue
        evidence = [f"flow: TCP from {nic.private_ip} to {tag}:443", f"verdict: {verdict.reason}"]
        if tags is None:
            evidence.append("the service tag list could not be read; prefixes are unknown")
        details = {"flow": flow.to_dict(), "verdict": verdict.to_dict()}
        if verdict.access is Access.ALLOW:
            out.append(
                Finding(
                    3,
                    code,
                    FindingStatus.OK,
                    f"Outbound TCP 443 to {tag} is allowed",
                    evidence,
                    None,
                    details,
                )
            )
        elif verdict.access is Access.UNKNOWN:
            out.append(
                Finding(
                    3,
                    code,
                    FindingStatus.UNKNOWN,
                    f"Whether outbound TCP 443 to {tag} is allowed cannot be told",
                    evidence,
                    f"Add an outbound allow rule for TCP 443 to the {tag} service tag "
                    "above the rule in doubt.",
                    details,
                )
            )
        else:
            blockers = _blockers(verdict, flow, facts, tags=tags, asgs=nic.asg_ids)
            evidence += [b.hides for b in blockers if b.hides]
            blocker = " and by ".join(b.text for b in blockers)
            out.append(
                Finding(
                    3,
                    code,
                    FindingStatus.PROBLEM,
                    f"Outbound TCP 443 to {tag} is blocked by {blocker}",
                    evidence,
                    f"Allow outbound TCP 443 to the {tag} service tag at a lower priority "
                    "number than "
                    + " and ".join(repr(b.rule) for b in blockers)
                    + " (NetworkRulePlanner adds PortForWACService/PortForAADService).",
                    details,
                )
            )
    return out


def guest_unknown(reason: str, remedy: str | None = None) -> list[Finding]:
    titles = {
        "guest.service": "Windows Admin Center service state not checked",
        "guest.firewall_rule": "The gateway's Windows firewall rule not checked",
        "guest.localhost": "https://localhost:<port> inside the VM not checked",
        "guest.service_endpoint": "The service endpoint from inside the VM not checked",
        "guest.port": "The gateway's port inside the VM not checked",
    }
    return [unknown_finding(4, code, titles[code], reason, remedy) for code in GUEST_CODES]


def _gateway_words(guest: GuestDiagnosis) -> str:
    if guest.gateway == "modern":
        return "the modernized gateway (service WindowsAdminCenter)"
    if guest.gateway == "legacy":
        return "the legacy gateway (service ServerManagementGateway)"
    return "no Windows Admin Center gateway"


def guest_findings(
    guest: GuestDiagnosis, facts: VmFacts | None, *, port: int, outbound_ok: bool | None
) -> list[Finding]:
    out: list[Finding] = []
    raw = guest.to_dict()
    gateway = guest.gateway
    found = f"gateway found: {gateway or 'none'}"
    # service: the found gateway's
    name = guest.service_name
    listed = [found, *(f"{s.name}: {s.status}" for s in guest.services)]
    svc = guest.service(name)
    status = svc.status if svc else "NotFound"
    details = {"gateway": gateway, "service": name, "services": raw["services"]}
    if status.lower() == "running":
        out.append(
            Finding(
                4,
                "guest.service",
                FindingStatus.OK,
                f"The Windows Admin Center service {name} is running ({gateway} gateway)",
                listed,
                None,
                details,
            )
        )
    elif gateway is None:
        out.append(
            Finding(
                4,
                "guest.service",
                FindingStatus.PROBLEM,
                "No Windows Admin Center gateway is installed in the VM (neither service "
                "WindowsAdminCenter nor ServerManagementGateway exists)",
                listed,
                "Reinstall the extension: the gateway is missing.",
                details,
            )
        )
    else:
        out.append(
            Finding(
                4,
                "guest.service",
                FindingStatus.PROBLEM,
                f"The Windows Admin Center service {name} is not running "
                f"({gateway} gateway; {name} is {status})",
                listed,
                "Reinstall the extension: the service is missing."
                if status.lower() == "notfound"
                else f"Start it inside the VM: Start-Service {name} "
                "(over RDP, or with a Run Command).",
                details,
            )
        )
    # firewall rule: the found gateway's
    rule = guest.firewall_rule
    profiles = dict(rule.profiles)
    evidence = [
        found,
        *(f"{p}: {'enabled' if on else 'not enabled'}" for p, on in profiles.items()),
    ]
    details = {"gateway": gateway, "firewall_rule": raw["firewall_rule"]}
    if not rule.found:
        out.append(
            Finding(
                4,
                "guest.firewall_rule",
                FindingStatus.PROBLEM,
                f"The Windows firewall rule {rule.name} does not exist",
                evidence,
                "Reinstall the extension, which creates the rule.",
                details,
            )
        )
    else:
        missing = [p for p in ("Private", "Public") if not profiles.get(p)]
        if missing:
            out.append(
                Finding(
                    4,
                    "guest.firewall_rule",
                    FindingStatus.PROBLEM,
                    f"The firewall rule {rule.name} is not enabled for the "
                    f"{' and '.join(missing)} profile{'s' if len(missing) > 1 else ''}",
                    evidence,
                    f"Enable {rule.name} for the Private and Public profiles (Windows Defender "
                    "Firewall > Allowed apps, or Set-NetFirewallRule -DisplayName "
                    f"{rule.name} -Enabled True -Profile Any).",
                    details,
                )
            )
        else:
            out.append(
                Finding(
                    4,
                    "guest.firewall_rule",
                    FindingStatus.OK,
                    f"The firewall rule {rule.name} is enabled for Private and Public",
                    evidence,
                    None,
                    details,
                )
            )
    # localhost
    lh = guest.localhost
    lh_ev = [f"{lh.url}: " + (f"HTTP {lh.status}" if lh.ok else (lh.error or "no answer"))]
    if lh.ok:
        out.append(
            Finding(
                4,
                "guest.localhost",
                FindingStatus.OK,
                f"{lh.url} answers inside the VM",
                lh_ev,
                None,
                {"localhost": raw["localhost"]},
            )
        )
    else:
        out.append(
            Finding(
                4,
                "guest.localhost",
                FindingStatus.PROBLEM,
                f"{lh.url} does not answer inside the VM",
                lh_ev,
                "The installation is not in a good state: uninstall the extension "
                "and install it again.",
                {"localhost": raw["localhost"]},
            )
        )
    # service endpoint
    se = guest.service_endpoint
    se_name = se.url or "the service endpoint"
    se_ev = [f"{se_name}: " + (f"HTTP {se.status}" if se.ok else (se.error or "no answer"))]
    if se.ok:
        out.append(
            Finding(
                4,
                "guest.service_endpoint",
                FindingStatus.OK,
                f"The VM reaches {se_name}",
                se_ev,
                None,
                {"service_endpoint": raw["service_endpoint"]},
            )
        )
    elif not se.url:
        out.append(
            unknown_finding(
                4,
                "guest.service_endpoint",
                "The service endpoint was not requested: the VM's region is not known",
                se.error or "no region",
            )
        )
    else:
        if outbound_ok is False:
            remedy = "Fix the outbound NSG rule named in step 3."
        else:
            remedy = (
                "The NSGs allow it, so look inside the VM: a Windows firewall rule, a proxy or "
                "DNS may block HTTPS to the service; if nothing does, the service may have "
                "problems — open a support request."
            )
        out.append(
            Finding(
                4,
                "guest.service_endpoint",
                FindingStatus.PROBLEM,
                f"The VM cannot reach {se_name}",
                se_ev,
                remedy,
                {"service_endpoint": raw["service_endpoint"]},
            )
        )
    out.append(_port_finding(guest, facts))
    return out


def _port_finding(guest: GuestDiagnosis, facts: VmFacts | None) -> Finding:
    settings_port = facts.extension.port if facts and facts.extension else None
    listening = guest.port
    app = guest.appsettings
    where = {
        "appsettings": f"appsettings.json ({APPSETTINGS_URL_PATH} = {app.url!r})",
        "registry": "SmePort in the registry",
    }
    details = {
        "gateway": guest.gateway,
        "port": listening,
        "source": guest.port_source,
        "sme_port": guest.sme_port,
        "appsettings": app.to_dict(),
        "settings_port": settings_port,
    }
    if listening is None:
        if guest.gateway == "legacy":
            title = "SmePort is missing from the registry (legacy gateway)"
            evidence = [f"{REGISTRY_KEY} has no SmePort"]
        else:
            title = "appsettings.json names no gateway port" + (
                " (modernized gateway)" if guest.gateway == "modern" else ""
            )
            evidence = [
                f"{APPSETTINGS_PATH}: "
                + (
                    f"unreadable ({app.error})"
                    if app.error
                    else f"no {APPSETTINGS_URL_PATH}"
                    if app.found
                    else "not found"
                ),
                f"{REGISTRY_KEY}: "
                + (f"SmePort {guest.sme_port}" if guest.sme_port else "no SmePort"),
            ]
        return Finding(
            4,
            "guest.port",
            FindingStatus.PROBLEM,
            title,
            evidence,
            "The installation is incomplete: uninstall and install the extension again.",
            details,
        )
    source = where.get(guest.port_source or "", "the VM")
    if settings_port is not None and settings_port != listening:
        return Finding(
            4,
            "guest.port",
            FindingStatus.WARN,
            f"The gateway listens on {listening}, but the extension settings say {settings_port}",
            [
                f"{guest.gateway} gateway: port {listening} from {source}",
                f"settings port: {settings_port}",
            ],
            f"Connect to port {listening} (and allow it in the NSGs), or "
            f"reinstall the extension with port {listening}.",
            details,
        )
    return Finding(
        4,
        "guest.port",
        FindingStatus.OK,
        f"The {guest.gateway} gateway listens on port {listening}",
        [f"port {listening} from {source}"],
        None,
        details,
    )


def recent_vm_finding(facts: VmFacts, now: _dt.datetime) -> Finding:
    """Step 5, VM half: judged from the time Azure really reports.

    A VM's ``PowerState/*`` status carries no time, so Azure does not say when
    the VM started. What it does report is the time of the VM's last
    succeeded operation (its ``ProvisioningState/*`` status, which
    ``facts.started_at`` holds for a running VM). A start is such an
    operation, so the VM has been running at least since then: long enough
    ago is ``ok``; recent means the VM *may* just have started (or something
    else changed), a ``warn`` that says so; no time at all is ``unknown``.
    """
    last = facts.started_at
    state = facts.power_state or "unknown"
    if state != "running":
        return unknown_finding(
            5,
            "recent.vm_started",
            f"The VM is not running ({state})",
            f"power state: {state}",
            "Start the VM, wait a minute, then diagnose again.",
        )
    if last is None:
        return unknown_finding(
            5,
            "recent.vm_started",
            "When the VM started is not known",
            "the instance view gives no start time (its PowerState status has no time) and "
            "no time of a last operation (ProvisioningState status)",
            "The subscription's activity log has the VM's start operations "
            "(Microsoft.Compute/virtualMachines/start/action) with their times.",
        )
    last = as_utc(last)
    evidence = [
        f"the VM's last operation finished at {format_hms(last)} ({_ago(now, last)}), "
        "so it has been running at least since then",
        "Azure reports no start time: the PowerState status carries no time",
    ]
    details = {"last_operation_at": last}
    if now - last < RECENT:
        ready = last + _dt.timedelta(minutes=1)
        return Finding(
            5,
            "recent.vm_started",
            FindingStatus.WARN,
            f"An operation on the VM finished at {format_hms(last)}, less than two minutes "
            "ago: the VM may just have started",
            evidence,
            "If it was a start, the VM's address takes about a minute to register with "
            f"Windows Admin Center: wait a minute (until about {format_hms(ready)}) and retry.",
            details,
        )
    return Finding(
        5,
        "recent.vm_started",
        FindingStatus.OK,
        "The VM has been running for more than two minutes",
        evidence,
        None,
        details,
    )


def power_finding(facts: VmFacts) -> Finding | None:
    """Step 1's very first finding on a VM that is not running, else ``None``.

    A stopped or deallocated VM serves nothing, whatever the rest says (its NSGs
    may well allow the port, its extension may be installed): a ``problem``,
    first in the report, so that ``Diagnosis.ok`` is False and the CLI exits
    non-zero. A VM that is starting is a ``warn`` (wait a minute); an unknown
    power state gives no finding here (step 5 says it is unknown).
    """
    state = facts.power_state
    if state is None or state == "running":
        return None
    t = facts.target
    start = f"az vm start --resource-group {t.resource_group} --name {t.name}"
    evidence = [f"instance view: PowerState/{state}"]
    details = {"power_state": state}
    if state == "starting":
        return Finding(
            1,
            "vm.running",
            FindingStatus.WARN,
            "The VM is starting",
            evidence,
            "Wait until it runs, then a minute more, and diagnose again.",
            details,
        )
    return Finding(
        1,
        "vm.running",
        FindingStatus.PROBLEM,
        f"The VM is {state}: Windows Admin Center cannot be reached until it runs",
        evidence,
        f"Start the VM (`{start}`), wait a minute, then diagnose again.",
        details,
    )


def os_finding(facts: VmFacts) -> Finding | None:
    """Step 1's first finding on a VM whose OS is known not to be Windows, else ``None``."""
    os = facts.os
    if os.family is None or os.family == "windows":
        return None
    where = f" (from {os.source})" if os.source != "unknown" else ""
    return Finding(
        1,
        "os",
        FindingStatus.PROBLEM,
        f"The VM runs {os.describe()}{where}: Windows Admin Center runs only on Windows",
        os.evidence,
        "Use a Windows Server 2016, 2019, 2022 or 2025 VM (or Windows 10/11 with a current "
        "extension); the AdminCenter extension cannot be installed on this VM.",
        {"family": os.family, "name": os.name, "source": os.source},
    )


def support_finding(target: VmTarget, facts: VmFacts | None) -> Finding:
    version = facts.extension.handler_version if facts and facts.extension else None
    return Finding(
        7,
        "support",
        FindingStatus.OK,
        "Where the logs are, and what to attach to a support request",
        [
            *(f"logs: {p}" for p in LOG_LOCATIONS),
            f"VM resource id: {target.resource_id}",
            f"extension handler version: {version or 'unknown'}",
            "a network trace only if it is needed: traces can hold customer data and secrets "
            "such as passwords, so review them and remove anything sensitive before sharing",
        ],
        "If every step is ok and it still fails, open a support request with the detailed "
        "status from the portal and the two log folders (and this diagnosis's to_dict()).",
        {"log_locations": list(LOG_LOCATIONS)},
    )


def probe_finding(result: ProbeResult, now: _dt.datetime) -> Finding:

    evidence = [str(result)]
    details = result.to_dict()
    if result.connect is not ProbeStatus.OK:
        return Finding(
            6,
            "probe",
            FindingStatus.PROBLEM,
            f"Could not connect to {result.url}: {result.connect_error}",
            evidence,
            "Check that you are on the right network (VNet, VPN) and use the right "
            "address, then steps 2 and 4.",
            details,
        )
    if result.handshake is not ProbeStatus.OK:
        return Finding(
            6,
            "probe",
            FindingStatus.PROBLEM,
            f"Connected to {result.url}, but the TLS handshake failed: {result.handshake_error}",
            evidence,
            "Something other than Windows Admin Center may answer on that port; "
            "check the service (step 4).",
            details,
        )
    cert = result.certificate
    if cert is not None and cert.expired(now):
        return Finding(
            6,
            "probe",
            FindingStatus.PROBLEM,
            f"{result.url} answers with an expired certificate",
            evidence,
            "Reinstall the extension to get a new certificate, or open a support request.",
            details,
        )
    if cert is not None and cert.verified is False:
        return Finding(
            6,
            "probe",
            FindingStatus.WARN,
            f"{result.url} answers TLS, but the certificate is not trusted ({cert.verify_error})",
            evidence,
            "The page loads with a certificate error: the guide says to open a "
            "support request in that case (the certificate is normally issued for "
            "the VM's DNS name by the service).",
            details,
        )
    return Finding(
        6, "probe", FindingStatus.OK, f"{result.url} answers TLS", evidence, None, details
    )
