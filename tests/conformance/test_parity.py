"""Parity with recorded Azure: each recorded request kind replayed on the emulator answers alike.

As LocalStack checks itself against AWS: every flow below seeds the emulator with the
resources the recording started from, sends the recorded requests (in process, through
``emu.handle``; LRO polls follow the URLs the emulator gave), and compares each answer
with the recorded one (``parity.compare``: status, the headers that matter, body shape).
Every difference must be listed in KNOWN_DEVIATIONS with its reason; an entry that no
longer happens fails too, so the table stays honest. docs/testing.md, "Parity with
recorded Azure traffic", carries the same table.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import attrs

from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.wire import EmuRequest

from . import cassette
from .cassette import Interaction
from .parity import Deviation, Difference, compare, reconcile

_SOON = "being fixed in the emulator"
# The recorders of these cassettes drop some headers before writing them: azure_devtools'
# ReplayableTest.FILTER_HEADERS (Azure/azure-python-devtools,
# src/azure_devtools/scenario_tests/base.py) lists 'retry-after' and
# 'x-ms-ratelimit-remaining-subscription-reads'. Their absence here is no evidence.
_FILTERED = "the recorder drops this header (azure_devtools ReplayableTest.FILTER_HEADERS)"
_OPS_NETWORK = "nsg/*-poll|cli/rule-put-poll|public-ip/*-poll|vnet/*-poll"
_COMPUTE = "compute/*|cli/vm-get*|cli/run-command-*"

#: Every difference the emulator shows today against the recordings, and why.
#: ``exchange`` and ``where`` are globs over the exchange names below and
#: ``Difference.where`` (``|`` between alternatives). docs/testing.md has the same table.
KNOWN_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "*",
        "header:x-ms-ratelimit-remaining-subscription-reads",
        f"kept: ARM sends it on reads (request-limits-and-throttling.md) and {_FILTERED}",
    ),
    Deviation(
        "cli/*-get|nsg/*-get|public-ip/get|vnet/get",
        "header:etag",
        "Network answers a GET with the resource's etag in an ETag header too; the emulator "
        "has it in the body only",
    ),
    Deviation(
        _OPS_NETWORK,
        "body.name|body.startTime|body.endTime|body.percentComplete",
        'Network\'s operation status is only {"status"}; the emulator sends the full RPC '
        "operation resource (name, startTime, endTime, percentComplete)",
    ),
    Deviation(
        "compute/*-poll-succeeded|cli/run-command-poll-succeeded",
        "body.percentComplete",
        "Compute's finished operation has no percentComplete; the emulator's has 100",
    ),
    Deviation(
        "cli/run-command-poll-succeeded|cli/run-command-location-get",
        "body.properties.output.value[*]*|body.value[*]*",
        "the emulator answers every Run Command the Windows way (ComponentStatus/StdOut and "
        "/StdErr entries) and runs no shell; Linux RunShellScript answers one "
        "ProvisioningState/succeeded entry with [stdout]/[stderr] in its message",
    ),
    Deviation(
        "nsg/nsg-put",
        "body.properties.defaultSecurityRules[*].properties.provisioningState",
        "a new NSG's default rules are Updating with it on Azure, Succeeded at once in the "
        "emulator",
    ),
    Deviation(
        "public-ip/put|public-ip/get|public-ip/list",
        "body*.sku|body*.properties.resourceGuid|body*.properties.publicIPAddressVersion"
        "|body*.properties.idleTimeoutInMinutes|body*.properties.ipTags",
        "the emulator stores a public IP as sent, without the defaults Network fills in "
        "(sku Basic, IPv4, idle timeout 4, ipTags, resourceGuid)",
    ),
    Deviation(
        "vnet/put|vnet/get|vnet/list",
        "body*.properties.resourceGuid|body*.properties.virtualNetworkPeerings"
        "|body*.subnets[*].etag|body*.subnets[*].type|body*.subnets[*].properties.delegations"
        "|body*.subnets[*].properties.private*NetworkPolicies",
        "the emulator stores a VNet as sent, without the defaults Network fills in "
        "(resourceGuid, peerings, each subnet's etag, type, delegations, network policies)",
    ),
    Deviation(
        "public-ip/delete*|public-ip/list-after-delete|vnet/delete*",
        "*",
        "the emulator has no DELETE for public IPs and VNets (405 MethodNotAllowed): the "
        "resource stays and the recorded operation is unknown (404)",
    ),
)


@attrs.frozen
class Answer:
    """What the emulator answered to one replayed request."""

    status: int
    headers: dict[str, str]
    body: Any


@attrs.define
class Replayer:
    """Sends recorded requests to an emulator and keeps (exchange name, recorded, answer)."""

    emu: ArmEmulator
    exchanges: list[tuple[str, Interaction, Answer]] = attrs.field(factory=list)

    async def send(self, method: str, url: str, body: str | bytes | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.emu.token}"}
        data = body.encode() if isinstance(body, str) else (body or b"")
        if data:
            headers["Content-Type"] = "application/json"
        resp = await self.emu.handle(EmuRequest(method, url, headers, data))
        parsed = json.loads(resp.body) if resp.body.strip() else None
        return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, parsed)

    async def replay(self, name: str, recorded: Interaction, url: str | None = None) -> Answer:
        """Send ``recorded``'s request (to ``url`` when given: a URL the emulator announced)."""
        answer = await self.send(recorded.method, url or recorded.uri, recorded.request_body)
        self.exchanges.append((name, recorded, answer))
        return answer

    async def resource_group(self, interaction: Interaction) -> None:
        """Create the resource group of a recorded request (the recordings start from one)."""
        parts = interaction.path.split("/")
        sub, rg = parts[2], parts[4]
        base = interaction.uri.split("/subscriptions/")[0]
        answer = await self.send(
            "PUT",
            f"{base}/subscriptions/{sub}/resourcegroups/{rg}?api-version=2020-06-01",
            json.dumps({"location": "westus"}),
        )
        assert answer.status in (200, 201), answer


def _without_rule(nsg: dict[str, Any], name: str) -> dict[str, Any]:
    out = json.loads(json.dumps(nsg))
    out["properties"]["securityRules"] = [
        r for r in out["properties"]["securityRules"] if r["name"] != name
    ]
    return out


# -- the flows: one per recorded sequence ---------------------------------------------------------


async def compute_extension_flow(r: Replayer) -> None:
    """Windows VM: GET, extension PUT + polls + GET, extension DELETE + polls (SDK, 2020-09)."""
    cmp = cassette.load(cassette.SDK_VM_EXTENSIONS)
    r.emu.seed(cmp[16].json())
    await r.replay("compute/vm-get", cmp[16])
    put = await r.replay("compute/extension-put", cmp[17])
    status_url = put.headers["azure-asyncoperation"]
    await r.replay("compute/extension-put-poll-inprogress", cmp[18], status_url)
    await r.replay("compute/extension-put-poll-succeeded", cmp[27], status_url)
    await r.replay("compute/extension-get", cmp[28])
    delete = await r.replay("compute/extension-delete", cmp[30])
    status_url = delete.headers.get("azure-asyncoperation", delete.headers.get("location", ""))
    await r.replay("compute/extension-delete-poll-inprogress", cmp[31], status_url)
    await r.replay("compute/extension-delete-poll-succeeded", cmp[32], status_url)


def _seed_cli_vm(r: Replayer, cli: list[Interaction]) -> None:
    r.emu.seed(cli[9].json())  # the VM as GET ...?$expand=instanceView answered it
    for i in (10, 11):  # its NIC and public IP
        r.emu.seed(cli[i].json())
    r.emu.seed(_without_rule(cli[17].json(), "open-port-80"))  # its NSG before `vm open-port`


async def cli_vm_flow(r: Replayer) -> None:
    """Linux VM: GET with instanceView, NIC, IP, `vm open-port`'s rule PUT (CLI, 2020-09)."""
    cli = cassette.load(cassette.CLI_RUN_COMMAND)
    _seed_cli_vm(r, cli)
    await r.replay("cli/vm-get-instanceview", cli[9])
    await r.replay("cli/nic-get", cli[10])
    await r.replay("cli/public-ip-get", cli[11])
    await r.replay("cli/vm-get", cli[12])
    put = await r.replay("cli/rule-put", cli[14])
    await r.replay("cli/rule-put-poll", cli[15], put.headers["azure-asyncoperation"])
    await r.replay("cli/rule-get", cli[16])
    await r.replay("cli/nsg-get", cli[17])


async def cli_run_command_flow(r: Replayer) -> None:
    """Linux VM: Run Command POST, its polls, then a GET of its ``Location`` (CLI, 2020-09)."""
    cli = cassette.load(cassette.CLI_RUN_COMMAND)
    _seed_cli_vm(r, cli)
    post = await r.replay("cli/run-command-post", cli[18])
    status_url = post.headers.get("azure-asyncoperation", "")
    await r.replay("cli/run-command-poll-inprogress", cli[19], status_url)
    await r.replay("cli/run-command-poll-succeeded", cli[21], status_url)
    await r.replay("cli/run-command-location-get", cli[22], post.headers.get("location", ""))


async def nsg_flow(r: Replayer) -> None:
    """NSG with an inline rule: PUT, GET, rule PUT/GET/list/DELETE, NSG DELETE (SDK, 2020-03)."""
    nsg = cassette.load(cassette.SDK_NSGS)
    await r.resource_group(nsg[0])
    put = await r.replay("nsg/nsg-put", nsg[0])
    await r.replay("nsg/nsg-put-poll", nsg[1], put.headers["azure-asyncoperation"])
    await r.replay("nsg/nsg-get", nsg[2])
    await r.replay("nsg/nsg-list", nsg[4])
    put = await r.replay("nsg/rule-put", nsg[6])
    await r.replay("nsg/rule-put-poll", nsg[7], put.headers["azure-asyncoperation"])
    await r.replay("nsg/rule-get", nsg[8])
    await r.replay("nsg/rule-list", nsg[10])
    delete = await r.replay("nsg/rule-delete", nsg[11])
    await r.replay("nsg/rule-delete-poll", nsg[12], delete.headers.get("azure-asyncoperation"))
    delete = await r.replay("nsg/nsg-delete", nsg[13])
    await r.replay("nsg/nsg-delete-poll", nsg[14], delete.headers.get("azure-asyncoperation"))


async def public_ip_flow(r: Replayer) -> None:
    """Dynamic Basic public IP: PUT, poll, GET, list, DELETE, poll, empty list (SDK, 2020-03)."""
    pip = cassette.load(cassette.SDK_PUBLIC_IPS)
    await r.resource_group(pip[0])
    put = await r.replay("public-ip/put", pip[0])
    await r.replay("public-ip/put-poll", pip[1], put.headers["azure-asyncoperation"])
    await r.replay("public-ip/get", pip[2])
    await r.replay("public-ip/list", pip[4])
    delete = await r.replay("public-ip/delete", pip[6])
    await r.replay("public-ip/delete-poll", pip[7], delete.headers.get("azure-asyncoperation"))
    await r.replay("public-ip/list-after-delete", pip[8])


async def vnet_flow(r: Replayer) -> None:
    """VNet with two subnets and DHCP options: PUT, poll, GET, list, DELETE, poll (SDK, 2020-03)."""
    vnet = cassette.load(cassette.SDK_VNETS)
    await r.resource_group(vnet[0])
    put = await r.replay("vnet/put", vnet[0])
    await r.replay("vnet/put-poll", vnet[1], put.headers["azure-asyncoperation"])
    await r.replay("vnet/get", vnet[2])
    await r.replay("vnet/list", vnet[5])
    delete = await r.replay("vnet/delete", vnet[7])
    await r.replay("vnet/delete-poll", vnet[8], delete.headers.get("azure-asyncoperation"))


Flow = Callable[[Replayer], Coroutine[Any, Any, None]]

#: (flow, lro_polls): Compute's recordings poll InProgress before Succeeded; Network's
#: operations had finished by the first poll.
FLOWS: tuple[tuple[Flow, int], ...] = (
    (compute_extension_flow, 2),
    (cli_vm_flow, 1),
    (cli_run_command_flow, 2),
    (nsg_flow, 1),
    (public_ip_flow, 1),
    (vnet_flow, 1),
)


@functools.cache
def replayed() -> tuple[tuple[str, Interaction, Answer], ...]:
    """Every flow run once on a fresh emulator (cached: the tests below share the run)."""

    async def run_all() -> list[tuple[str, Interaction, Answer]]:
        out: list[tuple[str, Interaction, Answer]] = []
        for flow, polls in FLOWS:
            replayer = Replayer(ArmEmulator(seed=0, lro_polls=polls))
            await flow(replayer)
            bugs = replayer.emu.internal_errors
            assert not bugs, "\n".join(f"{b}\n{b.traceback}" for b in bugs)
            out.extend(replayer.exchanges)
        return out

    return tuple(asyncio.run(run_all()))


def differences() -> list[tuple[str, Difference]]:
    return [
        (name, diff)
        for name, recorded, answer in replayed()
        for diff in compare(
            recorded.status,
            recorded.headers,
            recorded.json(),
            answer.status,
            answer.headers,
            answer.body,
        )
    ]


# -- the tests ------------------------------------------------------------------------------------

REQUEST_KINDS = {
    "compute/vm-get",
    "cli/vm-get-instanceview",
    "compute/extension-put",
    "compute/extension-put-poll-inprogress",
    "compute/extension-put-poll-succeeded",
    "compute/extension-get",
    "compute/extension-delete",
    "compute/extension-delete-poll-succeeded",
    "cli/run-command-post",
    "cli/run-command-poll-inprogress",
    "cli/run-command-poll-succeeded",
    "cli/run-command-location-get",
    "nsg/nsg-put",
    "nsg/nsg-get",
    "nsg/nsg-delete",
    "nsg/rule-put",
    "nsg/rule-get",
    "nsg/rule-delete",
    "nsg/rule-list",
    "cli/rule-put",
    "public-ip/put",
    "public-ip/get",
    "public-ip/delete",
    "vnet/put",
    "vnet/get",
    "vnet/delete",
}


def test_every_recorded_request_kind_is_replayed() -> None:
    names = [name for name, _, _ in replayed()]
    assert set(names) >= REQUEST_KINDS
    assert len(names) == len(set(names))


def test_the_emulator_answers_like_the_recordings_but_for_known_deviations() -> None:
    result = reconcile(differences(), KNOWN_DEVIATIONS)
    assert result.ok, "\n" + result.report()


def test_every_known_deviation_has_a_reason_and_names_a_replayed_exchange() -> None:
    names = [name for name, _, _ in replayed()]
    for deviation in KNOWN_DEVIATIONS:
        assert deviation.reason.strip(), deviation
        assert any(deviation.names(n) for n in names), deviation


def test_docs_carry_the_same_deviation_tables() -> None:
    """docs/testing.md, "Parity with recorded Azure traffic", lists every entry of both tables."""
    from .test_seed import SEED_DEVIATIONS

    text = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text("utf-8")
    section = text.split("## Parity with recorded Azure traffic", 1)[1]
    section = re.split(r"^## ", section, flags=re.M)[0]
    rows = re.findall(r"^\| (S?\d+) \|", section, flags=re.M)
    assert len([r for r in rows if not r.startswith("S")]) == len(KNOWN_DEVIATIONS)
    assert len([r for r in rows if r.startswith("S")]) == len(SEED_DEVIATIONS)
    for deviation in (*KNOWN_DEVIATIONS, *SEED_DEVIATIONS):
        for glob in (*deviation.exchange.split("|"), *deviation.where.split("|")):
            assert f"`{glob}`" in section, (glob, deviation)
