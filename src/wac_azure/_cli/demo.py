"""The lifecycle demo (``wac-azure demo``) on the embedded ARM emulator.

Four VMs, each taken through check → plan → enable → port → URL → disable
with the real Azure SDK clients against the in-process emulator:

* ``web-01`` – Windows Server 2022, private access: just works;
* ``legacy-01`` – Windows Server 2012 R2 on a 1 GiB size: refused, with the report;
* ``locked-01`` – its NSG denies outbound Internet and inbound 6516 at low
  priorities: the planner adds allow rules at free priorities in front of them;
* ``public-01`` – a public IP, reachable only from 203.0.113.10 (a
  documentation address).

The same scenario backs ``wac-azure <verb> --emulator``, plus ``app-01``
(Windows Server 2022) on which Windows Admin Center is already enabled, so
that ``status``, ``port``, ``url`` and ``disable`` have something to show.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

import attrs

from wac_azure import (
    ExtensionManager,
    NetworkRulePlanner,
    PrivateAccess,
    PublicAccess,
    RequirementChecker,
    RequirementsNotMetError,
    VmTarget,
    WacAzureError,
    disable,
    enable,
)
from wac_azure._cli.output import snake
from wac_azure._core.decide import PLANNABLE_CHECKS
from wac_azure.testing import ArmEmulator

#: The management machine the public-IP VM is opened to (RFC 5737 documentation range).
DEMO_CLIENT_IP = "203.0.113.10"


@attrs.frozen
class DemoVm:
    """One VM of the demo scenario and how it is meant to be reached."""

    name: str
    target: VmTarget
    access: Any
    story: str


def _deny(
    name: str, priority: int, direction: str, dest: str, port: str, source: str
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": dest,
            "destinationPortRange": port,
            "description": "Site policy: deny by default",
        },
    }


def build_scenario(emu: ArmEmulator) -> dict[str, DemoVm]:
    """Add the demo's four VMs to ``emu``; return them by name."""

    web = emu.add_windows_vm("web-01", os="2022", size="Standard_D2s_v3")
    legacy = emu.add_windows_vm("legacy-01", os="2012-R2", size="Standard_B1s")
    locked = emu.add_windows_vm("locked-01", os="2019", size="Standard_D2s_v3")
    nsg_id = (
        f"/subscriptions/{locked.subscription_id}/resourceGroups/{locked.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{locked.name}-nsg"
    )
    emu.add_rule(nsg_id, _deny("DenyInternetOutBound", 200, "Outbound", "Internet", "*", "*"))
    emu.add_rule(
        nsg_id, _deny("DenyManagementInBound", 300, "Inbound", "*", "6516", "VirtualNetwork")
    )
    public = emu.add_windows_vm("public-01", os="2025", size="Standard_D4s_v5", public_ip=True)
    vms = [
        DemoVm("web-01", web, PrivateAccess(), "Windows Server 2022, private access: just works"),
        DemoVm(
            "legacy-01",
            legacy,
            PrivateAccess(),
            "Windows Server 2012 R2 on 1 GiB: does not qualify",
        ),
        DemoVm(
            "locked-01",
            locked,
            PrivateAccess(),
            "NSG denies outbound Internet (200) and inbound 6516 (300): planned around",
        ),
        DemoVm(
            "public-01",
            public,
            PublicAccess([DEMO_CLIENT_IP]),
            f"public IP, reachable only from {DEMO_CLIENT_IP}",
        ),
    ]
    return {vm.name: vm for vm in vms}


#: The VM that ``wac-azure <verb> --emulator`` finds with Windows Admin Center already on.
READY_VM = "app-01"


async def prepare_cli_emulator(emu: ArmEmulator, session: Any) -> dict[str, DemoVm]:
    """The demo scenario plus ``app-01``, already enabled (for status/port/url/disable)."""

    vms = build_scenario(emu)
    ready = emu.add_windows_vm(READY_VM, os="2022", size="Standard_D2s_v3")
    await enable(session, ready)
    vms[READY_VM] = DemoVm(
        READY_VM, ready, PrivateAccess(), "Windows Server 2022 with Windows Admin Center on"
    )
    return vms


def _indent(text: object, prefix: str = "          ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines())


def _report_text(report: Any) -> str:
    """The summary, then each check that did not pass, with its remedy."""
    lines = [_first_line(report)]
    for check in report.checks:
        status = getattr(check.status, "value", str(check.status))
        if status == "pass":
            continue
        lines.append(f"{status:<8}{check.code}: {check.message}")
        if check.remedy:
            lines.append(f"{'':<8}remedy: {check.remedy}")
    return "\n".join(lines)


def _first_line(value: object) -> str:
    summary = getattr(value, "summary", None)
    if callable(summary):
        return str(summary())
    if isinstance(summary, str):
        return summary
    return str(value).splitlines()[0] if str(value) else ""


async def _one(session: Any, vm: DemoVm, out: TextIO | None) -> dict[str, Any]:

    def say(label: str, text: object) -> None:
        if out is not None:
            body = str(text)
            first, _, rest = body.partition("\n")
            print(f"  {label:<8}{first}", file=out)
            if rest:
                print(_indent(rest), file=out)

    record: dict[str, Any] = {"vm": vm.name, "target": str(vm.target), "story": vm.story}
    if out is not None:
        print(f"\n== {vm.name}: {vm.story}", file=out)
        print(f"   {vm.target}", file=out)
    report = await RequirementChecker(session).check(vm.target, access=vm.access)
    record["check"] = report.to_dict()
    say("check", _report_text(report))
    if report.failed and all(c.code in PLANNABLE_CHECKS for c in report.failures):
        say("", "(only network checks fail: the plan below is what repairs them)")
    plan = await NetworkRulePlanner(session).plan(vm.target, access=vm.access)
    record["plan"] = plan.to_dict()
    say("plan", plan)
    try:
        result = await enable(session, vm.target, access=vm.access)
    except RequirementsNotMetError as exc:
        first = str(exc).splitlines()[0].rstrip(":")
        record["enable"] = {"refused": True, "message": first}
        say("enable", "refused before any write: " + first)
    except WacAzureError as exc:
        record["enable"] = {"error": type(exc).__name__, "message": str(exc)}
        say("enable", f"failed: {type(exc).__name__}: {exc}")
    else:
        record["enable"] = result.to_dict()
        say("enable", _first_line(result))
        again = await enable(session, vm.target, access=vm.access)
        say("again", f"second enable changed={again.changed} (idempotent)")
        manager = ExtensionManager(session)
        port = await manager.locate_port(vm.target)
        record["port"] = port.to_dict()
        say("port", port)
        via: Literal["private", "public"] = (
            "public" if getattr(vm.access, "is_public", False) else "private"
        )
        url = await manager.connection_url(vm.target, via=via)
        record["url"] = url
        say("url", url)
    done = await disable(session, vm.target)
    record["disable"] = done.to_dict()
    deleted = len(getattr(done.rules, "deleted", ()))
    say(
        "disable",
        ("extension removed" if done.extension_removed else "extension was not installed")
        + (f", {deleted} wac_azure rule(s) removed" if deleted else ", no wac_azure rules"),
    )
    return record


async def run_demo(out: TextIO | None = None, *, json_output: bool = False) -> int:
    """Run the lifecycle demo on a fresh in-process emulator; 0 when it went as scripted."""

    out = out or sys.stdout
    start = time.monotonic()
    emu = ArmEmulator(seed=0)
    scenario = build_scenario(emu)
    text_out = None if json_output else out
    if text_out is not None:
        print(
            "wac_azure lifecycle demo: real azure-mgmt-* async clients against the "
            "in-process ARM emulator (no Azure subscription needed)",
            file=text_out,
        )
    records = []
    async with emu.session() as session:
        for vm in scenario.values():
            records.append(await _one(session, vm, text_out))
    elapsed = time.monotonic() - start
    writes = len(emu.writes())
    if json_output:
        doc = snake({"vms": records, "requests": len(emu.requests), "writes": writes})
        print(json.dumps(doc, indent=2, sort_keys=True, default=str), file=out)
    else:
        print(
            f"\n{len(records)} VMs in {elapsed:.1f} s; the emulator answered "
            f"{len(emu.requests)} requests ({writes} writes).",
            file=out,
        )
    ok = [r["vm"] for r in records if "url" in r]
    return 0 if ok == ["web-01", "locked-01", "public-01"] else 1


async def run_selfcheck(out: TextIO | None = None) -> int:
    """Create a VM on the in-process emulator and print what the real SDK reads back."""

    out = out or sys.stdout
    emu = ArmEmulator(seed=0)
    target = emu.add_windows_vm("selfcheck-vm", os="2022", public_ip=True)
    async with emu.session() as session:
        compute = session.compute(target.subscription_id)
        network = session.network(target.subscription_id)
        vm = await compute.virtual_machines.get(
            target.resource_group, target.name, expand="instanceView"
        )
        data = vm.as_dict()
        props = data.get("properties", {})
        image = props.get("storageProfile", {}).get("imageReference", {})
        statuses = props.get("instanceView", {}).get("statuses", [])
        power = next(
            (s.get("code", "") for s in statuses if s.get("code", "").startswith("PowerState/")),
            "PowerState/unknown",
        )
        print(
            "emulator self-check (real azure-mgmt-compute/network clients, in-process ARM)",
            file=out,
        )
        print(f"  VM          {data.get('name')}  ({target.resource_id})", file=out)
        print(f"  size        {props.get('hardwareProfile', {}).get('vmSize')}", file=out)
        print(
            f"  image       {image.get('publisher')}/{image.get('offer')}/{image.get('sku')}",
            file=out,
        )
        print(f"  power       {power.split('/', 1)[1]}", file=out)
        for ref in props.get("networkProfile", {}).get("networkInterfaces", []):
            parts = ref["id"].split("/")
            nic = (await network.network_interfaces.get(parts[4], parts[-1])).as_dict()
            for cfg in nic.get("properties", {}).get("ipConfigurations", []):
                cprops = cfg.get("properties", {})
                line = f"  NIC         {nic.get('name')}  private {cprops.get('privateIPAddress')}"
                pip_ref = cprops.get("publicIPAddress")
                if pip_ref:
                    pparts = pip_ref["id"].split("/")
                    pip = (await network.public_ip_addresses.get(pparts[4], pparts[-1])).as_dict()
                    line += f"  public {pip.get('properties', {}).get('ipAddress')}"
                print(line, file=out)
    print(f"  requests    {len(emu.requests)} answered by the emulator", file=out)
    return 0
