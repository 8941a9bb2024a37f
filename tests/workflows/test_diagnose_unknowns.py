"""Regressions from the review: an unreadable NSG is unknown, not "allowed"; the guest
step uses the shared Run Command helper (one attempt, typed errors)."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("retry", [False])
async def test_run_guest_script_retry_false_sends_one_request(
    emu: ArmEmulator, session: AzureSession, retry: bool
) -> None:
    from wac_azure import AzureRequestError
    from wac_azure._azure.guest import run_guest_script

    target = await healthy_vm(emu, session)
    emu.requests.clear()
    emu.guest(target).run_command_busy = True
    with pytest.raises(AzureRequestError) as info:
        await run_guest_script(session, target, "port", retry=retry)
    assert info.value.status == 409
    assert len(run_commands(emu)) == 1
