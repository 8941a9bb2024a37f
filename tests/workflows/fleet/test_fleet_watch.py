"""The install watch's scope: one list of the subscription's extensions serves every
group of the run, unless the subscription holds so many other extensions that a list
per group costs fewer pages (issue #18, docs/performance.md "Reads per VM")."""

from __future__ import annotations

from typing import Any

from wac_azure._core.access import PrivateAccess
from wac_azure._workflows.fleet.engine import disable_many, enable_many
from wac_azure._workflows.fleet.results import OutcomeStatus
from wac_azure._workflows.fleet.watcher import _vm_of
from wac_azure.testing import ArmEmulator

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
SUB = "00000000-0000-0000-0000-000000000001"


def watch_lists(emu: ArmEmulator) -> list[str]:
    """The scope of each extension list the run made: ``"sub"`` or the group's name."""
    out = []
    for r in emu.requests:
        if r.method != "GET" or not r.path.endswith("/resources"):
            continue
        assert r.query.get("$filter") == (
            "resourceType eq 'Microsoft.Compute/virtualMachines/extensions'"
        )
        if r.query.get("$skiptoken") or r.query.get("$skipToken"):
            continue  # a further page of the same list
        parts = r.path.strip("/").split("/")
        out.append("sub" if len(parts) == 3 else parts[3])
    return out


def list_pages(emu: ArmEmulator) -> int:
    return sum(1 for r in emu.requests if r.method == "GET" and r.path.endswith("/resources"))


def extension_gets(emu: ArmEmulator) -> list[str]:
    return [
        r.path.split("/virtualMachines/")[1].split("/")[0]
        for r in emu.requests
        if r.method == "GET" and r.path.endswith("/extensions/AdminCenter")
    ]


async def test_one_subscription_wide_list_watches_every_group() -> None:
    # Four groups of five VMs, installs of 1.5 s +- 50 %, rounds every 0.3 s: each round
    # is one list of the subscription's extensions, not one per group (the code before
    # listed each group: four lists a round).
    emu = ArmEmulator(seed=5, extension_seconds=1.5, extension_jitter=0.5)
    targets = [
        emu.add_windows_vm(f"vm{g}{i}", resource_group=f"rg-{g}", nsg="subnet")
        for g in range(4)
        for i in range(5)
    ]
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM, poll_interval=0.3)
    assert result.ok, result.summary()
    assert all(o.status is OutcomeStatus.ENABLED for o in result.outcomes)
    scopes = watch_lists(emu)
    assert len(scopes) >= 3, scopes  # several rounds
    # every round lists the subscription once (a round while VMs of a single group are
    # still waiting lists that group alone: as cheap, and fewer extensions to read)
    multi = [s for s in scopes if s == "sub"]
    assert len(multi) >= 2, scopes
    assert len(scopes) < 2 * len(multi) + 2, scopes
    # seen running, then Succeeded on a list: no extension GET
    assert extension_gets(emu) == []


async def test_a_crowded_subscription_is_watched_group_by_group() -> None:
    # 40 VMs outside the run, each with an extension, and pages of 4: a subscription-wide
    # list takes more pages than there are groups waiting, so after the first one the
    # watch lists the run's two groups instead.
    emu = ArmEmulator(seed=6, extension_seconds=1.5, extension_jitter=0.5, generic_page_size=4)
    others = [emu.add_windows_vm(f"other{i:02d}", resource_group="rg-big") for i in range(40)]
    async with emu.session() as session:
        before = await enable_many(session, others, access=ONPREM, poll_interval=0.3)
        assert before.ok, before.summary()
        emu.requests.clear()
        targets = [
            emu.add_windows_vm(f"vm{g}{i}", resource_group=f"rg-{g}", nsg="subnet")
            for g in range(2)
            for i in range(3)
        ]
        result = await enable_many(session, targets, access=ONPREM, poll_interval=0.3)
    assert result.ok, result.summary()
    scopes = watch_lists(emu)
    assert scopes[0] == "sub", scopes
    assert "sub" not in scopes[1:], scopes  # 11+ pages against 2 groups: groups from then on
    assert {"rg-0", "rg-1"} <= set(scopes[1:]), scopes
    # one subscription-wide list (40 to 46 extensions: 10 to 12 pages of 4), then a page
    # per group and round
    assert 10 <= list_pages(emu) - (len(scopes) - 1) <= 12


async def test_a_single_group_is_listed_alone() -> None:
    emu = ArmEmulator(seed=7, extension_seconds=1.0, extension_jitter=0.5)
    emu.add_windows_vm("bystander", resource_group="rg-other")
    targets = [emu.add_windows_vm(f"vm{i}", resource_group="rg-0") for i in range(4)]
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM, poll_interval=0.3)
        assert result.ok, result.summary()
        emu.requests.clear()
        removed = await disable_many(session, targets, poll_interval=0.3)
    assert removed.ok, removed.summary()
    assert watch_lists(emu)
    assert set(watch_lists(emu)) == {"rg-0"}


def test_extension_ids_name_their_group_and_vm() -> None:
    ext = (
        f"/subscriptions/{SUB}/resourceGroups/RG-A/providers/Microsoft.Compute"
        "/virtualMachines/VM-1/extensions/AdminCenter"
    )
    assert _vm_of(ext) == ("rg-a", "vm-1")
    assert _vm_of(ext + "/") == ("rg-a", "vm-1")
    bad: list[Any] = [
        "",
        "AdminCenter",
        ext.replace("/extensions/AdminCenter", "/extensions/Other"),
        ext.replace("virtualMachines", "virtualMachineScaleSets"),
        "/virtualMachines/VM-1/extensions/AdminCenter",
        ext.replace("resourceGroups", "groups"),
    ]
    for extension_id in bad:
        assert _vm_of(extension_id) is None, extension_id
