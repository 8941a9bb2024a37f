"""Fleet NSG writes: re-read before writing, scoped rules on shared NSGs, surgical removal."""

from __future__ import annotations

import collections
import json
from typing import Any

import pytest

from wac_azure import AzureSession, VmTarget, read_vm_facts
from wac_azure._core.access import PrivateAccess
from wac_azure._core.progress import ProgressEvent, ProgressStage
from wac_azure._workflows.fleet.engine import disable_many, enable_many
from wac_azure.testing import ArmEmulator, Fault

#: An on-premises range behind a VPN: NSGs deny it by default, so every NSG needs a rule.
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
NET = "/providers/Microsoft.Network/networkSecurityGroups/"


def nsg_id(target: VmTarget, name: str) -> str:
    return (
        f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}{NET}{name}"
    )


def rules(emu: ArmEmulator, nid: str) -> dict[str, dict[str, Any]]:
    doc = emu.resource(nid)
    return {r["name"]: r["properties"] for r in doc["properties"].get("securityRules") or []}


def destinations(props: dict[str, Any]) -> list[str]:
    return props.get("destinationAddressPrefixes") or [props["destinationAddressPrefix"]]


def rule_writes(emu: ArmEmulator) -> collections.Counter[str]:
    return collections.Counter(
        r.path.rsplit("/", 1)[-1]
        for r in emu.requests
        if r.method in ("PUT", "DELETE") and "/securityrules/" in r.path.lower()
    )


async def ip_of(session: AzureSession, target: VmTarget) -> str:
    nic = (await read_vm_facts(session, target)).primary_nic
    assert nic is not None
    assert nic.private_ip is not None
    return nic.private_ip


async def test_rule_written_by_someone_else_after_the_lists_is_not_overwritten(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    added: list[dict[str, Any]] = []

    def portal_opens_the_port(event: ProgressEvent) -> None:
        # Between the fleet's list of the NSG and its write, the portal's "Open this
        # port for me" creates its own PortForWAC (same name, not ours).
        if event.stage is ProgressStage.PLANNED and not added:
            added.append(
                emu.add_rule(
                    nid,
                    {
                        "name": "PortForWAC",
                        "properties": {
                            "protocol": "Tcp",
                            "access": "Allow",
                            "priority": 4000,
                            "direction": "Inbound",
                            "sourceAddressPrefix": "203.0.113.5",
                            "sourcePortRange": "*",
                            "destinationAddressPrefix": "*",
                            "destinationPortRange": "6516",
                        },
                    },
                )
            )

    result = await enable_many(session, [t], access=ONPREM, progress=portal_opens_the_port)
    assert result.ok, str(result)
    assert added
    theirs = rules(emu, nid)["PortForWAC"]
    assert theirs["sourceAddressPrefix"] == "203.0.113.5"
    assert "description" not in theirs
    assert theirs["priority"] == 4000
    ours = rules(emu, nid)["PortForWAC-6516"]
    assert ours["description"].startswith("Managed by wac_azure (mark ")
    assert destinations(ours) == [await ip_of(session, t)]
    assert rule_writes(emu) == {"PortForWAC-6516": 1}


async def test_rule_conflict_while_writing_replans_once(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1", nsg="nic")
    nid = nsg_id(t, "vm1-nsg")
    conflict = Fault(
        "status",
        status=400,
        code="SecurityRuleConflict",
        message="Rules cannot have the same Priority and Direction.",
    )
    emu.faults.add_scripted(1, conflict, method="PUT", path_regex=r"/securityRules/")
    result = await enable_many(session, [t], access=ONPREM)
    assert result.ok, str(result)
    assert rules(emu, nid)["PortForWAC"]["description"].startswith("Managed by wac_azure (mark ")
    statuses = [
        r.status for r in emu.requests if r.method == "PUT" and "/securityrules/" in r.path.lower()
    ]
    assert statuses[0] == 400
    assert statuses[-1] in (200, 201)


async def test_shared_nsg_gets_one_rule_listing_the_batchs_ips(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vms = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(3)]
    other = emu.add_windows_vm("notme", nsg="subnet")
    nid = nsg_id(vms[0], "vnet-westeurope-default-nsg")
    result = await enable_many(session, vms, access=ONPREM)
    assert result.ok, str(result)
    assert rule_writes(emu) == {"PortForWAC": 1}
    ips = sorted([await ip_of(session, t) for t in vms])
    assert sorted(destinations(rules(emu, nid)["PortForWAC"])) == ips
    assert await ip_of(session, other) not in ips


async def test_disable_many_takes_only_its_vms_out_of_a_shared_rule(
    emu: ArmEmulator, session: AzureSession
) -> None:
    vms = [emu.add_windows_vm(f"vm{i}", nsg="subnet") for i in range(3)]
    nid = nsg_id(vms[0], "vnet-westeurope-default-nsg")
    assert (await enable_many(session, vms, access=ONPREM)).ok
    before = len(emu.requests)
    result = await disable_many(session, vms[:2])
    assert result.ok, str(result)
    writes = [
        r
        for r in emu.requests[before:]
        if r.method in ("PUT", "DELETE") and "/securityrules/" in r.path.lower()
    ]
    # one update of the shared rule for the whole batch, no delete
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in writes] == [("PUT", "PortForWAC")]
    assert destinations(rules(emu, nid)["PortForWAC"]) == [await ip_of(session, vms[2])]
    assert (await disable_many(session, vms[2:])).ok
    assert "PortForWAC" not in rules(emu, nid)
    json.dumps(result.to_dict())


SUPERSEDED = (
    "Operation PutSecurityRuleOperation (2f130ac5-5e21-455a-a4b1-f2009bca24cc) was canceled "
    "and superseded by operation PutSecurityRuleOperation (8da7af9d-879b-4a30-9839-7fa094257a3a)."
)


async def test_a_superseded_rule_write_is_written_again() -> None:
    emu = ArmEmulator(seed=0)
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.faults.add_scripted(
        1,
        Fault.lro_failed("CanceledAndSupersededDueToAnotherOperation", SUPERSEDED),
        method="PUT",
        path_regex=r"/securityRules/",
    )
    async with emu.session() as session:
        result = await enable_many(session, [t], access=PrivateAccess(sources=("10.10.0.0/16",)))
    assert result.ok, str(result)
    puts = [r for r in emu.requests if r.method == "PUT" and "/securityRules/" in r.path]
    assert len(puts) == 2
    assert emu.faults.counts == {"CanceledAndSupersededDueToAnotherOperation": 1}


async def test_a_rule_write_a_read_does_not_show_is_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its operation succeeded, but the read after it does not show the rule (another
    write replaced it in between): the write did not stick, so it is sent again."""
    import wac_azure._azure.rules as rules_mod

    real = rules_mod.get_json
    hidden: list[str] = []

    async def first_read_shows_nothing(*args: Any, **kwargs: Any) -> Any:
        doc = await real(*args, **kwargs)
        if not hidden:
            hidden.append(str(args[3]))
            return None
        return doc

    monkeypatch.setattr(rules_mod, "get_json", first_read_shows_nothing)
    emu = ArmEmulator(seed=0)
    t = emu.add_windows_vm("vm1", nsg="nic")
    async with emu.session() as session:
        result = await enable_many(session, [t], access=PrivateAccess(sources=("10.10.0.0/16",)))
    assert result.ok, str(result)
    assert hidden
    assert "/securityRules/" in hidden[0]
    puts = [r for r in emu.requests if r.method == "PUT" and "/securityRules/" in r.path]
    assert len(puts) == 2
