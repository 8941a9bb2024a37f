"""diagnose(): break exactly one thing on an emulated VM and check the diagnosis names it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import wac_azure
from wac_azure import (
    AzureSession,
    ConfigurationError,
    Diagnosis,
    ExtensionInstallError,
    FindingStatus,
    InvalidInputError,
    VmNotFoundError,
    VmTarget,
    diagnose,
)
from wac_azure._azure.extension import ExtensionManager
from wac_azure.testing import ArmEmulator

from tests._tls import NOT_AFTER, closed_port, make_self_signed, tls_listener

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
LONG_AGO = NOW - dt.timedelta(hours=3)


def run_commands(emu: ArmEmulator) -> list[Any]:
    return [
        r for r in emu.requests if r.method == "POST" and r.path.lower().endswith("/runcommand")
    ]


def nsg_id(target: VmTarget, name: str | None = None) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{name or target.name + '-nsg'}"
    )


def rule(
    name: str,
    priority: int,
    *,
    direction: str = "Inbound",
    access: str = "Deny",
    port: str = "6516",
    source: str = "*",
    destination: str = "*",
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": access,
            "protocol": "Tcp",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": destination,
            "destinationPortRange": port,
        },
    }


async def healthy_vm(
    emu: ArmEmulator, session: AzureSession, name: str = "vm1", **kwargs: Any
) -> VmTarget:
    """A running VM, started long ago, with Windows Admin Center installed."""
    target = emu.add_windows_vm(name, **kwargs)
    emu.set_power_state(target, "running", started_at=LONG_AGO)
    await ExtensionManager(session).install(target)
    return target


def statuses(d: Diagnosis) -> dict[str, str]:
    return {f.code: f.status.value for f in d.findings}


# --------------------------------------------------------------------------- healthy


async def test_healthy_vm_has_no_problems_and_one_run_command(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    before = len(emu.requests)
    d = await diagnose(session, target, now=NOW)
    assert d.problems == (), str(d)
    assert d.ok
    assert d.port == 6516
    assert d.address == "10.0.0.4"
    codes = [f.code for f in d.findings]
    assert codes == [
        "extension",
        "inbound",
        "outbound.windows_admin_center",
        "outbound.azure_active_directory",
        "guest.service",
        "guest.firewall_rule",
        "guest.localhost",
        "guest.service_endpoint",
        "guest.port",
        "recent.vm_started",
        "recent.nsg_changed",
        "support",
    ]
    assert [f.step for f in d.findings] == sorted(f.step for f in d.findings)
    for code in codes[:10]:
        assert d.finding(code).status is FindingStatus.OK, str(d.finding(code))
    # First sight of the NSG in this session: honestly unknown.
    assert d.finding("recent.nsg_changed").status is FindingStatus.UNKNOWN
    # Reads only, plus exactly one Run Command.
    new = emu.requests[before:]
    writes = [r for r in new if r.is_write]
    assert len(writes) == 1
    assert writes[0].method == "POST"
    assert writes[0].path.lower().endswith("/runcommand")
    assert d.run_commands == 1


async def test_report_forms(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(session, target, now=NOW)
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["ok"] is True
    assert doc["counts"]["problem"] == 0
    assert doc["target"] == target.resource_id
    assert {f["code"] for f in doc["findings"]} >= {"extension", "inbound", "support"}
    text = str(d)
    assert text.splitlines()[0] == d.summary()
    assert "no problems found" in text
    page = d._repr_html_()
    assert page.startswith('<div class="wac-azure-diagnosis">')
    assert "<details" in page
    with pytest.raises(InvalidInputError, match="no finding 'nope'"):
        d.finding("nope")


async def test_support_finding_lists_logs_and_warns_about_traces(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(session, target, now=NOW)
    support = d.finding("support")
    text = " ".join(support.evidence)
    assert "C:\\WindowsAzure\\Logs\\Plugins\\AdminCenter" in text
    assert "C:\\Packages\\Plugins\\AdminCenter" in text
    assert "View Detailed Status" in text
    assert "passwords" in text
    # One text: the same locations ExtensionInstallError names.
    from wac_azure._core.extension import LOG_LOCATIONS

    assert all(loc in text for loc in LOG_LOCATIONS)
    assert support.details["log_locations"] == list(LOG_LOCATIONS)


# --------------------------------------------------------------------------- step 1


async def test_not_installed_is_a_problem_and_skips_the_guest(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("bare")
    emu.set_power_state(target, "running", started_at=LONG_AGO)
    d = await diagnose(session, target, now=NOW)
    ext = d.finding("extension")
    assert ext.status is FindingStatus.PROBLEM
    assert "not installed" in ext.title
    assert d.finding("guest.service").status is FindingStatus.UNKNOWN
    assert run_commands(emu) == []
    assert [f.code for f in d.problems] == ["extension"]


async def test_failed_extension_names_its_substatus(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("failing")
    emu.set_power_state(target, "running", started_at=LONG_AGO)
    emu.guest(target).outbound_blocked = True  # a proxy inside the VM blocks HTTPS
    with pytest.raises(ExtensionInstallError):
        await ExtensionManager(session).install(target)
    d = await diagnose(session, target, now=NOW)
    ext = d.finding("extension")
    assert ext.status is FindingStatus.PROBLEM
    assert "failed to install" in ext.title
    assert "provisioning state: Failed" in ext.evidence
    assert any("WindowsAdminCenter" in e for e in ext.evidence)
    assert ext.remedy is not None
    # The same hints as ExtensionInstallError (install_hints), not a second copy.
    from wac_azure._core.extension import install_hints

    assert install_hints(["WindowsAdminCenter"])[0] in ext.remedy
    assert "TCP 443" in ext.remedy
    # The NSGs allow 443; the guest cannot reach the service: step 4 says it is inside the VM.
    assert d.finding("outbound.windows_admin_center").status is FindingStatus.OK
    endpoint = d.finding("guest.service_endpoint")
    assert endpoint.status is FindingStatus.PROBLEM
    assert endpoint.remedy is not None
    assert "inside the VM" in endpoint.remedy


# --------------------------------------------------------------------------- step 1


async def test_a_linux_vm_leads_with_the_unsupported_os(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("tux", os="ubuntu-22.04")
    emu.set_power_state(target, "running", started_at=LONG_AGO)
    d = await diagnose(session, target, now=NOW)
    assert d.findings[0].code == "os"
    assert d.problems[0].code == "os"
    assert "Windows Admin Center runs only on Windows" in d.problems[0].title
    assert "ubuntu" in d.problems[0].title.lower()
    assert d.finding("extension").status is FindingStatus.PROBLEM
    assert "only on Windows" in (d.finding("extension").remedy or "")
    assert d.run_commands == 0
    assert "Windows" in d.finding("guest.service").evidence[0]


async def test_a_windows_vm_has_no_os_finding(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(session, target, now=NOW)
    assert "os" not in [f.code for f in d.findings]


# --------------------------------------------------------------------------- step 2


async def test_higher_priority_deny_is_named(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.add_rule(nsg_id(target), rule("AllowWac", 300, access="Allow"))
    emu.add_rule(nsg_id(target), rule("BlockWac", 200))
    d = await diagnose(session, target, now=NOW)
    inbound = d.finding("inbound")
    assert inbound.status is FindingStatus.PROBLEM
    assert "'BlockWac' (priority 200)" in inbound.title
    assert "vm1-nsg" in inbound.title
    assert any("'AllowWac' (priority 300)" in e for e in inbound.evidence)
    assert [f.code for f in d.problems] == ["inbound"]
    assert inbound.details["verdict"]["rule"] == "BlockWac"


async def test_client_ip_is_checked_against_a_restricted_public_rule(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session, public_ip=True)
    emu.add_rule(nsg_id(target), rule("PortForWAC", 310, access="Allow", source="203.0.113.7"))
    allowed = await diagnose(session, target, via="public", client_ip="203.0.113.7", now=NOW)
    assert allowed.finding("inbound").status is FindingStatus.OK
    assert allowed.address is not None
    assert allowed.address.startswith("20.")
    other = await diagnose(session, target, via="public", client_ip="198.51.100.9", now=NOW)
    blocked = other.finding("inbound")
    assert blocked.status is FindingStatus.PROBLEM
    assert "DenyAllInBound" in blocked.title
    assert "198.51.100.9" in (blocked.remedy or "")


async def test_public_access_without_public_ip(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(session, target, via="public", now=NOW)
    inbound = d.finding("inbound")
    assert inbound.status is FindingStatus.PROBLEM
    assert "no public IP" in inbound.title


# --------------------------------------------------------------------------- step 3


async def test_outbound_deny_to_windows_admin_center_is_named(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    emu.add_rule(
        nsg_id(target),
        rule("NoWac", 150, direction="Outbound", port="443", destination="WindowsAdminCenter"),
    )
    d = await diagnose(session, target, now=NOW)
    out = d.finding("outbound.windows_admin_center")
    assert out.status is FindingStatus.PROBLEM
    assert "'NoWac' (priority 150)" in out.title
    assert d.finding("outbound.azure_active_directory").status is FindingStatus.OK
    # The guest sees the consequence, and is pointed back at the rule.
    endpoint = d.finding("guest.service_endpoint")
    assert endpoint.status is FindingStatus.PROBLEM
    assert "step 3" in (endpoint.remedy or "")
    assert {f.code for f in d.problems} == {
        "outbound.windows_admin_center",
        "guest.service_endpoint",
    }


# --------------------------------------------------------------------------- step 4


GATEWAYS = [
    ("modern", "WindowsAdminCenter", "WacInboundOpenException"),
    ("legacy", "ServerManagementGateway", "SmeInboundOpenException"),
]


@pytest.mark.parametrize(("gateway", "service", "rule"), GATEWAYS)
async def test_healthy_vm_names_its_gateway_service_and_rule(
    emu: ArmEmulator, session: AzureSession, gateway: str, service: str, rule: str
) -> None:
    target = await healthy_vm(emu, session, gateway=gateway)
    d = await diagnose(session, target, now=NOW)
    assert d.problems == (), str(d)
    svc = d.finding("guest.service")
    assert service in svc.title
    assert f"{gateway} gateway" in svc.title
    assert svc.details["gateway"] == gateway
    assert f"gateway found: {gateway}" in svc.evidence
    fw = d.finding("guest.firewall_rule")
    assert fw.status is FindingStatus.OK
    assert rule in fw.title
    port = d.finding("guest.port")
    assert port.status is FindingStatus.OK
    assert port.details["gateway"] == gateway
    assert port.details["source"] == ("appsettings" if gateway == "modern" else "registry")
    assert gateway in port.title


async def test_service_probe_uses_the_regional_endpoint(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session, location="eastus")
    # The guest itself does not know its region: only the Region parameter names it.
    emu.guest(target).location = None
    d = await diagnose(session, target, now=NOW)
    endpoint = d.finding("guest.service_endpoint")
    assert endpoint.status is FindingStatus.OK
    assert "https://eastus.service.waconazure.com" in endpoint.title
    assert "wac.azure.com" not in str(d)


@pytest.mark.parametrize(("gateway", "service", "rule"), GATEWAYS)
async def test_stopped_service(
    emu: ArmEmulator, session: AzureSession, gateway: str, service: str, rule: str
) -> None:
    target = await healthy_vm(emu, session, gateway=gateway)
    emu.guest(target).services[service] = "Stopped"
    d = await diagnose(session, target, now=NOW)
    svc = d.finding("guest.service")
    assert svc.status is FindingStatus.PROBLEM
    assert f"{service} is Stopped" in svc.title
    assert f"Start-Service {service}" in (svc.remedy or "")
    # A stopped service does not answer on localhost either, as the guide predicts.
    assert {f.code for f in d.problems} == {"guest.service", "guest.localhost"}


@pytest.mark.parametrize(("gateway", "service", "rule"), GATEWAYS)
@pytest.mark.parametrize("profile", ["Public", "Private"])
async def test_firewall_rule_disabled_for_one_profile(
    emu: ArmEmulator, session: AzureSession, profile: str, gateway: str, service: str, rule: str
) -> None:
    target = await healthy_vm(emu, session, gateway=gateway)
    emu.guest(target).firewall_rules[rule].profiles.discard(profile)
    d = await diagnose(session, target, now=NOW)
    fw = d.finding("guest.firewall_rule")
    assert fw.status is FindingStatus.PROBLEM
    assert f"{rule} is not enabled for the {profile} profile" in fw.title
    assert [f.code for f in d.problems] == ["guest.firewall_rule"]


async def test_missing_registry_port(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session, gateway="legacy")
    emu.guest(target).registry.clear()
    d = await diagnose(session, target, now=NOW)
    assert d.finding("guest.port").status is FindingStatus.PROBLEM
    assert "SmePort" in d.finding("guest.port").title


async def test_missing_appsettings_port(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.guest(target).files.clear()
    d = await diagnose(session, target, now=NOW)
    port = d.finding("guest.port")
    assert port.status is FindingStatus.PROBLEM
    assert "appsettings.json" in port.title
    assert any("not found" in e for e in port.evidence)


async def test_run_command_busy_makes_only_step_4_unknown(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    emu.guest(target).run_command_busy = True
    emu.add_rule(nsg_id(target), rule("BlockWac", 200))
    d = await diagnose(session, target, now=NOW)
    for code in ("guest.service", "guest.firewall_rule", "guest.localhost", "guest.port"):
        f = d.finding(code)
        assert f.status is FindingStatus.UNKNOWN
        assert "another Run Command" in f.evidence[0]
    # The other steps still ran.
    assert d.finding("extension").status is FindingStatus.OK
    assert d.finding("inbound").status is FindingStatus.PROBLEM
    assert d.finding("recent.vm_started").status is FindingStatus.OK
    # One attempt, not retried.
    assert len(run_commands(emu)) == 1


async def test_run_command_refused_403(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.deny("Microsoft.Compute/virtualMachines/runCommand/action")
    d = await diagnose(session, target, now=NOW)
    f = d.finding("guest.service")
    assert f.status is FindingStatus.UNKNOWN
    assert "runCommand/action" in f.evidence[0]
    assert d.finding("extension").status is FindingStatus.OK


async def test_deallocated_vm_runs_no_command(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.set_power_state(target, "deallocated")
    d = await diagnose(session, target, now=NOW)
    assert d.run_commands == 0
    assert run_commands(emu) == []
    assert "deallocated" in d.finding("guest.service").evidence[0]
    assert d.finding("recent.vm_started").status is FindingStatus.UNKNOWN
    assert d.finding("inbound").status is FindingStatus.OK
    # A deallocated VM serves nothing: not ok, and the power state is the first problem.
    assert not d.ok
    assert d.problems[0].code == "vm.running"
    assert d.findings[0].code == "vm.running"
    assert "deallocated" in d.problems[0].title
    assert "az vm start" in (d.problems[0].remedy or "")
    assert str(d).splitlines()[1].startswith("[problem] 1. vm.running")


# --------------------------------------------------------------------------- step 5


async def test_vm_just_started(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.set_power_state(target, "running", started_at=NOW - dt.timedelta(seconds=20))
    d = await diagnose(session, target, now=NOW)
    f = d.finding("recent.vm_started")
    assert f.status is FindingStatus.WARN
    assert "2026-03-01 11:59:40 UTC" in f.title
    assert "wait a minute" in (f.remedy or "")
    assert "20 s ago" in f.evidence[0]
    assert d.problems == ()


async def test_nsg_change_seen_within_the_session(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    first = await diagnose(session, target, now=NOW)
    assert first.finding("recent.nsg_changed").status is FindingStatus.UNKNOWN
    same = await diagnose(session, target, now=NOW + dt.timedelta(seconds=10))
    assert same.finding("recent.nsg_changed").status is FindingStatus.OK
    emu.add_rule(nsg_id(target), rule("AllowWac", 300, access="Allow"))
    later = await diagnose(session, target, now=NOW + dt.timedelta(seconds=40))
    f = later.finding("recent.nsg_changed")
    assert f.status is FindingStatus.WARN
    assert "vm1-nsg" in f.title
    assert "less than two minutes ago" in f.title
    assert "wait a minute" in (f.remedy or "")


# --------------------------------------------------------------------------- step 6


async def test_probe_against_a_loopback_listener(
    emu: ArmEmulator, session: AzureSession, tmp_path: Path
) -> None:
    target = await healthy_vm(emu, session)
    cert, key = make_self_signed(tmp_path)
    async with tls_listener(cert, key) as port:
        d = await diagnose(session, target, probe=True, probe_address=("127.0.0.1", port), now=NOW)
    probe = d.finding("probe")
    assert probe.step == 6
    assert probe.status is FindingStatus.WARN
    assert "not trusted" in probe.title
    assert probe.details["certificate"]["self_signed"] is True


async def test_probe_reports_an_expired_certificate(
    emu: ArmEmulator, session: AzureSession, tmp_path: Path
) -> None:
    target = await healthy_vm(emu, session)
    cert, key = make_self_signed(tmp_path)
    later = NOT_AFTER + dt.timedelta(days=1)
    async with tls_listener(cert, key) as port:
        d = await diagnose(
            session, target, probe=True, probe_address=("127.0.0.1", port), now=later
        )
    probe = d.finding("probe")
    assert probe.status is FindingStatus.PROBLEM
    assert "expired" in probe.title


async def test_probe_refused(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(
        session, target, probe=True, probe_address=("127.0.0.1", closed_port()), now=NOW
    )
    probe = d.finding("probe")
    assert probe.status is FindingStatus.PROBLEM
    assert "refused" in probe.title
    assert [f.code for f in d.problems] == ["probe"]


async def test_no_probe_unless_asked(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    d = await diagnose(session, target, now=NOW)
    assert "probe" not in {f.code for f in d.findings}


# --------------------------------------------------------------------------- input


async def test_bad_options(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(ConfigurationError, match="via"):
        await diagnose(session, target, via="bastion")
    with pytest.raises(InvalidInputError, match="client_ip"):
        await diagnose(session, target, client_ip="my-laptop")
    with pytest.raises(ConfigurationError, match="timeout"):
        await diagnose(session, target, timeout=0)
    assert emu.requests == []


async def test_missing_vm_raises(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    missing = VmTarget.from_parts(
        wac_azure.testing.DEFAULT_SUBSCRIPTION, wac_azure.testing.DEFAULT_RESOURCE_GROUP, "ghost"
    )
    with pytest.raises(VmNotFoundError):
        await diagnose(session, missing)


async def test_html_escapes_azure_values(emu: ArmEmulator, session: AzureSession) -> None:
    target = await healthy_vm(emu, session)
    emu.guest(target).services["WindowsAdminCenter"] = "<b>Stopped</b>"
    d = await diagnose(session, target, now=NOW)
    page = d._repr_html_()
    assert "<b>Stopped</b>" not in page
    assert "&lt;b&gt;Stopped&lt;/b&gt;" in page


@pytest.mark.parametrize("gateway", ["modern", "legacy"])
async def test_guest_port_differs_from_settings(
    emu: ArmEmulator, session: AzureSession, gateway: str
) -> None:
    target = await healthy_vm(emu, session, gateway=gateway)
    guest = emu.guest(target)
    if gateway == "legacy":
        guest.registry["HKLM\\SOFTWARE\\Microsoft\\ServerManagementGateway"]["SmePort"] = "6600"
    else:
        path = next(iter(guest.files))
        guest.files[path] = guest.files[path].replace("https://*:6516", "https://+:6600")
    d = await diagnose(session, target, now=NOW)
    port = d.finding("guest.port")
    assert port.status is FindingStatus.WARN
    assert "6600" in port.title
    assert "6516" in port.title
    # The port the gateway really listens on is the one checked against the NSGs.
    assert d.port == 6600
    assert "6600" in d.finding("inbound").title


async def test_standard_public_ip_without_any_nsg_is_closed(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session, public_ip=True, nsg=None)
    d = await diagnose(session, target, via="public", client_ip="203.0.113.7", now=NOW)
    inbound = d.finding("inbound")
    assert inbound.status is FindingStatus.PROBLEM
    assert "Standard public IP" in inbound.title
    # Privately, with no NSG, everything is allowed.
    private = await diagnose(session, target, now=NOW)
    assert private.finding("inbound").status is FindingStatus.OK


async def test_unreadable_network_makes_steps_unknown_not_fatal(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    emu.deny("Microsoft.Network/networkInterfaces/read")
    d = await diagnose(session, target, now=NOW)
    for code in ("extension", "inbound", "outbound.windows_admin_center", "recent.vm_started"):
        f = d.finding(code)
        assert f.status is FindingStatus.UNKNOWN, str(f)
        assert "networkInterfaces/read" in f.evidence[0]
    # The guest checks do not need the network reads.
    assert d.finding("guest.service").status is FindingStatus.OK
    assert d.finding("support").status is FindingStatus.OK


async def test_unreadable_appsettings_is_a_port_problem(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    guest = emu.guest(target)
    path = next(iter(guest.files))
    guest.files[path] = "{ not json"
    d = await diagnose(session, target, now=NOW)
    port = d.finding("guest.port")
    assert port.status is FindingStatus.PROBLEM
    assert any("unreadable" in e for e in port.evidence)
    assert d.finding("guest.service").status is FindingStatus.OK


async def test_a_url_without_a_port_makes_the_guest_findings_unknown(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    guest = emu.guest(target)
    path = next(iter(guest.files))
    guest.files[path] = guest.files[path].replace("https://*:6516", "https://*")
    d = await diagnose(session, target, now=NOW)
    for code in ("guest.service", "guest.port"):
        f = d.finding(code)
        assert f.status is FindingStatus.UNKNOWN
        assert "names no port" in f.evidence[0]
    assert d.finding("extension").status is FindingStatus.OK
