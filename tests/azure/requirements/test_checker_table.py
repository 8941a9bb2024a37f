"""RequirementChecker against emulated VMs: one table over every case the issue lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from wac_azure import (
    AzureSession,
    CheckStatus,
    RequirementChecker,
    VmTarget,
    read_vm_facts,
)
from wac_azure._core.access import PublicAccess
from wac_azure.testing import ArmEmulator

PASS, FAIL, WARN, UNKNOWN = "pass", "fail", "warn", "unknown"


def _custom_image(emu: ArmEmulator, t: VmTarget, view: dict[str, Any] | None) -> None:
    """Turn a built VM into one made from a custom image (only an image id)."""
    doc = emu.resource(t.resource_id)
    storage = doc["properties"]["storageProfile"]
    storage["imageReference"] = {
        "id": f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        "/providers/Microsoft.Compute/images/golden"
    }
    storage["osDisk"].pop("osType", None)
    if view is not None:
        doc["properties"]["instanceView"] = view
    emu.seed(doc)


AGENT = {
    "vmAgentVersion": "2.7.41491.1141",
    "statuses": [
        {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}
    ],
}
RUNNING = [{"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]


def os_name_only(emu: ArmEmulator, t: VmTarget) -> None:
    _custom_image(
        emu,
        t,
        {
            "osName": "Windows Server 2019 Datacenter",
            "osVersion": "10.0.17763.6414",
            "vmAgent": AGENT,
            "statuses": RUNNING,
        },
    )


def no_os_info(emu: ArmEmulator, t: VmTarget) -> None:
    _custom_image(emu, t, {"vmAgent": AGENT, "statuses": RUNNING})


def just_started(emu: ArmEmulator, t: VmTarget) -> None:
    emu.set_power_state(t, "running", started_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20))


def deny_wac_on_subnet(emu: ArmEmulator, t: VmTarget) -> None:
    nsg = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        "/providers/Microsoft.Network/networkSecurityGroups/vnet-westeurope-default-nsg"
    )
    emu.add_rule(
        nsg,
        {
            "name": "DenyInternetOut",
            "properties": {
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "*",
                "access": "Deny",
                "priority": 300,
                "direction": "Outbound",
            },
        },
    )


def open_port(emu: ArmEmulator, t: VmTarget) -> None:
    nsg = (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{t.name}-nsg"
    )
    emu.add_rule(
        nsg,
        {
            "name": "PortForWAC",
            "properties": {
                "protocol": "Tcp",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "6516",
                "access": "Allow",
                "priority": 100,
                "direction": "Inbound",
            },
        },
    )


@attrs.frozen
class Case:
    id: str
    build: dict[str, Any] = attrs.field(factory=dict)
    expect: dict[str, str] = attrs.field(factory=dict)
    mutate: Callable[[ArmEmulator, VmTarget], None] | None = None
    access: Any = None
    message: dict[str, str] = attrs.field(factory=dict)
    nics: int | None = None
    nsg_count: int | None = None


CASES = [
    Case(
        "ws2012r2",
        {"os": "2012-R2"},
        {"os.supported": FAIL},
        message={"os.supported": "2016 or newer"},
    ),
    Case("ws2016", {"os": "2016"}, {"os.supported": PASS}),
    Case("ws2019", {"os": "2019"}, {"os.supported": PASS}),
    Case(
        "ws2022",
        {"os": "2022"},
        {
            c: PASS
            for c in (
                "os.supported",
                "memory.minimum",
                "cloud.public",
                "vm.running",
                "vm.agent_ready",
                "vm.recently_started",
                "network.outbound_wac",
                "network.outbound_entra",
                "network.inbound_path",
                "network.exposure",
                "extension.conflict",
                "connect.bastion",
            )
        },
    ),
    Case("ws2025", {"os": "2025"}, {"os.supported": PASS}, message={"os.supported": "newer than"}),
    Case(
        "windows-11",
        {"os": "windows-11"},
        {"os.supported": WARN},
        message={"os.supported": "0.31.0.0"},
    ),
    Case(
        "custom-os-name",
        {"os": "2019"},
        {"os.supported": PASS},
        mutate=os_name_only,
        message={"os.supported": "instanceView"},
    ),
    Case("custom-no-os", {"os": "2019"}, {"os.supported": UNKNOWN}, mutate=no_os_info),
    Case("linux", {"os": "ubuntu-22.04"}, {"os.supported": FAIL}),
    Case(
        "b1ms",
        {"size": "Standard_B1ms"},
        {"memory.minimum": FAIL},
        message={
            "memory.minimum": (
                "Standard_B1ms has 2048 MiB; Windows Admin Center needs at least 3072 MiB"
            )
        },
    ),
    Case(
        "ds1v2",
        {"size": "Standard_DS1_v2"},
        {"memory.minimum": PASS},
        message={"memory.minimum": "3584 MiB"},
    ),
    Case(
        "china",
        {"location": "chinaeast2"},
        {"cloud.public": FAIL},
        message={"cloud.public": "AzureChinaCloud"},
    ),
    Case(
        "usgov",
        {"location": "usgovvirginia"},
        {"cloud.public": FAIL},
        message={"cloud.public": "AzureUSGovernment"},
    ),
    Case(
        "deallocated",
        {"power_state": "deallocated"},
        {"vm.running": FAIL, "vm.agent_ready": UNKNOWN},
    ),
    Case(
        "started-20s",
        {},
        {"vm.recently_started": WARN, "vm.running": PASS},
        mutate=just_started,
        message={"vm.recently_started": "about a minute"},
    ),
    Case(
        "two-nics",
        {"nics": 2},
        {"network.outbound_wac": PASS, "network.inbound_path": PASS},
        nics=2,
        nsg_count=1,
    ),
    Case(
        "nsg-nic",
        {"nsg": "nic"},
        {"network.outbound_wac": PASS, "network.inbound_path": PASS},
        nsg_count=1,
    ),
    Case(
        "nsg-subnet",
        {"nsg": "subnet"},
        {"network.outbound_wac": PASS, "network.inbound_path": PASS},
        nsg_count=1,
    ),
    Case(
        "nsg-both",
        {"nsg": "both"},
        {"network.outbound_wac": PASS, "network.inbound_path": PASS},
        nsg_count=2,
    ),
    Case(
        "nsg-none",
        {"nsg": None},
        {"network.outbound_wac": PASS, "network.inbound_path": PASS, "network.exposure": PASS},
        nsg_count=0,
    ),
    Case(
        "subnet-deny",
        {"nsg": "both"},
        {"network.outbound_wac": FAIL, "network.outbound_entra": FAIL},
        mutate=deny_wac_on_subnet,
        message={"network.outbound_wac": "DenyInternetOut"},
    ),
    Case(
        "public-not-open",
        {"public_ip": True},
        {"network.inbound_path": WARN, "network.exposure": PASS},
        access=PublicAccess(["203.0.113.7"]),
    ),
    Case(
        "public-open-to-all",
        {"public_ip": True},
        {"network.inbound_path": PASS, "network.exposure": FAIL},
        mutate=open_port,
        access=PublicAccess(["203.0.113.7"]),
        message={"network.exposure": "PortForWAC"},
    ),
    Case("public-no-ip", {}, {"network.inbound_path": FAIL}, access=PublicAccess(["203.0.113.7"])),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_checker_table(emu: ArmEmulator, session: AzureSession, case: Case) -> None:
    t = emu.add_windows_vm(f"vm-{case.id}"[:15].rstrip("-"), **case.build)
    if case.mutate is not None:
        case.mutate(emu, t)
    report = await RequirementChecker(session).check(t, access=case.access)
    got = {code: report.check(code).status.value for code in case.expect}
    assert got == case.expect, str(report)
    for code, text in case.message.items():
        assert text in report.check(code).message, str(report)
    if any(s == FAIL for s in case.expect.values()):
        assert not report.passed
        assert report.failed
    if any(s == UNKNOWN for s in case.expect.values()):
        assert not report.passed
    facts = report.facts
    assert facts is not None
    if case.nics is not None:
        assert len(facts.nics) == case.nics
        assert facts.primary_nic is facts.nics[0]
    if case.nsg_count is not None:
        assert len(facts.nsgs) == case.nsg_count


async def test_no_os_info_is_unknown_not_pass(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("custom")
    no_os_info(emu, t)
    report = await RequirementChecker(session).check(t)
    check = report.check("os.supported")
    assert check.status is CheckStatus.UNKNOWN
    assert "golden" in check.message
    assert not report.passed
    assert not report.failed


async def test_facts_record_nsgs_on_nic_and_subnet(emu: ArmEmulator, session: AzureSession) -> None:
    t = emu.add_windows_vm("both", nsg="both", public_ip=True)
    facts = await read_vm_facts(session, t)
    nic = facts.primary_nic
    assert nic is not None
    assert nic.nsg_id is not None
    assert nic.nsg_id.endswith("/both-nsg")
    assert nic.subnet_nsg_id is not None
    assert nic.subnet_nsg_id.endswith("/vnet-westeurope-default-nsg")
    assert facts.nsg(nic.nsg_id) is not None
    assert facts.nsg(nic.subnet_nsg_id.upper()) is not None
    assert facts.vnet_prefixes == ("10.0.0.0/16",)
    assert nic.public_ips[0].sku == "Standard"
    assert nic.public_ips[0].address
    assert facts.memory_mib == 8192
    assert facts.cloud == "AzurePublicCloud"
    assert facts.agent_status == "Ready"
    assert facts.extension is None
