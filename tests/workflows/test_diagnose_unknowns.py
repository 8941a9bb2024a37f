"""diagnose says unknown, never OK, when it cannot see: an unreadable NSG, an unreachable guest."""

from __future__ import annotations

from wac_azure import AzureSession, FindingStatus, diagnose
from wac_azure.testing import ArmEmulator, Fault

from .test_diagnose import NOW, healthy_vm, nsg_id, run_commands


async def test_unreadable_nsg_makes_outbound_unknown_not_ok(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = await healthy_vm(emu, session)
    # The NIC still points at its NSG, but the NSG cannot be read (gone: 404).
    assert emu.store.delete(nsg_id(target)) is not None
    d = await diagnose(session, target, now=NOW)
    assert d.finding("inbound").status is FindingStatus.UNKNOWN
    for code in ("outbound.windows_admin_center", "outbound.azure_active_directory"):
        f = d.finding(code)
        assert f.status is FindingStatus.UNKNOWN, f
        assert "could not be read" in f.title
        assert any("not readable" in e for e in f.evidence)


async def test_guest_connection_reset_is_unknown_with_one_attempt(emu: ArmEmulator) -> None:
    async with emu.session(client_kwargs={"retry_total": 0}) as session:
        target = await healthy_vm(emu, session)
        emu.requests.clear()
        emu.faults.add_scripted(1, Fault.reset(), method="POST", path_regex="/runCommand$")
        d = await diagnose(session, target, now=NOW)
    f = d.finding("guest.service")
    assert f.status is FindingStatus.UNKNOWN
    assert "could not reach" in f.evidence[0]
    assert len(run_commands(emu)) == 1
    assert d.finding("extension").status is FindingStatus.OK
