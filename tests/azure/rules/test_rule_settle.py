"""A rule write counts once the rule's own GET shows it ``Succeeded``: one read per write."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.rest import HttpRequest

from wac_azure import AzureSession, NetworkRulePlanner, OperationFailedError, PrivateAccess
from wac_azure._azure.rules import settle_rule_write
from wac_azure.testing import ArmEmulator, Fault

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))
RULE_PATH = r"/securityRules/[^/]+$"


def rule_gets(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "GET" and "/securityrules/" in r.path.lower()]


def polls(emu: ArmEmulator) -> list[Any]:
    return [r for r in emu.requests if r.is_poll]


def body(source: str = "10.10.0.0/16", priority: int = 310) -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "6516",
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": "*",
            "access": "Allow",
            "priority": priority,
            "direction": "Inbound",
        }
    }


async def put_rule(session: AzureSession, nsg_id: str, name: str, doc: dict[str, Any]) -> Any:
    """A rule PUT not waited for; returns ARM's answer's headers."""
    parts = nsg_id.split("/")
    answer: list[Any] = []
    await session.network(parts[2]).security_rules.begin_create_or_update(
        parts[4], parts[-1], name, doc, polling=False, raw_response_hook=answer.append
    )
    return answer[-1].http_response.headers


async def test_apply_reads_the_rule_and_polls_no_operation(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(target, access=ONPREM)
    assert plan.changes
    emu.requests.clear()

    result = await planner.apply(plan)

    assert result.changed
    # one GET of each rule written (it shows Succeeded and the write), no operation poll
    assert polls(emu) == []
    assert len(rule_gets(emu)) == len(result.created) + len(result.updated)


async def test_a_running_write_is_read_until_its_rule_shows_succeeded() -> None:
    # ARM RPC (Addendum, PUT steps 4-6): the resource's GET shows a non-terminal
    # provisioningState while the operation runs; the emulator ends it on its third read
    emu = ArmEmulator(seed=0, lro_polls=3)
    target = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        planner = NetworkRulePlanner(session)
        plan = await planner.plan(target, access=ONPREM)
        emu.requests.clear()
        result = await planner.apply(plan)

    assert len(result.created) == 1
    states = [r.response_json["properties"]["provisioningState"] for r in rule_gets(emu)]
    assert states == ["Updating", "Updating", "Succeeded"]
    assert polls(emu) == []


async def test_a_preempted_write_reads_its_operation_and_is_sent_again(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    planner = NetworkRulePlanner(session)
    plan = await planner.plan(target, access=ONPREM)
    (change,) = plan.changes
    emu.faults.add_scripted(1, Fault.lro_failed(), method="PUT", path_regex=RULE_PATH)
    emu.requests.clear()

    result = await planner.apply(plan)

    assert len(result.created) == 1
    rid = f"{change.nsg_id}/securityRules/{change.rule_name}"
    rule = emu.resource(rid)
    assert rule["properties"]["provisioningState"] == "Succeeded"
    # the rolled-back rule is gone (404): its operation is read once for the verdict
    # (Failed, OperationPreempted: transient), and the write is sent again
    puts = [r for r in emu.requests if r.method == "PUT" and "/securityrules/" in r.path.lower()]
    assert len(puts) == 2
    assert len(polls(emu)) == 1
    assert [r.status for r in rule_gets(emu)] == [404, 200]


async def test_a_rule_another_writer_replaced_is_not_in_force(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    nsg = f"/subscriptions/{target.subscription_id}/resourceGroups/{target.resource_group}"
    nsg += "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    rid = f"{nsg}/securityRules/ours"
    headers = await put_rule(session, nsg, "ours", body())
    network = session.network(target.subscription_id)
    # our operation ends Succeeded (its poll ends it); then someone else's write of the
    # same rule, which ends Succeeded too
    await network.send_request(HttpRequest("GET", headers["Azure-AsyncOperation"]))
    theirs = await put_rule(session, nsg, "ours", body(source="192.0.2.0/24"))
    await network.send_request(HttpRequest("GET", theirs["Azure-AsyncOperation"]))
    emu.requests.clear()

    with pytest.raises(OperationFailedError) as caught:
        await settle_rule_write(session, headers, rid, body(), what="writing ours")

    assert caught.value.code == "WriteNotInForce"
    # the rule read shows Succeeded with other properties: the operation says it succeeded
    assert len(rule_gets(emu)) == 1
    assert len(polls(emu)) == 1


async def test_a_delete_counts_once_the_rule_is_gone(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    planner = NetworkRulePlanner(session)
    await planner.apply(await planner.plan(target, access=ONPREM))
    emu.requests.clear()

    result = await planner.remove(target)

    assert len(result.deleted) == 1
    assert polls(emu) == []
    assert [r.status for r in rule_gets(emu)] == [404]
