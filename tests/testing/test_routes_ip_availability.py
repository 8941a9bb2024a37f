"""``GET …/virtualNetworks/{vnet}/CheckIPAddressAvailability``, through the real aio SDK client.

Source: azure-rest-api-specs, specification/network/resource-manager/Microsoft.Network/
stable/2024-05-01/examples/VirtualNetworkCheckIPAddressAvailability.json (operation
VirtualNetworks_CheckIPAddressAvailability): 10.0.1.4 is taken, the answer is
``available: false`` and the next five free addresses. A free address answers
``available: true, isPlatformReserved: false`` (as quoted in Azure/azure-cli#13259 and
Azure/azure-rest-api-specs#10596); Azure reserves the first four addresses and the
last of every subnet (Virtual Network FAQ).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from hypothesis import given, settings
from hypothesis import strategies as st

from wac_azure import AzureSession
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator
from wac_azure.testing.backend.netpath import ip_availability
from wac_azure.testing.backend.wire import EmuRequest

from ._helpers import BASE

RG = "rg-wac"
VNET = "vnet-westeurope"

#: The spec example's response body (VirtualNetworkCheckIPAddressAvailability.json).
SPEC_EXAMPLE: dict[str, Any] = {
    "available": False,
    "availableIPAddresses": ["10.0.1.5", "10.0.1.6", "10.0.1.7", "10.0.1.8", "10.0.1.9"],
}


def _two_subnets(emu: ArmEmulator) -> None:
    """Subnet default-nsg is 10.0.0.0/24 (vm0: 10.0.0.4); default is 10.0.1.0/24 (vm1:
    10.0.1.4, the address of the spec example)."""
    emu.add_windows_vm("vm0", nsg="subnet")
    emu.add_windows_vm("vm1", nsg="nic")


async def test_a_taken_address_answers_as_the_spec_example(
    emu: ArmEmulator, session: AzureSession
) -> None:
    _two_subnets(emu)
    net = session.network(DEFAULT_SUBSCRIPTION)
    got = await net.virtual_networks.check_ip_address_availability(RG, VNET, ip_address="10.0.1.4")
    assert got.available is SPEC_EXAMPLE["available"]
    assert got.available_ip_addresses == SPEC_EXAMPLE["availableIPAddresses"]
    assert got.is_platform_reserved is False
    record = emu.requests[-1]
    assert record.path.lower().endswith(f"/virtualnetworks/{VNET}/checkipaddressavailability")
    assert record.query["ipAddress"] == "10.0.1.4"


async def test_free_and_reserved_addresses(emu: ArmEmulator, session: AzureSession) -> None:
    _two_subnets(emu)
    net = session.network(DEFAULT_SUBSCRIPTION)
    free = await net.virtual_networks.check_ip_address_availability(
        RG, VNET, ip_address="10.0.1.100"
    )
    assert (free.available, free.is_platform_reserved) == (True, False)
    assert not free.available_ip_addresses
    for reserved in ("10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"):
        got = await net.virtual_networks.check_ip_address_availability(
            RG, VNET, ip_address=reserved
        )
        assert (got.available, got.is_platform_reserved) == (False, True), reserved
        assert "10.0.1.4" not in (got.available_ip_addresses or [])  # vm1 holds it
    # an address another NIC gave up is free again
    nic = emu.resource(
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/networkInterfaces/vm1-nic"
    )
    nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = "10.0.1.50"
    emu.seed(nic)
    again = await net.virtual_networks.check_ip_address_availability(
        RG, VNET, ip_address="10.0.1.4"
    )
    assert again.available is True


async def test_bad_asks(emu: ArmEmulator, session: AzureSession) -> None:
    _two_subnets(emu)
    net = session.network(DEFAULT_SUBSCRIPTION)
    with pytest.raises(HttpResponseError) as outside:
        await net.virtual_networks.check_ip_address_availability(RG, VNET, ip_address="10.0.200.4")
    assert outside.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        await net.virtual_networks.check_ip_address_availability(
            RG, "no-such-vnet", ip_address="10.0.1.4"
        )
    path = (
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RG}/providers/"
        f"Microsoft.Network/virtualNetworks/{VNET}/CheckIPAddressAvailability"
    )
    for query in ("", "&ipAddress=not-an-ip"):
        resp = await emu.handle(
            EmuRequest(
                "GET",
                f"{BASE}{path}?api-version=2024-05-01{query}",
                {"Authorization": f"Bearer {emu.token}"},
            )
        )
        assert resp.status == 400, query
        assert json.loads(resp.body)["error"]["code"]


@settings(max_examples=60, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=255),
    held=st.sets(st.integers(min_value=4, max_value=254), max_size=12),
)
def test_availability_is_held_or_reserved(offset: int, held: set[int]) -> None:
    """Property: an address is available exactly when no NIC of the VNet holds it and
    Azure does not reserve it; the suggested ones are free, after it, in its subnet."""
    emu = ArmEmulator(seed=0)
    emu.add_windows_vm("vm0", nsg="nic")  # subnet default: 10.0.0.0/24
    base = ipaddress.ip_address("10.0.0.0")
    nic_id = (
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/networkInterfaces/vm0-nic"
    )
    nic = emu.resource(nic_id)
    conf = nic["properties"]["ipConfigurations"][0]
    nic["properties"]["ipConfigurations"] = [
        {
            **conf,
            "name": f"c{n}",
            "properties": {**conf["properties"], "privateIPAddress": str(base + n)},
        }
        for n in sorted(held)
    ]
    emu.seed(nic)
    vnet = emu.resource(
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RG}/providers/"
        f"Microsoft.Network/virtualNetworks/{VNET}"
    )
    answer = ip_availability(emu.store, vnet, str(base + offset))
    assert answer is not None
    reserved = offset < 4 or offset == 255
    assert answer["available"] is (not reserved and offset not in held)
    assert answer["isPlatformReserved"] is reserved
    for suggested in answer.get("availableIPAddresses") or []:
        n = int(ipaddress.ip_address(suggested)) - int(base)
        assert offset < n < 255
        assert n not in held
    assert len(answer.get("availableIPAddresses") or []) <= 5
