"""``diagnose()``: the product's troubleshooting guide, run as code.

One call walks the checklist a person would otherwise do by hand over RDP
and in the portal, and says which step is wrong:

1. ``os`` (only on a VM known not to run Windows: the first problem) and
   ``extension`` – is the ``AdminCenter`` extension installed, in what
   provisioning state, with which handler version and substatus messages;
2. ``inbound`` – does the Windows Admin Center port get through the subnet
   and NIC NSGs from ``client_ip`` (or from the virtual network), and if not,
   which rule stops it;
3. ``outbound.windows_admin_center`` / ``outbound.azure_active_directory`` –
   is TCP 443 to those service tags allowed, and if not, which rule stops it;
4. ``guest.*`` – inside the VM, through **one** Run Command: which gateway
   is installed (the modernized ``WindowsAdminCenter`` or the legacy
   ``ServerManagementGateway``), that gateway's service, its firewall rule
   (``WacInboundOpenException`` or ``SmeInboundOpenException``, Private and
   Public), ``https://localhost:<port>``, the service endpoint
   ``https://<region>.service.waconazure.com``, and the port
   (appsettings.json or ``SmePort``);
5. ``recent.vm_started`` / ``recent.nsg_changed`` – a VM started or an NSG
   changed within the last two minutes ("wait a minute and retry"); Azure
   gives no start time, so the VM half judges from the time of the VM's last
   operation (see :func:`~wac_azure._core.diagnosis.recent_vm_finding`);
6. ``probe`` (only with ``probe=True``) – a TLS connection from the caller
   to ``https://<ip>:<port>``;
7. ``support`` – where the logs are and what to attach to a support request.

A diagnosis only reads. Its one request that is not a GET is the Run Command
``POST .../runCommand`` of step 4, which runs a read-only script and changes
no Azure resource. It is made once, never retried: a busy VM (409) makes the
guest findings ``unknown`` rather than making the caller wait. Any step that
cannot run (VM stopped, Run Command busy, permission refused, timeout) is
``unknown`` with the reason, and the other steps still run.

About step 5's NSG half: ARM keeps no modification time on NSGs or rules,
and the activity log is out of scope here. What a diagnosis can know is
what *this session* has seen: every diagnosis remembers each NSG's ``etag``
(in ``session.cache``) with the time it was read. When a later diagnosis in
the same session sees a different ``etag``, the NSG changed between those two
reads; if the earlier read is less than two minutes old, the change is
certainly recent (``warn``), otherwise it may be (``warn`` with the window).
With no earlier read the finding is ``unknown`` and says so.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Awaitable
from typing import TypeVar

from wac_azure._azure.cache import CacheSlot
from wac_azure._azure.guest import run_guest_script
from wac_azure._azure.probe import probe_tls
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import read_service_tags
from wac_azure._core.diagnosis import (
    RECENT,
    SERVICE_TAGS,
    as_utc,
    extension_finding,
    format_hms,
    guest_findings,
    guest_unknown,
    inbound_finding,
    os_finding,
    outbound_findings,
    power_finding,
    probe_finding,
    reason_text,
    recent_vm_finding,
    support_finding,
    unknown_finding,
)
from wac_azure._core.errors import (
    AuthenticationError,
    NotFoundError,
    WacAzureError,
)
from wac_azure._core.facts import DEFAULT_PORT, VmFacts
from wac_azure._core.findings import Diagnosis, Finding, FindingStatus
from wac_azure._core.guest import GuestDiagnosis, parse_diagnosis
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg import ServiceTags
from wac_azure._core.validate import check_diagnose_options
from wac_azure._workflows.tracing import traced_vm

T = TypeVar("T")

_log = logging.getLogger(__name__)
#: Each NSG's etag as a diagnosis in this session last saw it, and when.
NSG_ETAGS: CacheSlot[dict[str, tuple[str | None, _dt.datetime]]] = CacheSlot("nsg etags seen")


async def _service_tags(session: AzureSession, facts: VmFacts) -> ServiceTags | None:
    """The service tags of the VM's location (read once per session); ``None`` if unreadable."""

    return await read_service_tags(session, facts.target.subscription_id, facts.location)


async def _run_guest(
    session: AzureSession, target: VmTarget, *, port: int, region: str | None
) -> tuple[GuestDiagnosis | None, str | None, str | None]:
    """One Run Command with the ``diagnose`` script, never retried: (result, reason, remedy)."""

    try:
        stdout, stderr = await run_guest_script(
            session, target, "diagnose", port=port, region=region, retry=False
        )
        return parse_diagnosis(stdout, stderr), None, None
    except WacAzureError as exc:
        if getattr(exc, "status", None) == 409 and "in progress" in str(exc).lower():
            return (
                None,
                "another Run Command is running on the VM (409: only one runs at a time)",
                "Wait a minute for it to finish, then diagnose again.",
            )
        return None, reason_text(exc), None


# --------------------------------------------------------------------------- entry point


@traced_vm("diagnose", follows_progress=False)  # one span per call
async def diagnose(
    session: AzureSession,
    target: VmTarget | str,
    *,
    client_ip: str | None = None,
    via: str = "private",
    probe: bool = False,
    timeout: float = 300.0,
    probe_timeout: float = 5.0,
    probe_address: tuple[str, int] | None = None,
    now: _dt.datetime | None = None,
) -> Diagnosis:
    """Run the troubleshooting checklist on one VM and report every finding.

    ``client_ip`` is the address your browser connects from (checked against
    the inbound rules; without it, private access is checked from the
    ``VirtualNetwork`` tag and public access from an arbitrary internet
    address). ``via`` is ``"private"`` (the VM's private IP) or ``"public"``.
    ``probe=True`` adds a TLS connection from this machine to
    ``https://<ip>:<port>`` bounded by ``probe_timeout``; ``probe_address``
    replaces ``(ip, port)`` for it (a tunnel or port forward). ``timeout``
    bounds the whole diagnosis; ``now`` fixes the clock for step 5 (tests).

    Reads only, plus one Run Command (see the module docs). Raises
    :class:`~wac_azure.VmNotFoundError` when the VM does not exist
    (:class:`~wac_azure.AuthenticationError` when the credential gets no token); every
    other failure becomes an ``unknown`` finding.
    """

    client_ip = check_diagnose_options(via, client_ip, timeout, probe_timeout, probe_address)
    if isinstance(target, str):
        target = VmTarget.parse(target)
    now = as_utc(now) if now is not None else _dt.datetime.now(_dt.UTC)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def left() -> float:
        return max(0.001, deadline - loop.time())

    findings: list[Finding] = []
    facts: VmFacts | None = None
    facts_error: str | None = None
    try:
        async with asyncio.timeout(left()):
            facts = await read_vm_facts(session, target)
    except (NotFoundError, AuthenticationError):
        raise  # nothing can be judged: no VM, or no token to read anything with
    except (TimeoutError, WacAzureError) as exc:
        facts_error = f"the VM could not be read: {reason_text(exc)}"
    _log.debug("diagnosing %s via %s", target, via)

    # 1. power state (only when not running: the first problem), operating system (only
    # when it is not Windows), then the extension
    stopped = power_finding(facts) if facts is not None else None
    if stopped is not None:
        findings.append(stopped)
    wrong_os = os_finding(facts) if facts is not None else None
    if wrong_os is not None:
        findings.append(wrong_os)
    findings.append(
        extension_finding(facts)
        if facts is not None
        else unknown_finding(1, "extension", "The extension was not checked", facts_error or "")
    )

    # 4. guest (before 2 and 3 need the port it reads)
    settings_port = facts.extension.port if facts and facts.extension else None
    guest: GuestDiagnosis | None = None
    run_commands = 0
    guest_reason: str | None = None
    guest_remedy: str | None = None
    if facts is not None and facts.power_state not in (None, "running"):
        guest_reason = f"the VM is {facts.power_state}: Run Command needs a running VM"
        guest_remedy = "Start the VM, wait a minute, then diagnose again."
    elif wrong_os is not None:
        guest_reason = (
            f"the VM runs {facts.os.describe() if facts else 'another OS'}; "
            "Windows Admin Center needs Windows"
        )
    elif facts is not None and facts.extension is None:
        guest_reason = "the extension is not installed, so there is nothing to check inside"
        guest_remedy = "Install the extension first (step 1)."
    else:
        run_commands = 1
    # The service tag list (for 2 and 3) is read while the Run Command runs.
    tags_task = (
        asyncio.ensure_future(_bounded(_service_tags(session, facts), left()))
        if facts is not None
        else None
    )
    if run_commands:
        try:
            async with asyncio.timeout(left()):
                guest, guest_reason, guest_remedy = await _run_guest(
                    session,
                    target,
                    port=settings_port or DEFAULT_PORT,
                    region=facts.location if facts is not None else None,
                )
        except TimeoutError as exc:
            guest_reason = f"the Run Command: {reason_text(exc)}"
            guest_remedy = "Diagnose again with a larger timeout=."
        except BaseException:
            if tags_task is not None:
                tags_task.cancel()
            raise
    port = (guest.port if guest else None) or settings_port or DEFAULT_PORT

    # 2, 3. network rules (pure, from the facts)
    tags: ServiceTags | None = None
    if facts is not None and tags_task is not None:
        try:
            tags = await tags_task
        except TimeoutError:
            tags = None
        findings.append(inbound_finding(facts, via=via, client_ip=client_ip, port=port, tags=tags))
        outbound = outbound_findings(facts, tags=tags)
    else:
        findings.append(
            unknown_finding(2, "inbound", "Inbound rules were not checked", facts_error or "")
        )
        outbound = [
            unknown_finding(3, code, f"Outbound 443 to {tag} was not checked", facts_error or "")
            for code, tag in SERVICE_TAGS
        ]
    findings += outbound
    wac_out = outbound[0].status
    outbound_ok = (
        True if wac_out is FindingStatus.OK else False if wac_out is FindingStatus.PROBLEM else None
    )
    if guest is not None:
        findings += guest_findings(guest, facts, port=port, outbound_ok=outbound_ok)
    else:
        findings += guest_unknown(guest_reason or "the Run Command did not run", guest_remedy)

    # 5. recent changes
    if facts is not None:
        findings.append(recent_vm_finding(facts, now))
        findings.append(_recent_nsg(session, facts, now))
    else:
        findings.append(
            unknown_finding(5, "recent.vm_started", "VM start time not checked", facts_error or "")
        )
        findings.append(
            unknown_finding(5, "recent.nsg_changed", "NSG changes not checked", facts_error or "")
        )

    # 6. probe
    address = _address(facts, via)
    if probe:
        host, probe_port = probe_address if probe_address else (address, port)
        if host is None:
            findings.append(
                unknown_finding(
                    6,
                    "probe",
                    "The TLS probe did not run",
                    f"the VM has no {via} IP address that could be read",
                )
            )
        else:
            try:
                async with asyncio.timeout(left() + 1):
                    result = await probe_tls(
                        host, int(probe_port), timeout=min(probe_timeout, left())
                    )
            except TimeoutError as exc:
                findings.append(
                    unknown_finding(6, "probe", "The TLS probe did not finish", reason_text(exc))
                )
            else:
                findings.append(probe_finding(result, now))

    # 7. support
    findings.append(support_finding(target, facts))
    findings.sort(key=lambda f: f.step)
    return Diagnosis(
        target=target,
        via=via,
        client_ip=client_ip,
        port=port,
        address=address,
        findings=tuple(findings),
        diagnosed_at=now,
        run_commands=run_commands,
    )


async def _bounded(coro: Awaitable[T], seconds: float) -> T:
    """``coro`` within ``seconds`` (:func:`asyncio.timeout`: a cancellation always propagates)."""
    async with asyncio.timeout(seconds):
        return await coro


def _address(facts: VmFacts | None, via: str) -> str | None:
    nic = facts.primary_nic if facts else None
    if nic is None:
        return None
    if via == "public":
        return next((p.address for p in nic.public_ips if p.address), None)
    return nic.private_ip


def _recent_nsg(session: AzureSession, facts: VmFacts, now: _dt.datetime) -> Finding:
    seen = session.cache.setdefault(NSG_ETAGS, None, {})
    changed: list[tuple[str, _dt.datetime]] = []
    first: list[str] = []
    for key, nsg in sorted(facts.nsgs.items()):
        before = seen.get(key)
        if before is None:
            first.append(nsg.name)
        elif before[0] != nsg.etag:
            changed.append((nsg.name, before[1]))
        seen[key] = (nsg.etag, now)
    details = {"nsgs": {k: n.etag for k, n in facts.nsgs.items()}}
    if changed:
        recent = [(n, t) for n, t in changed if now - t < RECENT]
        evidence = [
            f"NSG {n} changed after {format_hms(t)} (its etag differs from that read)"
            for n, t in changed
        ]
        since = min(t for _, t in changed)
        title = f"NSG {', '.join(n for n, _ in changed)} changed since {format_hms(since)}" + (
            ", less than two minutes ago" if recent else ""
        )
        return Finding(
            5,
            "recent.nsg_changed",
            FindingStatus.WARN,
            title,
            evidence,
            "Windows Admin Center takes about a minute to follow a network rule "
            f"change: wait a minute (until about {format_hms(now + _dt.timedelta(minutes=1))})"
            " and retry.",
            details,
        )
    if not facts.nsgs:
        return Finding(
            5, "recent.nsg_changed", FindingStatus.OK, "No NSG on the VM's path", (), None, details
        )
    if first:
        return unknown_finding(
            5,
            "recent.nsg_changed",
            "Whether an NSG rule changed in the last two minutes is not known",
            "ARM keeps no change time on NSG rules; this session had not seen "
            f"{', '.join(first)} before (their etags are remembered from now on, so a later "
            "diagnosis in this session detects a change). The subscription's activity log has "
            "the history.",
        )
    return Finding(
        5,
        "recent.nsg_changed",
        FindingStatus.OK,
        "No NSG changed since this session last read them",
        ["etags unchanged since the previous diagnosis in this session"],
        None,
        details,
    )
