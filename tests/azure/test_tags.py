"""read_service_tags: one read per session and location, shared; failures are None."""

from __future__ import annotations

import asyncio

from wac_azure import AzureSession, read_vm_facts
from wac_azure._azure.tags import read_service_tags, service_tags_for
from wac_azure._core.nsg import ServiceTags
from wac_azure._core.servicetags import merge_service_tags
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator, Fault

SUB = DEFAULT_SUBSCRIPTION


def tag_reads(emu: ArmEmulator) -> list[str]:
    return [r.path for r in emu.requests if r.path.lower().endswith("/servicetags")]


async def test_concurrent_callers_share_one_read(emu: ArmEmulator, session: AzureSession) -> None:
    found = await asyncio.gather(
        *(read_service_tags(session, SUB, "westeurope") for _ in range(8)),
        read_service_tags(session, SUB.upper(), "WestEurope"),
    )
    assert len(tag_reads(emu)) == 1
    first = found[0]
    assert isinstance(first, ServiceTags)
    assert all(t is first for t in found)
    assert first.networks("WindowsAdminCenter")
    # cached: a later caller does not ask again; another location does
    assert await read_service_tags(session, SUB, "westeurope") is first
    assert len(tag_reads(emu)) == 1
    assert await read_service_tags(session, SUB, "eastus") is not first
    assert len(tag_reads(emu)) == 2


async def test_refused_read_is_none_and_remembered(emu: ArmEmulator, session: AzureSession) -> None:
    refused = Fault("status", status=403, code="AuthorizationFailed", message="no serviceTags/read")
    emu.faults.add_scripted(1, refused, method="GET", path_regex=r"/serviceTags")
    found = await asyncio.gather(*(read_service_tags(session, SUB, "westeurope") for _ in range(3)))
    assert found == [None, None, None]
    # the miss is cached for the session: no second request, although it would now succeed
    assert await read_service_tags(session, SUB, "westeurope") is None
    assert len(tag_reads(emu)) == 1


async def test_new_session_reads_again(emu: ArmEmulator) -> None:
    for _ in range(2):
        async with emu.session() as s:
            assert await read_service_tags(s, SUB, "westeurope") is not None
    assert len(tag_reads(emu)) == 2


async def test_service_tags_for_merges_and_warns(emu: ArmEmulator, session: AzureSession) -> None:
    t1 = emu.add_windows_vm("vm1")
    t2 = emu.add_windows_vm("vm2")
    facts = [await read_vm_facts(session, t) for t in (t1, t2)]
    tags, warnings = await service_tags_for(session, facts)
    assert warnings == []
    assert len(tag_reads(emu)) == 1  # both VMs are in one location
    alone = await read_service_tags(session, SUB, facts[0].location)
    assert alone is not None
    assert tags.names() == alone.names()

    refused = Fault("status", status=403, code="AuthorizationFailed", message="no")
    emu.faults.add_scripted(1, refused, method="GET", path_regex=r"/serviceTags")
    async with emu.session() as other:
        tags, warnings = await service_tags_for(other, facts)
    assert len(tags) == 0
    assert len(warnings) == 1
    assert facts[0].location in warnings[0]


def test_merge_joins_prefixes_case_insensitively() -> None:
    a = ServiceTags({"WindowsAdminCenter": ["20.1.0.0/24"], "AzureCloud": ["10.0.0.0/8"]})
    b = ServiceTags({"windowsadmincenter": ["20.2.0.0/24"]})
    merged = merge_service_tags([a, b])
    nets = merged.networks("WINDOWSADMINCENTER")
    assert nets is not None
    assert sorted(str(n) for n in nets) == ["20.1.0.0/24", "20.2.0.0/24"]
    assert merged.networks("AzureCloud") is not None
    assert merged.networks("Storage") is None
