"""The pure requirement checks on hand-built VmFacts: every check's outcomes."""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pytest

from wac_azure import CheckStatus, InvalidInputError, OsInfo
from wac_azure._core.access import PrivateAccess, PublicAccess
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.findings import CHECK_CODES

from .build import NIC_NSG, NOW, SUBNET, SUBNET_NSG, admin_center, facts, nic, nsg, os_2022, rule

PASS, FAIL, WARN, UNKNOWN = (
    CheckStatus.PASS,
    CheckStatus.FAIL,
    CheckStatus.WARN,
    CheckStatus.UNKNOWN,
)


def status(code: str, **kw: object) -> CheckStatus:
    access = kw.pop("access", None)
    tags = kw.pop("service_tags", None)
    return evaluate_requirements(facts(**kw), access=access, service_tags=tags).check(code).status  # type: ignore[arg-type]


def test_healthy_vm_passes_every_check_in_stable_order() -> None:
    report = evaluate_requirements(facts())
    assert [c.code for c in report.checks] == list(CHECK_CODES)
    assert {c.status for c in report.checks} == {PASS}
    assert report.passed
    assert not report.failed


# -- os.supported ----------------------------------------------------------------------------


def server(release: str | None, build: int | None = None, source: str = "imageReference") -> OsInfo:
    return OsInfo(family="windows", kind="server", release=release, build=build, source=source)


@pytest.mark.parametrize(
    ("os", "want"),
    [
        (server("2016"), PASS),
        (server("2019"), PASS),
        (server("2022"), PASS),
        (server("2025"), PASS),
        (server("2012-R2"), FAIL),
        (server("2008-R2"), FAIL),
        (server(None, 17763, "instanceView"), PASS),
        (server(None, 9600, "instanceView"), FAIL),
        (server(None), UNKNOWN),
        (OsInfo(family="linux", source="imageReference"), FAIL),
        (OsInfo(family="windows", kind="client", release="11", source="imageReference"), WARN),
        (OsInfo(family="windows", kind="client", release="10", source="imageReference"), WARN),
        (OsInfo(family="windows", kind="client", release="7", source="imageReference"), FAIL),
        (OsInfo(family="windows", kind="client", source="imageReference"), UNKNOWN),
        (OsInfo(family="windows", source="osDisk"), UNKNOWN),
        (OsInfo(), UNKNOWN),
    ],
)
def test_os_outcomes(os: OsInfo, want: CheckStatus) -> None:
    assert status("os.supported", os=os) is want


def test_2025_is_newer_than_the_docs() -> None:
    check = evaluate_requirements(facts(os=server("2025"))).check("os.supported")
    assert check.status is PASS
    assert "newer than Windows Server 2022" in check.message


def test_2012_r2_fails_with_a_remedy() -> None:
    check = evaluate_requirements(facts(os=server("2012-R2"))).check("os.supported")
    assert "2016 or newer" in check.message
    assert check.remedy
    assert "upgrade" in check.remedy


def test_windows_11_passes_once_the_extension_is_new_enough() -> None:
    client = OsInfo(family="windows", kind="client", release="11", source="instanceView")
    old = admin_center(handler_version="0.24.0.0")
    assert status("os.supported", os=client, extension=old) is WARN
    new = admin_center(handler_version="0.31.0.0")
    assert status("os.supported", os=client, extension=new) is PASS
    check = evaluate_requirements(facts(os=client)).check("os.supported")
    assert "0.31.0.0" in check.message


def test_unknown_os_says_how_to_find_out() -> None:
    check = evaluate_requirements(
        facts(os=OsInfo(evidence=("imageReference is a custom image (x)",)))
    ).check("os.supported")
    assert check.status is UNKNOWN
    assert "custom image" in check.message
    assert check.remedy
    assert "osName" in check.remedy


# -- memory.minimum --------------------------------------------------------------------------


def test_b1ms_fails_with_the_evidence() -> None:
    check = evaluate_requirements(facts(size="Standard_B1ms", memory_mib=2048)).check(
        "memory.minimum"
    )
    assert check.status is FAIL
    assert (
        check.message == "Standard_B1ms has 2048 MiB; Windows Admin Center needs at least 3072 MiB"
    )
    assert check.remedy
    assert "resize" in check.remedy


@pytest.mark.parametrize(
    ("mib", "want"), [(3584, PASS), (3072, PASS), (3071, FAIL), (None, UNKNOWN)]
)
def test_memory_outcomes(mib: int | None, want: CheckStatus) -> None:
    assert status("memory.minimum", memory_mib=mib) is want


# -- cloud.public ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "location", "want"),
    [
        ("AzurePublicCloud", "westeurope", PASS),
        ("AzureChinaCloud", "chinaeast2", FAIL),
        ("AzureUSGovernment", "usgovvirginia", FAIL),
        ("Unknown", "westeurope", UNKNOWN),
    ],
)
def test_cloud_outcomes(cloud: str, location: str, want: CheckStatus) -> None:
    assert status("cloud.public", cloud=cloud, location=location) is want


# -- vm.running, vm.agent_ready, vm.recently_started -----------------------------------------


@pytest.mark.parametrize(
    ("state", "want"),
    [
        ("running", PASS),
        ("deallocated", FAIL),
        ("stopped", FAIL),
        ("starting", WARN),
        (None, UNKNOWN),
    ],
)
def test_power_outcomes(state: str | None, want: CheckStatus) -> None:
    assert status("vm.running", power_state=state) is want


def test_deallocated_says_how_to_start() -> None:
    check = evaluate_requirements(facts(power_state="deallocated", started_at=None)).check(
        "vm.running"
    )
    assert check.remedy
    assert "az vm start --resource-group rg --name vm" in check.remedy


@pytest.mark.parametrize(
    ("agent", "state", "want"),
    [
        ("Ready", "running", PASS),
        ("Not Ready", "running", FAIL),
        (None, "running", UNKNOWN),
        (None, "deallocated", UNKNOWN),
    ],
)
def test_agent_outcomes(agent: str | None, state: str, want: CheckStatus) -> None:
    assert status("vm.agent_ready", agent_status=agent, power_state=state) is want


@pytest.mark.parametrize(
    ("age", "state", "want"),
    [
        (20, "running", WARN),
        (59, "running", WARN),
        (60, "running", PASS),
        (7200, "running", PASS),
        (None, "running", UNKNOWN),  # no start time: never a pass
        (None, "deallocated", UNKNOWN),
    ],
)
def test_recently_started_outcomes(age: int | None, state: str, want: CheckStatus) -> None:
    started = None if age is None else NOW - dt.timedelta(seconds=age)
    assert status("vm.recently_started", started_at=started, power_state=state) is want


def test_no_start_time_is_unknown_and_says_how_to_find_out() -> None:
    check = evaluate_requirements(facts(started_at=None)).check("vm.recently_started")
    assert check.status is UNKNOWN
    assert check.remedy is not None
    assert "get-instance-view" in check.remedy


def test_started_20_seconds_ago_says_about_a_minute() -> None:
    f = facts(started_at=NOW - dt.timedelta(seconds=20))
    check = evaluate_requirements(f).check("vm.recently_started")
    assert "20 s ago" in check.message
    assert "about a minute" in check.message
    later = evaluate_requirements(f, now=NOW + dt.timedelta(minutes=5)).check("vm.recently_started")
    assert later.status is PASS


# -- network.outbound_wac / network.outbound_entra -------------------------------------------


def deny_out(name: str, dest: str, prio: int = 200) -> dict[str, object]:
    return rule(name, prio, direction="Outbound", access="Deny", destination=dest, port="443")


def test_outbound_denied_by_nic_rule_fails_naming_rule_and_nsg() -> None:
    f = facts(nsgs={NIC_NSG: nsg(NIC_NSG, deny_out("BlockInternet", "Internet"))})
    report = evaluate_requirements(f)
    check = report.check("network.outbound_wac")
    assert check.status is FAIL
    assert "BlockInternet" in check.message
    assert "vm-nsg" in check.message
    assert "priority 200" in check.message
    assert report.check("network.outbound_entra").status is FAIL
    assert not report.passed


TAGS = {"WindowsAdminCenter": ["20.1.2.0/24"], "AzureActiveDirectory": ["40.1.0.0/16"]}


def test_tag_rules_for_other_tags_need_the_service_tags() -> None:
    f = facts(nsgs={NIC_NSG: nsg(NIC_NSG, deny_out("NoAad", "AzureActiveDirectory"))})
    check = evaluate_requirements(f).check("network.outbound_wac")
    assert check.status is UNKNOWN
    assert check.remedy
    assert "service tags" in check.remedy


def test_outbound_denied_by_subnet_nsg() -> None:
    f = facts(
        nics=(nic(subnet_nsg_id=SUBNET_NSG),),
        nsgs={
            NIC_NSG: nsg(NIC_NSG),
            SUBNET_NSG: nsg(SUBNET_NSG, deny_out("NoWac", "WindowsAdminCenter")),
        },
    )
    report = evaluate_requirements(f, service_tags=TAGS)
    wac = report.check("network.outbound_wac")
    assert wac.status is FAIL
    assert "subnet-nsg" in wac.message
    assert report.check("network.outbound_entra").status is PASS


def test_entra_alone_can_be_blocked() -> None:
    f = facts(nsgs={NIC_NSG: nsg(NIC_NSG, deny_out("NoAad", "AzureActiveDirectory"))})
    report = evaluate_requirements(f, service_tags=TAGS)
    assert report.check("network.outbound_wac").status is PASS
    assert report.check("network.outbound_entra").status is FAIL


def test_outbound_deny_by_cidr_needs_service_tags() -> None:
    f = facts(nsgs={NIC_NSG: nsg(NIC_NSG, deny_out("DenyRange", "20.0.0.0/8"))})
    assert evaluate_requirements(f).check("network.outbound_wac").status is UNKNOWN
    report = evaluate_requirements(f, service_tags=TAGS)
    assert report.check("network.outbound_wac").status is FAIL
    assert report.check("network.outbound_entra").status is PASS


def test_no_nsg_at_all_allows_outbound() -> None:
    assert status("network.outbound_wac", nics=(nic(nsg_id=None),), nsgs={}) is PASS


def test_unreadable_nsg_is_unknown() -> None:
    check = evaluate_requirements(facts(nsgs={})).check("network.outbound_wac")
    assert check.status is UNKNOWN
    assert "could not be read" in check.message


def test_no_nic_is_unknown() -> None:
    assert status("network.outbound_wac", nics=(), nsgs={}) is UNKNOWN
    assert status("network.inbound_path", nics=(), nsgs={}) is UNKNOWN
    assert status("network.exposure", nics=(), nsgs={}) is UNKNOWN


# -- network.inbound_path --------------------------------------------------------------------


def test_private_access_default_rules_pass() -> None:
    check = evaluate_requirements(facts(), access=PrivateAccess()).check("network.inbound_path")
    assert check.status is PASS
    assert "VirtualNetwork" in check.message


def test_private_access_denied_by_a_custom_rule_fails() -> None:
    block = rule("DenyWac", 300, access="Deny", source="VirtualNetwork", port="6516")
    check = evaluate_requirements(facts(nsgs={NIC_NSG: nsg(NIC_NSG, block)})).check(
        "network.inbound_path"
    )
    assert check.status is FAIL
    assert "DenyWac" in check.message


def test_private_cidr_outside_the_vnet_is_a_warning_the_plan_fixes() -> None:
    check = evaluate_requirements(
        facts(), access=PrivateAccess(sources=("192.168.10.0/24",))
    ).check("network.inbound_path")
    assert check.status is WARN
    assert check.remedy
    assert "PortForWAC" in check.remedy


def test_public_access_without_public_ip_fails() -> None:
    check = evaluate_requirements(facts(), access=PublicAccess(["203.0.113.7"])).check(
        "network.inbound_path"
    )
    assert check.status is FAIL
    assert "public IP" in check.message


def test_public_access_not_yet_allowed_warns() -> None:
    f = facts(nics=(nic(public_ip="20.1.1.1"),))
    check = evaluate_requirements(f, access=PublicAccess(["203.0.113.7"])).check(
        "network.inbound_path"
    )
    assert check.status is WARN


def test_public_access_allowed_passes() -> None:
    allow = rule("PortForWAC", 100, source="203.0.113.7", port="6516")
    f = facts(nics=(nic(public_ip="20.1.1.1"),), nsgs={NIC_NSG: nsg(NIC_NSG, allow)})
    report = evaluate_requirements(f, access=PublicAccess(["203.0.113.7"]))
    assert report.check("network.inbound_path").status is PASS
    assert report.check("network.exposure").status is PASS


def test_public_access_standard_ip_without_any_nsg_fails() -> None:
    f = facts(nics=(nic(nsg_id=None, public_ip="20.1.1.1"),), nsgs={})
    check = evaluate_requirements(f, access=PublicAccess(["203.0.113.7"])).check(
        "network.inbound_path"
    )
    assert check.status is FAIL
    assert "create_nsg=True" in (check.remedy or "")


def test_public_access_denied_by_subnet_rule_fails() -> None:
    block = rule("DenyMgmt", 150, access="Deny", source="203.0.113.0/24", port="6516")
    f = facts(
        nics=(nic(public_ip="20.1.1.1", subnet_nsg_id=SUBNET_NSG),),
        nsgs={NIC_NSG: nsg(NIC_NSG), SUBNET_NSG: nsg(SUBNET_NSG, block)},
    )
    check = evaluate_requirements(f, access=PublicAccess(["203.0.113.7"])).check(
        "network.inbound_path"
    )
    assert check.status is FAIL
    assert "DenyMgmt" in check.message
    assert "subnet-nsg" in check.message


# -- network.exposure ------------------------------------------------------------------------


def open_rule() -> dict[str, object]:
    return rule("OpenWac", 110, source="*", port="6516")


def test_port_open_to_everyone_with_a_public_ip_fails() -> None:
    f = facts(nics=(nic(public_ip="20.1.1.1"),), nsgs={NIC_NSG: nsg(NIC_NSG, open_rule())})
    check = evaluate_requirements(f).check("network.exposure")
    assert check.status is FAIL
    assert "OpenWac" in check.message


def test_open_port_without_public_ip_is_not_exposed() -> None:
    f = facts(nsgs={NIC_NSG: nsg(NIC_NSG, open_rule())})
    assert evaluate_requirements(f).check("network.exposure").status is PASS


def test_open_port_behind_a_load_balancer_is_exposed() -> None:
    f = facts(nics=(nic(pools=("lb-pool",)),), nsgs={NIC_NSG: nsg(NIC_NSG, open_rule())})
    assert evaluate_requirements(f).check("network.exposure").status is FAIL


def test_anywhere_access_is_a_warning() -> None:
    f = facts(nics=(nic(public_ip="20.1.1.1"),))
    check = evaluate_requirements(f, access=PublicAccess.anywhere(acknowledge_risk=True)).check(
        "network.exposure"
    )
    assert check.status is WARN


@pytest.mark.parametrize(("sku", "want"), [("Basic", FAIL), ("Standard", PASS)])
def test_public_ip_without_nsg(sku: str, want: CheckStatus) -> None:
    f = facts(nics=(nic(nsg_id=None, public_ip="20.1.1.1", sku=sku),), nsgs={})
    assert evaluate_requirements(f).check("network.exposure").status is want


# -- extension.conflict ----------------------------------------------------------------------


def test_extension_outcomes() -> None:
    assert status("extension.conflict") is PASS
    assert status("extension.conflict", extension=admin_center()) is PASS
    assert status("extension.conflict", extension=admin_center(provisioning_state="Failed")) is WARN
    assert status("extension.conflict", extension=admin_center(port=443)) is WARN
    wrong = admin_center(publisher="Contoso", type="Gateway")
    assert status("extension.conflict", extension=wrong) is FAIL
    other = admin_center(name="WAC")
    check = evaluate_requirements(facts(other_extensions=(other,))).check("extension.conflict")
    assert check.status is FAIL
    assert "WAC" in check.message
    assert "--vm-name vm --name WAC" in (check.remedy or "")


def test_hand_install_is_mentioned() -> None:
    check = evaluate_requirements(facts()).check("extension.conflict")
    assert "by hand" in check.message


# -- connect.bastion -------------------------------------------------------------------------


def test_bastion_outcomes() -> None:
    info = evaluate_requirements(facts()).check("connect.bastion")
    assert info.status is PASS
    assert "not supported" in info.message
    sub = f"{SUBNET.rsplit('/', 1)[0]}/AzureBastionSubnet"
    assert status("connect.bastion", bastion_subnets=(sub,)) is WARN


# -- the report ------------------------------------------------------------------------------


def test_passed_and_failed() -> None:
    failing = evaluate_requirements(facts(memory_mib=1024))
    assert not failing.passed
    assert failing.failed
    assert failing.status is FAIL
    assert [c.code for c in failing.failures] == ["memory.minimum"]
    unknown = evaluate_requirements(facts(memory_mib=None))
    assert not unknown.passed
    assert not unknown.failed
    assert unknown.status is UNKNOWN
    warned = evaluate_requirements(facts(started_at=NOW))
    assert warned.passed
    assert warned.status is WARN


def test_report_forms() -> None:
    evil = attrs.evolve(os_2022(), name="<script>alert(1)</script>")
    report = evaluate_requirements(facts(os=evil, memory_mib=2048, size="Standard_B1ms"))
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["passed"] is False
    assert data["counts"]["fail"] == 1
    text = str(report)
    assert "memory.minimum" in text
    assert "remedy:" in text
    assert text.splitlines()[0].startswith("vm: requirements FAILED")
    page = report._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.index("FAILED") < page.index("<details>")


def test_unknown_code_and_bad_input() -> None:
    report = evaluate_requirements(facts())
    assert "os.supported" in report
    with pytest.raises(InvalidInputError, match="no check"):
        report.check("nope")
    with pytest.raises(InvalidInputError):
        evaluate_requirements("vm")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        evaluate_requirements(facts(), port=0)


def test_port_follows_the_caller() -> None:
    allow = rule("Other", 100, source="*", port="8443")
    f = facts(nics=(nic(public_ip="20.1.1.1"),), nsgs={NIC_NSG: nsg(NIC_NSG, allow)})
    assert evaluate_requirements(f, port=8443).check("network.exposure").status is FAIL
    assert evaluate_requirements(f, port=6516).check("network.exposure").status is PASS


def test_the_report_keeps_its_documented_order() -> None:
    from wac_azure._core.checks import registered_checks

    assert registered_checks() == (
        "os.supported",
        "memory.minimum",
        "cloud.public",
        "vm.running",
        "vm.agent_ready",
        "vm.recently_started",
        "network.outbound_wac",
        "network.outbound_entra",
        "network.source_family",
        "network.inbound_path",
        "network.exposure",
        "extension.conflict",
        "connect.bastion",
    )
