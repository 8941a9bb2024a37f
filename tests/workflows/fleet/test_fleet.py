"""Fleets against the in-process emulator: dedupe, isolation, cancellation, progress, reads."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import re

import pytest

from wac_azure import AzureSession, VmTarget
from wac_azure._core.access import PrivateAccess
from wac_azure._core.errors import ExtensionInstallError, InvalidInputError, VmNotFoundError
from wac_azure._core.progress import ProgressEvent, ProgressStage
from wac_azure._workflows.fleet.engine import disable_many, discover, enable_many
from wac_azure._workflows.fleet.results import FleetResult, OutcomeStatus, VmOutcome
from wac_azure.testing import ArmEmulator

#: An on-premises range behind a VPN: NSGs deny it by default, so every NSG needs a rule.
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
OTHER_SUB = "00000000-0000-0000-0000-000000000002"


def rule_puts(emu: ArmEmulator) -> collections.Counter[str]:
    return collections.Counter(
        r.path.lower()
        for r in emu.requests
        if r.method == "PUT" and "/securityrules/" in r.path.lower()
    )


def extension_puts(emu: ArmEmulator) -> int:
    return sum(
        1
        for r in emu.requests
        if r.method == "PUT" and r.path.lower().endswith("/extensions/admincenter")
    )


def managed_rules(emu: ArmEmulator, nsg_id: str) -> list[dict[str, object]]:
    nsg = emu.resource(nsg_id)
    return [
        r
        for r in nsg["properties"].get("securityRules") or []
        if str((r.get("properties") or {}).get("description") or "").startswith(
            "Managed by wac_azure"
        )
    ]


def nsg_id(target: VmTarget, name: str) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{name}"
    )


def nic_puts(emu: ArmEmulator) -> list[str]:
    """The NIC writes: the address record (tag ``wac_azure-rule-addresses``) of each VM."""
    return [
        r.path.lower()
        for r in emu.requests
        if r.method == "PUT" and "/networkinterfaces/" in r.path.lower()
    ]


async def test_shared_nsg_gets_each_rule_once(emu: ArmEmulator, session: AzureSession) -> None:
    shared = [emu.add_windows_vm(f"web{i}", nsg="subnet") for i in range(6)]
    own = [emu.add_windows_vm(f"app{i}", nsg="both") for i in range(3)]
    result = await enable_many(session, shared + own, access=ONPREM)

    assert result.ok
    assert len(result.enabled) == 9
    puts = rule_puts(emu)
    # one PUT per distinct rule: the subnet NSG once, each NIC NSG once
    assert all(n == 1 for n in puts.values()), puts
    subnet_nsg = nsg_id(shared[0], "vnet-westeurope-default-nsg")
    assert len(puts) == 1 + len(own)
    assert any(p.startswith(subnet_nsg.lower() + "/securityrules/") for p in puts)
    assert len(managed_rules(emu, subnet_nsg)) == 1
    for t in own:
        assert len(managed_rules(emu, nsg_id(t, f"{t.name}-nsg"))) == 1
    # the shared rule is credited to every VM it serves
    shared_rule = next(p for p in puts if p.startswith(subnet_nsg.lower()))
    for o in result.outcomes:
        assert shared_rule in {r.lower() for r in o.rules}
    assert extension_puts(emu) == 9
    # and one tag write per NIC whose address our rules now name (its address record)
    assert result.writes == len(puts) + 9 + len(nic_puts(emu))
    assert len(nic_puts(emu)) == 9


async def test_second_run_writes_nothing(emu: ArmEmulator, session: AzureSession) -> None:
    targets = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(4)]
    first = await enable_many(session, targets, access=ONPREM)
    assert first.counts["changed"] == 4
    before = len(emu.writes())
    again = await enable_many(session, targets, access=ONPREM)
    assert again.ok
    assert len(again.enabled) == 4
    assert again.counts["changed"] == 0
    assert len(emu.writes()) == before
    assert again.writes == 0


async def test_one_vm_failure_never_stops_the_rest(emu: ArmEmulator, session: AzureSession) -> None:
    good = [emu.add_windows_vm(f"ok{i}", nsg="subnet") for i in range(4)]
    parked = emu.add_windows_vm("parked", power_state="deallocated", nsg="subnet")
    small = emu.add_windows_vm("tiny", size="Standard_B1s", nsg="subnet")
    blocked = emu.add_windows_vm("blocked", nsg="subnet")
    emu.guest(blocked).outbound_blocked = True
    ghost = VmTarget.from_parts(good[0].subscription_id, good[0].resource_group, "ghost")
    missing_rg = VmTarget.from_parts(good[0].subscription_id, "rg-nope", "vm")
    targets = [*good, parked, small, blocked, ghost, missing_rg]

    result = await enable_many(session, targets, access=ONPREM)

    by_name = {o.target.name: o for o in result.outcomes}
    assert [o.target for o in result.outcomes] == targets  # input order kept
    assert all(by_name[t.name].status is OutcomeStatus.ENABLED for t in good)
    assert by_name["parked"].status is OutcomeStatus.SKIPPED
    assert not by_name["parked"].report.passed
    assert by_name["tiny"].status is OutcomeStatus.SKIPPED
    assert "memory" in by_name["tiny"].message
    assert by_name["blocked"].status is OutcomeStatus.FAILED
    assert isinstance(by_name["blocked"].error, ExtensionInstallError)
    assert by_name["blocked"].error.hints
    assert isinstance(by_name["ghost"].error, VmNotFoundError)
    assert result.failed[-1].target == missing_rg
    assert isinstance(result.failed[-1].error, LookupError)
    counts = result.counts
    assert (counts["enabled"], counts["skipped"], counts["failed"]) == (4, 2, 3)
    assert not result.ok
    # nothing was written for the skipped VMs
    written = {r.path.lower() for r in emu.writes()}
    assert not any(
        "/virtualmachines/parked/" in p or "/virtualmachines/tiny/" in p for p in written
    )
    # the report is readable and JSON-safe
    json.dumps(result.to_dict())
    text = str(result)
    assert "3 failed" in text
    assert "ghost" in text


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_cancel_then_rerun_converges(seed: int) -> None:
    emu = ArmEmulator(seed=seed)
    targets = [emu.add_windows_vm(f"vm{i}", nsg=("subnet", "nic", "both")[i % 3]) for i in range(9)]
    rng = random.Random(seed)
    stop_after = rng.randrange(5, 40)
    seen: list[ProgressEvent] = []
    async with emu.session() as session:
        task: asyncio.Task[FleetResult] | None = None

        def progress(event: ProgressEvent) -> None:
            seen.append(event)
            if len(seen) == stop_after and task is not None:
                task.cancel()

        task = asyncio.ensure_future(
            enable_many(session, targets, access=ONPREM, progress=progress)
        )
        try:
            first: FleetResult | None = await task
        except asyncio.CancelledError:
            first = None
        assert len(seen) >= min(stop_after, 5)
        # no half-written rule: every rule in the NSGs is complete and managed rules are unique
        again = await enable_many(session, targets, access=ONPREM)

    assert first is None  # the run was cancelled mid-way (9 VMs give 45 events)
    assert again.ok, str(again)
    assert len(again.enabled) == len(targets), (stop_after, str(again))
    # every distinct rule was PUT exactly once over both runs
    puts = rule_puts(emu)
    assert puts
    assert all(n == 1 for n in puts.values()), (stop_after, puts)
    for t in targets:
        for name in (f"{t.name}-nsg", "vnet-westeurope-default-nsg"):
            try:
                rules = managed_rules(emu, nsg_id(t, name))
            except LookupError:
                continue
            keys = [
                (
                    r["properties"]["direction"],
                    r["properties"].get("sourceAddressPrefix"),
                    r["properties"].get("destinationPortRange"),
                )
                for r in rules
            ]
            assert len(keys) == len(set(keys)), keys
            assert all(
                r["properties"]["provisioningState"] in ("Succeeded", "Updating") for r in rules
            )
        ext = emu.resource(f"{t.resource_id}/extensions/AdminCenter")
        assert ext["properties"]["provisioningState"] == "Succeeded"


async def test_progress_events_in_order(emu: ArmEmulator, session: AzureSession) -> None:
    targets = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(5)]
    parked = emu.add_windows_vm("parked", power_state="deallocated", nsg="subnet")
    events: list[ProgressEvent] = []
    await enable_many(session, [*targets, parked], access=ONPREM, progress=events.append)

    per_vm: dict[str, list[ProgressStage]] = collections.defaultdict(list)
    for e in events:
        assert e.total == 6
        per_vm[e.target.name].append(e.stage)
    expected = [
        ProgressStage.READING,
        ProgressStage.PLANNED,
        ProgressStage.RULES_APPLIED,
        ProgressStage.INSTALLING,
        ProgressStage.DONE,
    ]
    for t in targets:
        assert per_vm[t.name] == expected
    assert per_vm["parked"] == [ProgressStage.READING, ProgressStage.SKIPPED]
    # a second run: nothing to install, still one terminal event per VM
    events.clear()
    await enable_many(session, targets, access=ONPREM, progress=events.append)
    again = collections.defaultdict(list)
    for e in events:
        again[e.target.name].append(e.stage)
    for t in targets:
        assert again[t.name] == [
            ProgressStage.READING,
            ProgressStage.PLANNED,
            ProgressStage.RULES_APPLIED,
            ProgressStage.DONE,
        ]


async def test_progress_callback_errors_do_not_stop_the_batch(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]

    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    result = await enable_many(session, targets, progress=broken)
    assert result.ok
    assert len(result.enabled) == 3


def _illegal_vm_lists(emu: ArmEmulator) -> list[object]:
    """VM lists with ``$expand=instanceView`` and no ``$filter``: real Azure refuses them."""
    return [
        r
        for r in emu.requests
        if r.method == "GET"
        and r.path.lower().endswith("/providers/microsoft.compute/virtualmachines")
        and (r.query.get("$expand") or "").lower() == "instanceview"
        and not r.query.get("$filter")
    ]


async def test_enable_and_disable_send_no_vm_list_with_instance_view() -> None:
    emu = ArmEmulator(seed=0)
    targets = [emu.add_windows_vm(f"vm{i}", resource_group=f"rg-{i % 2}") for i in range(6)]
    async with emu.session() as session:
        enabled = await enable_many(session, targets, access=ONPREM, poll_interval=1)
        disabled = await disable_many(session, targets, poll_interval=1)
    assert enabled.ok
    assert len(enabled.enabled) == 6
    assert disabled.ok
    assert len(disabled.disabled) == 6
    assert _illegal_vm_lists(emu) == []
    # installs are watched by ARM's generic list of the group's extensions
    generic = [r for r in emu.requests if r.method == "GET" and r.path.endswith("/resources")]
    assert generic
    assert all(
        r.query.get("$filter") == "resourceType eq 'Microsoft.Compute/virtualMachines/extensions'"
        and r.query.get("$expand") == "provisioningState,changedTime"
        for r in generic
    )


async def test_reads_scale_with_groups_not_vms() -> None:
    emu = ArmEmulator(seed=0)
    targets = []
    for i in range(50):
        rg = f"rg-{i % 2}"
        nsg = ("subnet", "nic", "both", None)[i % 4]
        targets.append(emu.add_windows_vm(f"vm{i:02d}", resource_group=rg, nsg=nsg))
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM)
    assert result.ok
    assert len(result.enabled) == 50
    gets = [r for r in emu.requests if r.method == "GET"]
    assert result.reads == len(gets)
    # Each NSG is read again under its lock right before its rules are written (a rule
    # written meanwhile by someone else is never overwritten): the write cycles of a
    # group that start together share one list of the group's NSGs, so besides the
    # group's first list there is one more per group, and no GET of an NSG.
    written = {p.split("/securityrules/")[0] for p in rule_puts(emu)}
    assert len(written) == 26
    nsg_gets = [r for r in gets if not r.is_poll and r.path.lower() in written]
    assert nsg_gets == []
    nsg_lists = [r for r in gets if r.path.lower().endswith("/networksecuritygroups")]
    assert len(nsg_lists) == 2 * 2
    # A rule is written only when its operation succeeded and a read shows it: the
    # rule's own GET shows both (provisioningState Succeeded and the write), so one GET
    # per rule written and no operation poll. No extension operation is polled either:
    # installs are watched by lists.
    polls = [r for r in gets if r.is_poll]
    assert polls == []
    rule_reads = [r for r in gets if "/securityrules/" in r.path.lower()]
    assert len(rule_reads) == sum(rule_puts(emu).values())
    # AZURE_FACTS §7: no VM list may expand its instance view. One GET per VM with its
    # instance view, one GET per VM confirming its install settled, and lists that scale
    # with groups (network per group, extensions per group and round, sizes, tags).
    vm_gets = [r for r in gets if re.search(r"/virtualMachines/vm\d+$", r.path)]
    ext_gets = [r for r in gets if r.path.endswith("/extensions/AdminCenter")]
    assert len(vm_gets) == 50
    assert len(ext_gets) == 50
    # the address record: its NIC write sends the NIC as the group's list showed it
    # (If-Match on that etag), so no GET of the NIC
    nic_gets = [r for r in gets if re.search(r"/networkInterfaces/vm\d+-nic$", r.path)]
    assert nic_puts(emu)
    assert nic_gets == []
    lists = len(gets) - len(written) - len(polls) - len(rule_reads) - 100 - len(nic_gets)
    assert lists <= 12, collections.Counter(r.path.rsplit("/", 1)[-1] for r in gets)


async def test_subscriptions_run_side_by_side(emu: ArmEmulator, session: AzureSession) -> None:
    a = [emu.add_windows_vm(f"a{i}") for i in range(3)]
    b = [emu.add_windows_vm(f"b{i}", subscription_id=OTHER_SUB) for i in range(3)]
    result = await enable_many(session, [*a, *b])
    assert result.ok
    assert result.subscriptions == 2
    assert set(session.pacer.subscriptions) == {a[0].subscription_id, OTHER_SUB}


async def test_disable_many_removes_extension_and_managed_rules(
    emu: ArmEmulator, session: AzureSession
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}", nsg="both") for i in range(3)]
    bare = emu.add_windows_vm("bare", resource_group="rg-other")
    await enable_many(session, targets, access=ONPREM)
    subnet_nsg = nsg_id(targets[0], "vnet-westeurope-default-nsg")
    assert managed_rules(emu, subnet_nsg)
    result = await disable_many(session, [*targets, bare])
    assert result.ok
    assert len(result.disabled) == 4
    assert {o.target.name for o in result.outcomes if o.changed} == {t.name for t in targets}
    for t in targets:
        with pytest.raises(LookupError):
            emu.resource(f"{t.resource_id}/extensions/AdminCenter")
        assert managed_rules(emu, nsg_id(t, f"{t.name}-nsg")) == []
    assert managed_rules(emu, subnet_nsg) == []
    assert not emu.guest(targets[0]).services.get("ServerManagementGateway")


async def test_timeout_marks_unfinished_vms_failed(emu: ArmEmulator) -> None:
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]
    async with emu.session() as session:

        async def slow_sleep(seconds: float) -> None:
            await asyncio.sleep(10)

        session.sleep = slow_sleep  # type: ignore[method-assign]
        result = await enable_many(session, targets, timeout=0.3)
    assert len(result.failed) == 3
    assert all(isinstance(o.error, TimeoutError) for o in result.failed)


async def test_bad_input_is_a_typed_error(session: AzureSession) -> None:
    t = VmTarget.from_parts("00000000-0000-0000-0000-000000000001", "rg", "vm")
    with pytest.raises(InvalidInputError):
        await enable_many(session, t)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await enable_many(session, [t], port=70000)
    with pytest.raises(InvalidInputError):
        await enable_many(session, [t], concurrency=0)
    with pytest.raises(InvalidInputError):
        await enable_many(session, ["not an id"])


def test_report_html_escapes_and_collapses() -> None:
    t = VmTarget.from_parts("00000000-0000-0000-0000-000000000001", "rg", "vm1")
    outcomes = tuple(
        [VmOutcome(t, OutcomeStatus.FAILED, message="<script>alert(1)</script> & more")]
        + [
            VmOutcome(
                VmTarget.from_parts(t.subscription_id, "rg", f"ok{i}"),
                OutcomeStatus.ENABLED,
                changed=True,
                url=f"https://10.0.0.{i % 250}:6516",
            )
            for i in range(1000)
        ]
    )
    result = FleetResult("enable", outcomes, elapsed=1.0, reads=10, writes=1000)
    page = result._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.index("1000 enabled") < page.index("<details")
    assert "<details><summary>All 1001 VMs" in page  # details collapsed
    assert page.index("vm1") < page.index("ok0")  # the failure first
    assert result.counts == {
        "enabled": 1000,
        "skipped": 0,
        "failed": 1,
        "changed": 1000,
        "total": 1001,
    }
    text = str(result)
    assert text.splitlines()[0].startswith("enable on 1001 VMs: 1000 enabled")
    data = result.to_dict()
    assert json.loads(json.dumps(data))["counts"]["failed"] == 1


async def test_nsg_shared_across_resource_groups_is_written_once(
    emu: ArmEmulator, session: AzureSession
) -> None:
    # A networking resource group holds one NSG that the NICs of two other groups use.
    hub = emu.add_windows_vm("hub", resource_group="rg-net", nsg="nic")
    shared = nsg_id(hub, "hub-nsg")
    targets = [
        emu.add_windows_vm(f"{rg}-vm{i}", resource_group=rg, nsg=None)
        for rg in ("rg-a", "rg-b", "rg-c")
        for i in range(3)
    ]
    for t in targets:
        nic = emu.store.get(
            f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{t.name}-nic"
        )
        assert nic is not None
        nic["properties"]["networkSecurityGroup"] = {"id": shared}

    result = await enable_many(session, targets, access=ONPREM)

    assert result.ok
    assert len(result.enabled) == 9
    puts = rule_puts(emu)
    assert list(puts.values()) == [1]
    assert next(iter(puts)).startswith(shared.lower())
    assert len(managed_rules(emu, shared)) == 1
    # the hub's NSG was read by a GET (its group holds no target), then once more under
    # its lock right before its rule was written (the re-read before every NSG write)
    nsg_gets = [r for r in emu.requests if r.method == "GET" and r.path.lower() == shared.lower()]
    assert len(nsg_gets) == 2


async def test_discover_finds_windows_vms_only(emu: ArmEmulator, session: AzureSession) -> None:
    win = [
        emu.add_windows_vm("b-2019", os="2019", resource_group="rg-b"),
        emu.add_windows_vm("a-2022", os="2022", resource_group="rg-a"),
        emu.add_windows_vm("a-client", os="windows-11", resource_group="rg-a"),
        emu.add_windows_vm("a-parked", power_state="deallocated", resource_group="rg-a"),
    ]
    linux = emu.add_windows_vm("a-linux", os="ubuntu-22.04", resource_group="rg-a")
    other = emu.add_windows_vm("x-2022", subscription_id=OTHER_SUB)
    sub = win[0].subscription_id

    found = await discover(session, sub)
    assert found == sorted(win, key=lambda t: (t.resource_group, t.name))
    assert linux not in found
    assert other not in found
    assert await discover(session, sub, resource_group="rg-b") == [win[0]]
    everything = await discover(session, sub, windows_only=False)
    assert linux in everything
    assert len(everything) == 5
    # one list: no read per VM
    lists = [r for r in emu.requests if r.method == "GET"]
    assert len(lists) == 3
    with pytest.raises(LookupError):
        await discover(session, sub, resource_group="rg-missing")


def test_reasons_group_equal_causes_across_vms() -> None:
    def failed(name: str, ip: str) -> VmOutcome:
        t = VmTarget.from_parts("00000000-0000-0000-0000-000000000001", "rg", name)
        return VmOutcome(
            t, OutcomeStatus.SKIPPED, message=f"{name}: outbound 443 from {ip} is denied"
        )

    outcomes = [failed(f"vm{i}", f"10.0.{i // 250}.{i % 250}") for i in range(2500)]
    outcomes.append(failed("odd", "not an ip"))
    result = FleetResult("enable", tuple(outcomes))
    groups = result.reasons()
    assert [len(g) for g in groups.values()] == [2500, 1]
    assert next(iter(groups)) == "skipped: outbound 443 from <ip> is denied"
    page = result._repr_html_()
    assert "501 more VMs not shown" in page


async def test_a_refused_write_is_a_typed_error_chaining_azures() -> None:
    from azure.core.exceptions import HttpResponseError

    from wac_azure._core.errors import AzureRequestError
    from wac_azure.testing import Fault
    from wac_azure.testing.backend.faults import FaultKind

    emu = ArmEmulator(seed=0)
    t = emu.add_windows_vm("vm1", nsg="nic")
    refused = Fault(
        FaultKind.STATUS,
        status=400,
        code="InvalidParameter",
        message="The value of parameter settings is invalid.",
        name="400",
    )
    emu.faults.add_scripted(1, refused, method="PUT", path_regex=r"/extensions/AdminCenter$")
    async with emu.session() as session:
        result = await enable_many(session, [t])
    err = result.outcomes[0].error
    assert isinstance(err, AzureRequestError)
    assert "The value of parameter settings is invalid." in str(err)
    assert isinstance(err.__cause__, HttpResponseError)
