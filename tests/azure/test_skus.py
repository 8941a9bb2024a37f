"""VM sizes the supported way: Compute's resource SKUs (vmSizes only where skus 404s)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import AzureSession, read_vm_facts
from wac_azure._azure.inventory import read_vm_sizes
from wac_azure._core.facts import parse_resource_skus
from wac_azure.testing import ArmEmulator

from tests._shared import ARM_FIXTURES

FIXTURE = ARM_FIXTURES / "compute.ListAvailableResourceSkusForARegion.json"


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared fixtures not mounted")
def test_the_recorded_sku_list_gives_memory_and_cores() -> None:
    body = json.loads(FIXTURE.read_text())["responses"]["200"]["body"]
    sizes = parse_resource_skus(body, "westus")
    assert sizes["standard_a0"] == (768, 1)  # MemoryGB "0.75", vCPUs "1"
    assert sizes["standard_a1"] == (1792, 1)  # "1.75" GiB
    assert parse_resource_skus(body, "eastus") == {}  # offered in westus only


def test_only_virtual_machine_skus_count() -> None:
    items = [
        {
            "resourceType": "disks",
            "name": "Premium_LRS",
            "capabilities": [{"name": "MemoryGB", "value": "4"}],
        },
        {
            "resourceType": "virtualMachines",
            "name": "Standard_D2s_v5",
            "locations": ["eastus"],
            "capabilities": [
                {"name": "vCPUs", "value": "2"},
                {"name": "MemoryGB", "value": "8"},
            ],
        },
        {"resourceType": "virtualMachines", "name": "Odd", "capabilities": [{"name": "vCPUs"}]},
    ]
    assert dict(parse_resource_skus({"value": items})) == {
        "standard_d2s_v5": (8192, 2),
        "odd": (None, None),
    }


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_capability = st.fixed_dictionaries(
    {"name": st.sampled_from(["MemoryGB", "vCPUs", "x"]) | st.text(max_size=6), "value": _json}
)
_sku = st.fixed_dictionaries(
    {
        "resourceType": st.sampled_from(["virtualMachines", "disks"]) | _json,
        "name": st.text(max_size=8) | _json,
        "locations": st.lists(st.text(max_size=6), max_size=2) | _json,
        "capabilities": st.lists(_capability, max_size=4) | _json,
    }
)


@given(st.lists(_sku, max_size=5) | _json, st.none() | st.text(max_size=6))
def test_junk_never_raises(items: Any, location: str | None) -> None:
    sizes = parse_resource_skus(items, location)
    for memory, cores in sizes.values():
        assert memory is None or (isinstance(memory, int) and memory >= 0)
        assert cores is None or (isinstance(cores, int) and cores >= 0)


async def test_sizes_come_from_skus_and_fall_back_to_vm_sizes_on_404(
    emu: ArmEmulator, session: AzureSession
) -> None:
    t = emu.add_windows_vm("vm1")
    sizes = await read_vm_sizes(session, t.subscription_id, "eastus")
    assert sizes  # the emulator answers one way or the other
    asked = [r for r in emu.requests if r.method == "GET"]
    assert asked[0].path.endswith("/providers/Microsoft.Compute/skus")
    assert asked[0].query["$filter"] == "location eq 'eastus'"
    if asked[0].status == 404:  # no skus route yet: the deprecated list, once
        assert asked[1].path.endswith("/vmSizes")
    facts = await read_vm_facts(session, t)
    assert facts.memory_mib is not None
