"""The emulator's trust boundary (bearer token, loopback only) and the public-access gate.

(tests/testing/test_server.py covers the host-name checks and one 401; this adds the
token variants, "a refused write changes nothing", the bound socket, and the gate.)
"""

from __future__ import annotations

import json
import socket

import pytest

from wac_azure import InvalidAccessError, PrivateAccess, PublicAccess, enable_many, plan_network
from wac_azure.testing import ArmEmulator
from wac_azure.testing.backend.wire import EmuRequest

BASE = "https://arm.emulator.localhost"


def _auth_variants(token: str) -> list[dict[str, str]]:
    return [
        {},
        {"Authorization": ""},
        {"Authorization": token},  # no scheme
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Bearer {token.upper()}"},
    ]


async def test_requests_without_the_valid_token_get_401_and_change_nothing() -> None:
    emu = ArmEmulator(seed=1)
    t = emu.add_windows_vm("vm1")
    emu.faults.add_random(1.0)  # faults never reach unauthenticated requests
    nsg = t.resource_id.split("/providers/")[0] + (
        "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )
    body = json.dumps(
        {
            "properties": {
                "protocol": "*",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 100,
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "*",
            }
        }
    ).encode()
    before = emu.resource(nsg)
    for headers in _auth_variants(emu.token):
        for method, path, data in (
            ("GET", t.resource_id, b""),
            ("PUT", f"{nsg}/securityRules/OpenAll", body),
            ("DELETE", t.resource_id, b""),
        ):
            req = EmuRequest(method, f"{BASE}{path}?api-version=2024-05-01", headers, data)
            resp = await emu.handle(req)
            assert resp.status == 401, (method, headers)
            assert emu.token not in resp.body.decode()
    assert emu.faults.total == 0
    assert emu.resource(nsg) == before
    assert emu.resource(t.resource_id)["name"] == "vm1"
    good = EmuRequest(
        "GET",
        f"{BASE}{t.resource_id}?api-version=2024-07-01",
        {"Authorization": f"Bearer {emu.token}"},
    )
    emu.faults.enabled = False
    assert (await emu.handle(good)).status == 200


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


async def test_https_front_listens_on_loopback_only() -> None:
    emu = ArmEmulator(seed=2)
    async with emu.serve() as srv:
        assert srv.host == "127.0.0.1"
        assert srv.base_url.startswith("https://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=2):
            pass
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, srv.port), timeout=2).close()


WIDE = [
    ["*"],
    ["Internet"],
    ["any"],
    ["0.0.0.0/0"],
    ["::/0"],
    [" 0.0.0.0/0 "],
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["::/1", "8000::/1"],
    ["1.2.3.4", "0.0.0.0/0"],
    ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"],
    ["::/0", "10.0.0.0/8"],
]


@pytest.mark.parametrize("sources", WIDE)
def test_wide_sources_refused_in_both_modes(sources: list[str]) -> None:
    with pytest.raises(InvalidAccessError):
        PublicAccess(sources)
    with pytest.raises(InvalidAccessError):
        PrivateAccess(sources=tuple(sources))


def test_anywhere_needs_explicit_acknowledgement() -> None:
    for ack in (False, None, 1, "yes", "True"):
        with pytest.raises(InvalidAccessError):
            PublicAccess.anywhere(acknowledge_risk=ack)  # type: ignore[arg-type]
    assert PublicAccess.anywhere(acknowledge_risk=True).open_to_everyone


async def test_fleet_opens_to_everyone_only_with_anywhere(emu: ArmEmulator) -> None:
    """The only way to a rule from '*' is anywhere(acknowledge_risk=True); the plan warns."""
    t = emu.add_windows_vm("vm1", nsg="nic", public_ip=True)
    async with emu.session() as session:
        from wac_azure import read_vm_facts

        facts = await read_vm_facts(session, t)
        narrow = plan_network(facts, access=PublicAccess(["203.0.113.0/24"]))
        wide = plan_network(facts, access=PublicAccess.anywhere(acknowledge_risk=True))
        result = await enable_many(session, [t], access=PublicAccess(["203.0.113.0/24"]))
    assert result.ok
    srcs = {p for c in narrow.changes if c.rule is not None for p in c.rule.source_prefixes}
    assert srcs
    assert not srcs & {"*", "Internet", "0.0.0.0/0", "::/0"}
    inbound = [
        c for c in wide.changes if c.rule is not None and c.rule.direction.value == "Inbound"
    ]
    assert inbound
    assert "*" in inbound[0].rule.source_prefixes
    assert any("every host" in w or "internet" in w.lower() for w in wide.warnings)
    rules = emu.resource(
        t.resource_id.split("/providers/")[0]
        + "/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg"
    )["properties"]["securityRules"]
    opened = [r for r in rules if r["name"] == "PortForWAC"]
    assert opened
    assert opened[0]["properties"].get("sourceAddressPrefix") != "*"
