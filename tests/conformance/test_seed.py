"""``ArmEmulator.seed()`` of recorded documents serves them back as recorded, instance view too."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import attrs

from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.wire import EmuRequest

from . import cassette
from .cassette import Interaction
from .parity import Deviation, Difference, compare_json, reconcile

CLI = cassette.load(cassette.CLI_RUN_COMMAND)
CMP = cassette.load(cassette.SDK_VM_EXTENSIONS)
NSG = cassette.load(cassette.SDK_NSGS)
PIP = cassette.load(cassette.SDK_PUBLIC_IPS)
VNET = cassette.load(cassette.SDK_VNETS)


@attrs.frozen
class SeedCase:
    """Seed ``seeds`` (recorded GET answers, in order), then GET ``recorded`` again."""

    name: str
    recorded: Interaction
    seeds: tuple[Interaction, ...]


CASES = (
    SeedCase("cli/vm-instanceview", CLI[9], (CLI[9],)),
    SeedCase("cli/vm", CLI[12], (CLI[12],)),
    SeedCase("cli/nic", CLI[10], (CLI[10],)),
    SeedCase("cli/public-ip", CLI[11], (CLI[11],)),
    SeedCase("cli/nsg", CLI[17], (CLI[17],)),
    SeedCase("cli/rule", CLI[16], (CLI[17],)),
    SeedCase("compute/vm", CMP[16], (CMP[16],)),
    SeedCase("compute/extension", CMP[28], (CMP[16], CMP[28])),
    SeedCase("compute/nic", CMP[8], (CMP[8],)),
    SeedCase("compute/vnet", CMP[4], (CMP[4],)),
    SeedCase("compute/subnet", CMP[5], (CMP[4],)),
    SeedCase("nsg/nsg", NSG[2], (NSG[2],)),
    SeedCase("nsg/rule", NSG[8], (NSG[8],)),
    SeedCase("public-ip/public-ip", PIP[2], (PIP[2],)),
    SeedCase("vnet/vnet", VNET[2], (VNET[2],)),
)

#: What a seeded document loses or gains when the emulator serves it back, and why.
SEED_DEVIATIONS: tuple[Deviation, ...] = ()


async def _serve_back(case: SeedCase) -> tuple[int, Any]:
    emu = ArmEmulator(seed=0)
    for doc in case.seeds:
        emu.seed(doc.json())
    resp = await emu.handle(
        EmuRequest("GET", case.recorded.uri, {"Authorization": f"Bearer {emu.token}"})
    )
    assert not emu.internal_errors, emu.internal_errors
    return resp.status, json.loads(resp.body) if resp.body else None


@functools.cache
def served() -> tuple[tuple[SeedCase, int, Any], ...]:
    async def run() -> list[tuple[SeedCase, int, Any]]:
        return [(case, *(await _serve_back(case))) for case in CASES]

    return tuple(asyncio.run(run()))


def differences() -> list[tuple[str, Difference]]:
    out: list[tuple[str, Difference]] = []
    for case, status, body in served():
        if status != case.recorded.status:
            out.append(
                (case.name, Difference("status", f"recorded {case.recorded.status}, got {status}"))
            )
        out += [(case.name, d) for d in compare_json(case.recorded.json(), body, exact=True)]
    return out


def test_seeded_documents_come_back_as_recorded_but_for_known_deviations() -> None:
    result = reconcile(differences(), SEED_DEVIATIONS)
    assert result.ok, "\n" + result.report()


def test_the_seeded_instance_view_is_served() -> None:
    case, status, body = served()[0]
    assert case.name == "cli/vm-instanceview"
    assert status == 200
    recorded = case.recorded.json()["properties"]["instanceView"]
    view = body["properties"]["instanceView"]
    assert view["vmAgent"] == recorded["vmAgent"]
    assert (view["osName"], view["osVersion"]) == ("ubuntu", "18.04")
    assert "PowerState/running" in [s["code"] for s in view["statuses"]]


def test_every_seed_deviation_names_a_case_and_has_a_reason() -> None:
    for deviation in SEED_DEVIATIONS:
        assert deviation.reason.strip()
        assert any(deviation.names(c.name) for c in CASES), deviation
