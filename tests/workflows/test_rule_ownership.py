"""Only rules wac_azure can prove it wrote are changed or deleted; copies are left and reported."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    PrivateAccess,
    VmTarget,
    disable,
    disable_many,
    enable,
)
from wac_azure.testing import ArmEmulator

from tests.core.nsg._helpers import rule

NET = "/providers/Microsoft.Network"
MANAGED = "Managed by wac_azure"
ONPREM = PrivateAccess(sources=("10.10.0.0/16",))


def _ids(emu: ArmEmulator, t: VmTarget) -> tuple[str, str]:
    """(NIC NSG id, the VM's private IP)."""
    rg = f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}{NET}"
    nic = emu.resource(f"{rg}/networkInterfaces/{t.name}-nic")["properties"]
    ip = nic["ipConfigurations"][0]["properties"]["privateIPAddress"]
    return nic["networkSecurityGroup"]["id"], ip


def _rules(emu: ArmEmulator, nsg_id: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in emu.resource(nsg_id)["properties"].get("securityRules") or []}


def _copies(vm_ip: str) -> list[dict[str, Any]]:
    """A user's rules that copied wac_azure's description (plain, and with a mark taken
    from one of wac_azure's rules)."""
    return [
        rule("DenySmb", 300, access="Deny", dport="445", description=MANAGED),
        rule("AllowRDP", 310, src="198.51.100.0/24", dst=vm_ip, dport="3389", description=MANAGED),
        # named like ours, shaped like an earlier version's, but for RDP: not the VM's WAC port
        rule(
            "PortForWAC-3389",
            320,
            src="198.51.100.0/24",
            dst=vm_ip,
            dport="3389",
            description=MANAGED,
        ),
        rule(
            "AllowWinRM",
            330,
            src="198.51.100.0/24",
            dport="5986",
            description=f"{MANAGED} (mark 0123456789abcdef)",
        ),
    ]


@pytest.mark.parametrize("fleet", [False, True], ids=["disable", "disable_many"])
async def test_disable_leaves_rules_that_only_copied_the_description(
    emu: ArmEmulator,
    session: AzureSession,
    caplog: pytest.LogCaptureFixture,
    fleet: bool,
) -> None:
    t = emu.add_windows_vm("vm1")
    nid, ip = _ids(emu, t)
    theirs = [emu.add_rule(nid, r)["id"] for r in _copies(ip)]
    snapshot = {i: json.dumps(emu.resource(i), sort_keys=True) for i in theirs}
    await enable(session, t, access=ONPREM)
    ours = {n for n, r in _rules(emu, nid).items() if r["id"] not in theirs}
    assert ours, "enable wrote no rule"

    caplog.set_level(logging.WARNING)
    if fleet:
        result = await disable_many(session, [t])
        assert result.ok, str(result)
    else:
        done = await disable(session, t)
        assert done.rules is not None
        left_alone = {u.rule for u in done.rules.unowned}
        assert left_alone == {"DenySmb", "AllowRDP", "PortForWAC-3389", "AllowWinRM"}
        assert "left alone" in str(done.rules)

    for i in theirs:  # not one byte changed
        assert json.dumps(emu.resource(i), sort_keys=True) == snapshot[i]
    assert set(_rules(emu, nid)) == {"DenySmb", "AllowRDP", "PortForWAC-3389", "AllowWinRM"}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("DenySmb", "AllowRDP", "PortForWAC-3389", "AllowWinRM"):
        assert name in warned


async def test_enable_never_grows_a_copy_named_like_ours(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """A user's 'PortForWAC' with our plain description but another shape (a Deny) is not
    ours: enable writes its own rule beside it and leaves it as it was."""
    t = emu.add_windows_vm("vm1")
    nid, ip = _ids(emu, t)
    copy = emu.add_rule(
        nid,
        rule("PortForWAC", 4000, access="Deny", src="*", dst=ip, dport="6516", description=MANAGED),
    )
    before = json.dumps(emu.resource(copy["id"]), sort_keys=True)
    result = await enable(session, t, access=ONPREM)
    assert [u.rule for u in result.plan.unowned] == ["PortForWAC"]
    assert json.dumps(emu.resource(copy["id"]), sort_keys=True) == before
    assert "PortForWAC-6516" in _rules(emu, nid)


async def test_an_earlier_versions_rule_for_the_vm_is_adopted(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """A rule exactly as wac_azure versions before ownership marks wrote it for this VM
    (plain description, its name, shape, address and WAC port) is taken over: enable marks
    it in place, disable removes it."""
    t = emu.add_windows_vm("vm1")
    nid, ip = _ids(emu, t)
    emu.add_rule(
        nid, rule("PortForWAC", 150, src="10.10.0.0/16", dst=ip, dport="6516", description=MANAGED)
    )
    result = await enable(session, t, access=ONPREM)
    assert result.plan.unowned == ()
    inbound = [c for c in result.plan.changes if (c.rule_name or "").startswith("PortForWAC")]
    assert [(c.action.value, c.rule_name) for c in inbound] == [("update", "PortForWAC")]
    assert "ownership mark added" in inbound[0].describe()
    got = _rules(emu, nid)["PortForWAC"]["properties"]
    assert got["description"].startswith(f"{MANAGED} (mark ")
    assert got["priority"] == 150
    await disable(session, t)
    assert "PortForWAC" not in _rules(emu, nid)


async def test_our_rule_edited_by_hand_is_no_longer_ours(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """Someone widens our rule's sources in the portal (the description stays): the mark no
    longer matches, so disable leaves the rule (now theirs) and says so."""
    t = emu.add_windows_vm("vm1")
    nid, _ = _ids(emu, t)
    await enable(session, t, access=ONPREM)
    ours = _rules(emu, nid)["PortForWAC"]
    edited = {"name": "PortForWAC", "properties": dict(ours["properties"])}
    edited["properties"]["sourceAddressPrefix"] = "10.0.0.0/8"
    emu.add_rule(nid, edited)
    done = await disable(session, t)
    assert done.rules is not None
    assert [u.rule for u in done.rules.unowned] == ["PortForWAC"]
    assert _rules(emu, nid)["PortForWAC"]["properties"]["sourceAddressPrefix"] == "10.0.0.0/8"
