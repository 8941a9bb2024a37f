"""The fleet converges through what the chaos run found: rolled-back writes, bursts, 429s."""

from __future__ import annotations

import time

import pytest

from wac_azure import OutcomeStatus, disable_many, enable_many
from wac_azure.testing import ArmEmulator, Fault

from ._world import ONPREM, _rule


def _nsg(emu: ArmEmulator, name: str) -> dict[str, object]:
    t = next(iter(emu.vms))  # any VM's id gives the subscription and group
    base = t.split("/providers/")[0]
    return emu.resource(f"{base}/providers/Microsoft.Network/networkSecurityGroups/{name}")


def _rule_names(emu: ArmEmulator, nsg: str) -> list[str]:
    doc = _nsg(emu, nsg)
    return [r["name"] for r in doc["properties"]["securityRules"]]  # type: ignore[index]


async def test_rule_operation_rolled_back_is_written_again() -> None:
    """A rule PUT accepted (201) whose operation then ends Failed (OperationPreempted) rolls
    the rule back: the fleet must wait for the operation and write the rule again, never
    report the VM enabled behind a missing rule (it used to skip waiting for the last
    write to an NSG)."""
    emu = ArmEmulator(seed=1)
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT", path_regex=r"/PortForWAC$")
    async with emu.session() as session:
        result = await enable_many(session, [t], access=ONPREM)
    assert emu.faults.counts == {"OperationPreempted": 1}
    assert result.outcomes[0].status is OutcomeStatus.ENABLED, str(result)
    assert "PortForWAC" in _rule_names(emu, "vm1-nsg")
    puts = [r for r in emu.writes() if r.path.endswith("/PortForWAC")]
    assert len(puts) == 2  # the rolled-back write and the retry


async def test_extension_operation_rolled_back_is_sent_again() -> None:
    """An extension PUT whose operation ends Failed with a transient code is rolled back by
    ARM; the fleet used to fail the VM ("no longer on the VM, run the batch again")."""
    emu = ArmEmulator(seed=2)
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.faults.add_scripted(
        1, "InternalExecutionError", method="PUT", path_regex=r"/extensions/AdminCenter$"
    )
    async with emu.session() as session:
        result = await enable_many(session, [t])
    assert emu.faults.counts == {"InternalExecutionError": 1}
    assert result.outcomes[0].status is OutcomeStatus.ENABLED, str(result)
    ext = emu.resource(t.resource_id + "/extensions/AdminCenter")
    assert ext["properties"]["provisioningState"] == "Succeeded"


async def test_custom_deny_rule_is_planned_around_not_skipped() -> None:
    """A deny rule the planner can route around (network.* checks that fail) is no reason to
    skip a VM: enable() plans around it, and enable_many used to skip the VM instead."""
    emu = ArmEmulator(seed=3)
    t = emu.add_windows_vm("vm1", nsg="nic")
    nsg_id = t.resource_id.split("/providers/")[0] + (
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    emu.add_rule(
        nsg_id,
        _rule(
            "DenyAllInbound",
            4000,
            "Inbound",
            "Deny",
            protocol="*",
            sourceAddressPrefix="*",
            destinationAddressPrefix="*",
            destinationPortRange="*",
        ),
    )
    async with emu.session() as session:
        result = await enable_many(session, [t], access=ONPREM)
    assert result.outcomes[0].status is OutcomeStatus.ENABLED, str(result)
    rules = {r["name"]: r for r in _nsg(emu, "vm1-nsg")["properties"]["securityRules"]}  # type: ignore[index]
    assert rules["PortForWAC"]["properties"]["priority"] < 4000


async def test_pacer_waits_in_the_transports_time() -> None:
    """A 429 with Retry-After: 30 must not cost 30 real seconds on the in-process emulator
    (virtual time): the session's pacer used to sleep with asyncio.sleep and a real clock."""
    emu = ArmEmulator(seed=4)
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.faults.add_scripted(1, Fault.throttled(retry_after=30), method="GET")
    started = time.monotonic()
    async with emu.session() as session:
        result = await enable_many(session, [t])
        throttled = session.pacer.throttled
    assert time.monotonic() - started < 10
    assert result.ok
    assert throttled == 1


def test_lro_failure_with_transient_code_is_transient() -> None:
    """azure-core raises a poller's failure as HttpResponseError with the poll's 2xx status;
    retrying() must see OperationPreempted there as transient (it only looked at 409s)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.transport import HttpResponse

    from wac_azure._azure.retry import is_transient

    class _Resp(HttpResponse):  # a minimal finished response
        def __init__(self, status: int, body: bytes) -> None:
            super().__init__(None, None)  # type: ignore[arg-type]
            self.status_code = status
            self._body = body
            self.headers = {"content-type": "application/json"}
            self.reason = "OK"
            self.content_type = "application/json"

        def body(self) -> bytes:
            return self._body

    def err(status: int, code: str) -> HttpResponseError:
        body = (f'{{"status": "Failed", "error": {{"code": "{code}", "message": "m"}}}}').encode()
        return HttpResponseError(response=_Resp(status, body))

    assert is_transient(err(200, "OperationPreempted"))
    assert is_transient(err(200, "InternalExecutionError"))
    assert not is_transient(err(200, "VMExtensionProvisioningError"))
    assert not is_transient(err(500, "InternalServerError"))  # azure-core's to retry


@pytest.mark.parametrize("rate", [0.0, 0.3])
async def test_second_run_is_a_noop_even_with_faults(rate: float) -> None:
    emu = ArmEmulator(seed=5)
    targets = [emu.add_windows_vm(f"vm{i}", nsg=("subnet", "nic")[i % 2]) for i in range(6)]
    async with emu.session() as session:
        first = await enable_many(session, targets, access=ONPREM)
        assert first.ok, str(first)
        emu.faults.add_random(rate)
        before = len(emu.writes())
        again = await enable_many(session, targets, access=ONPREM)
    assert again.ok
    assert again.counts["changed"] == 0
    assert len(emu.writes()) == before


async def test_extension_delete_rolled_back_is_sent_again() -> None:
    """A DELETE accepted (202) whose operation ends Failed leaves the extension in place;
    disable_many used to wait for it to vanish until its timeout."""
    emu = ArmEmulator(seed=6)
    t = emu.add_windows_vm("vm1", nsg="nic")
    async with emu.session() as session:
        assert (await enable_many(session, [t])).ok
        emu.faults.add_scripted(
            1, "OperationPreempted", method="DELETE", path_regex=r"/extensions/AdminCenter$"
        )
        result = await disable_many(session, [t], timeout=20)
    assert emu.faults.counts == {"OperationPreempted": 1}
    assert result.outcomes[0].status is OutcomeStatus.DISABLED, str(result)
    with pytest.raises(LookupError):
        emu.resource(t.resource_id + "/extensions/AdminCenter")


async def test_a_burst_of_five_transient_answers_does_not_fail_a_read() -> None:
    """azure-core gives up after 3 retries of 5xx by default: a VM's read answered 503
    four times in a row failed the VM. The session now lets azure-core retry as often as
    RetryConfig.attempts allows."""
    emu = ArmEmulator(seed=7)
    t = emu.add_windows_vm("vm1", nsg="nic")
    for nth in range(1, 6):
        emu.faults.add_scripted(nth, "503", method="GET", path_regex=r"/virtualMachines/vm1$")
    async with emu.session() as session:
        result = await enable_many(session, [t])
    assert emu.faults.counts == {"503": 5}
    assert result.ok, str(result)


async def test_failed_extension_whose_delete_is_rolled_back_is_deleted_again() -> None:
    """Removing an extension whose install had failed: when the DELETE's operation ended
    Failed, the extension showed Failed again and disable_many gave up at once."""
    emu = ArmEmulator(seed=8)
    t = emu.add_windows_vm("vm1", nsg="nic")
    emu.guest(t).outbound_blocked = True
    async with emu.session() as session:
        first = await enable_many(session, [t])
        assert first.outcomes[0].status is OutcomeStatus.FAILED
        emu.faults.add_scripted(
            1, "InternalExecutionError", method="DELETE", path_regex=r"/extensions/AdminCenter$"
        )
        result = await disable_many(session, [t], timeout=20)
    assert emu.faults.counts == {"InternalExecutionError": 1}
    assert result.outcomes[0].status is OutcomeStatus.DISABLED, str(result)
