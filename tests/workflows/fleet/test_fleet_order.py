"""When fleet writes leave: each write waits for what it needs, and shared NSGs take few cycles.

Installs before inbound rules, outbound rules before installs, extension writes ahead of
rule writes in the bucket, shared NSGs written in few cycles.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from wac_azure import AzureSession, VmTarget
from wac_azure._azure.pacing import PacingConfig
from wac_azure._core.access import PrivateAccess
from wac_azure._core.progress import ProgressEvent, ProgressStage
from wac_azure._workflows.fleet.engine import disable_many, enable_many
from wac_azure.testing import ArmEmulator, Fault, ThrottleConfig

#: An on-premises range behind a VPN: NSGs deny it by default, so every NSG needs a rule.
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
NET = "/providers/Microsoft.Network/"


def nsg_id(target: VmTarget, name: str) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"{NET}networkSecurityGroups/{name}"
    )


def index_of(emu: ArmEmulator, method: str, fragment: str) -> list[int]:
    return [
        i
        for i, r in enumerate(emu.requests)
        if r.method == method and fragment.lower() in r.path.lower()
    ]


def watch(emu: ArmEmulator, events: list[tuple[ProgressEvent, int]]) -> Any:
    """A progress callback recording each event with the number of requests sent by then."""

    def progress(event: ProgressEvent) -> None:
        events.append((event, len(emu.requests)))

    return progress


def stages(events: list[tuple[ProgressEvent, int]], name: str) -> list[ProgressStage]:
    return [e.stage for e, _ in events if e.target.name == name]


def requests_at(events: list[tuple[ProgressEvent, int]], name: str, stage: ProgressStage) -> int:
    return next(n for e, n in events if e.target.name == name and e.stage is stage)


ORDER = [
    ProgressStage.READING,
    ProgressStage.PLANNED,
    ProgressStage.RULES_APPLIED,
    ProgressStage.INSTALLING,
    ProgressStage.DONE,
]


async def test_install_leaves_before_the_inbound_rule_is_in_force(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    events: list[tuple[ProgressEvent, int]] = []
    result = await enable_many(session, [t], access=ONPREM, progress=watch(emu, events))
    assert result.ok, str(result)

    (ext_put,) = index_of(emu, "PUT", "/extensions/AdminCenter")
    (rule_put,) = index_of(emu, "PUT", "/securityRules/")
    # the install needs no inbound rule: its PUT left before the rule write was seen done
    assert ext_put < requests_at(events, "vm1", ProgressStage.RULES_APPLIED)
    assert rule_put < requests_at(events, "vm1", ProgressStage.RULES_APPLIED)
    # ... and the events keep their documented order all the same
    assert stages(events, "vm1") == ORDER
    (outcome,) = result.outcomes
    assert outcome.rules
    assert outcome.rules[0].endswith("/securityRules/PortForWAC")


def deny_internet_out(emu: ArmEmulator, t: VmTarget) -> None:
    emu.add_rule(
        nsg_id(t, "vnet-westeurope-default-nsg"),
        {
            "name": "DenyInternetOut",
            "properties": {
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "Internet",
                "destinationPortRange": "*",
                "access": "Deny",
                "priority": 4000,
                "direction": "Outbound",
            },
        },
    )


async def test_install_waits_for_the_outbound_rule_it_needs(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="subnet")
    deny_internet_out(emu, t)
    events: list[tuple[ProgressEvent, int]] = []
    result = await enable_many(session, [t], access=ONPREM, progress=watch(emu, events))
    assert result.ok, str(result)

    nsg = emu.resource(nsg_id(t, "vnet-westeurope-default-nsg"))
    outbound = [
        r["name"]
        for r in nsg["properties"]["securityRules"]
        if r["properties"]["direction"] == "Outbound" and r["properties"]["access"] == "Allow"
    ]
    assert outbound, "the plan should have opened the way out to the WAC service"
    (ext_put,) = index_of(emu, "PUT", "/extensions/AdminCenter")
    # the install needs outbound HTTPS: its PUT waited for the NSG's writes to be in force
    assert ext_put >= requests_at(events, "vm1", ProgressStage.RULES_APPLIED)
    for name in outbound:
        assert all(i < ext_put for i in index_of(emu, "PUT", f"/securityRules/{name}"))
    assert stages(events, "vm1") == ORDER


async def test_a_failed_inbound_rule_fails_the_vm_even_when_its_install_ran(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.deny("Microsoft.Network/networkSecurityGroups/securityRules/write")
    events: list[tuple[ProgressEvent, int]] = []
    result = await enable_many(session, [t], access=ONPREM, progress=watch(emu, events))

    (outcome,) = result.outcomes
    assert not result.ok
    assert outcome.error is not None
    assert "PortForWAC" in outcome.message
    assert stages(events, "vm1")[-1] is ProgressStage.FAILED
    assert ProgressStage.DONE not in stages(events, "vm1")
    # running it again once the rule can be written finishes the VM without reinstalling
    emu.allow_all()
    before = len(index_of(emu, "PUT", "/extensions/AdminCenter"))
    again = await enable_many(session, [t], access=ONPREM)
    assert again.ok, str(again)
    assert len(index_of(emu, "PUT", "/extensions/AdminCenter")) == before


async def test_extension_writes_overtake_queued_rule_writes_in_the_bucket() -> None:
    # A write bucket of 4 refilled at 2/s; three groups of 7 VMs, each behind its own NIC
    # NSG: rule writes and extension writes compete for the bucket. No install waits for
    # an inbound rule, so once the burst is spent every extension PUT of a VM read leaves
    # before the rule PUTs still queued, whichever came first. (With 16 extension writes
    # in flight all 21 VMs fit in the subscription's read-ahead, 4 + 16 + 1 = 21: a VM
    # beyond it is read only once the writes of the VMs before it, their inbound rules
    # too, are done and their facts let go; see test_fleet_read_ahead.py. The window's
    # own floor, 8, would make it 14.)
    throttle = ThrottleConfig(reads=(500, 100.0), writes=(4, 2.0), deletes=(4, 2.0))
    emu = ArmEmulator(seed=0, throttle=throttle)
    targets = [emu.add_windows_vm(f"vm{i}", resource_group=f"rg-{i % 3}") for i in range(21)]
    pacing = PacingConfig(reads=(500, 100.0), writes=(4, 2.0), deletes=(4, 2.0), reserve=0.0)
    async with emu.session(pacing=pacing) as session:
        # 16 extension writes wait in the bucket's queue at once; the other 5 join it as
        # slots free up, after the first rule writes have queued
        result = await enable_many(session, targets, access=ONPREM, concurrency=16)
        assert session.pacer.throttled == 0
    assert result.ok, str(result)

    writes = [
        "ext" if "/extensions/" in r.path.lower() else "rule"
        for r in emu.requests
        # the NICs' address records (bookkeeping, written last) are left out
        if r.method == "PUT" and "/networkinterfaces/" not in r.path.lower()
    ]
    assert collections.Counter(writes) == {"ext": 21, "rule": 21}
    # after the burst of 4, no rule PUT leaves while an extension PUT waits
    last_ext = max(i for i, w in enumerate(writes) if w == "ext")
    rules_before = writes[4 : last_ext + 1].count("rule")
    assert rules_before == 0, writes


def hub_fleet(emu: ArmEmulator, groups: int = 6) -> tuple[str, list[VmTarget], list[str]]:
    """One NSG in a networking group serving the NICs of other groups' VMs (3 per group,
    each with its own private IP): ``(nsg id, targets, ips)``."""
    hub = emu.add_windows_vm("hub", resource_group="rg-net", nsg="nic")
    shared = nsg_id(hub, "hub-nsg")
    targets: list[VmTarget] = []
    ips: list[str] = []
    for g in range(groups):
        for i in range(3):
            t = emu.add_windows_vm(f"g{g}-vm{i}", resource_group=f"rg-{g}", nsg=None)
            nic = emu.store.get(
                f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
                f"{NET}networkInterfaces/{t.name}-nic"
            )
            assert nic is not None
            nic["properties"]["networkSecurityGroup"] = {"id": shared}
            ip = f"10.0.{g + 1}.{i + 4}"
            nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = ip
            ips.append(ip)
            targets.append(t)
    return shared, targets, ips


def wac_rule(emu: ArmEmulator, nsg: str) -> dict[str, Any] | None:
    rules = emu.resource(nsg)["properties"].get("securityRules") or []
    return next((r["properties"] for r in rules if r["name"] == "PortForWAC"), None)


async def test_hub_nsg_shared_by_many_groups_is_written_in_few_cycles(
    emu: ArmEmulator, session: AzureSession
) -> None:
    shared, targets, ips = hub_fleet(emu)
    result = await enable_many(session, targets, access=ONPREM)
    assert result.ok, str(result)
    assert len(result.enabled) == 18

    puts = index_of(emu, "PUT", f"{shared}/securityRules/")
    # the groups were read side by side; what queued while one write was in progress
    # went out as one write: fewer writes than groups
    assert 1 <= len(puts) < 6, len(puts)
    wac = wac_rule(emu, shared)
    assert wac is not None
    assert sorted(wac["destinationAddressPrefixes"]) == sorted(ips)
    for o in result.outcomes:
        assert any(r.lower() == f"{shared}/securityRules/PortForWAC".lower() for r in o.rules)


async def test_disabling_groups_of_a_hub_nsg_takes_out_only_their_ips(
    emu: ArmEmulator, session: AzureSession
) -> None:
    shared, targets, ips = hub_fleet(emu)
    assert (await enable_many(session, targets, access=ONPREM)).ok
    # four of the six groups leave, side by side: their removals are merged too
    leaving = targets[:12]
    result = await disable_many(session, leaving)
    assert result.ok, str(result)
    assert len(result.disabled) == 12
    wac = wac_rule(emu, shared)
    assert wac is not None
    assert sorted(wac["destinationAddressPrefixes"]) == sorted(ips[12:])
    for t in leaving:
        with pytest.raises(LookupError):
            emu.resource(f"{t.resource_id}/extensions/AdminCenter")
    # the last two groups leave: the rule, empty now, is deleted
    assert (await disable_many(session, targets[12:])).ok
    assert wac_rule(emu, shared) is None


async def test_every_enabled_vm_reports_its_url() -> None:
    # Installs that outlast the rule writes (0.3 s real against instant rules): the
    # facts of a VM whose install is under way and whose rules are in are let go, and
    # its URL is kept for the result.
    emu = ArmEmulator(seed=0, lro_seconds=0.0, extension_seconds=3.0, time_scale=0.1)
    _, targets, ips = hub_fleet(emu, groups=2)
    async with emu.session(polling_interval=0.01) as session:
        first = await enable_many(session, targets, access=ONPREM, poll_interval=0.05)
        assert first.ok, str(first)
        assert [o.url for o in first.outcomes] == [f"https://{ip}:6516" for ip in ips]
        # nothing to write the second time: the URL comes from the facts as read
        again = await enable_many(session, targets, access=ONPREM, poll_interval=0.05)
    assert again.counts["changed"] == 0
    assert [o.url for o in again.outcomes] == [f"https://{ip}:6516" for ip in ips]


async def test_an_install_sent_again_while_its_group_is_listed_is_still_waited_for() -> None:
    # ARM accepts vm0's extension PUT, then its operation fails (OperationPreempted) and the
    # extension is rolled back. The next list of the group's extensions (one per page) no
    # longer shows it, its GET confirms: the PUT is sent again while the round still
    # confirms the others, and the VM must stay among those the group's lists wait for.
    emu = ArmEmulator(seed=0, page_size=1)
    targets = [emu.add_windows_vm(f"vm{i}", nsg=None) for i in range(8)]
    emu.faults.add_scripted(
        1, "OperationPreempted", method="PUT", path_regex=r"/vm0/extensions/AdminCenter$"
    )
    # the wait's extension GETs of one round: one answers late, so the PUT sent again
    # is accepted before the round is over
    emu.faults.add_scripted(
        2, Fault.slow(0.01), method="GET", path_regex=r"/vm[1-7]/extensions/AdminCenter$"
    )
    async with emu.session() as session:
        result = await enable_many(session, targets, timeout=600)
    assert emu.faults.counts == {"OperationPreempted": 1, "slow": 1}
    assert result.ok, str(result)
    assert len(result.enabled) == 8
    assert len(index_of(emu, "PUT", "/vm0/extensions/AdminCenter")) == 2
