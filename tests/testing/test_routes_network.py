"""The emulator's Network and Resources routes, through the real aio SDK clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import AzureSession
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator
from wac_azure.testing.backend.state import ArmError
from wac_azure.testing.routes.network import validate_rule

from ._helpers import nsg_id, rule_body
from ._helpers import rule as bare_rule

SUB = DEFAULT_SUBSCRIPTION
RG = "rg-wac"


def rule(priority: int = 200, **props: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": priority,
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "6516",
        "description": "Managed by wac_azure",
    }
    p.update(props)
    return {"properties": p}


async def put_rule(session: AzureSession, nsg: str, name: str, body: dict[str, Any]) -> Any:
    network = session.network(SUB)
    poller = await network.security_rules.begin_create_or_update(RG, nsg, name, body)
    return await poller.result()


async def test_nic_nsg_public_ip_vnet_subnet(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1", public_ip=True, nsg="both")
    network = session.network(SUB)
    nic = await network.network_interfaces.get(RG, "vm1-nic")
    conf = nic.ip_configurations[0]
    assert conf.private_ip_address.startswith("10.0.0.")
    assert conf.primary is True
    assert conf.public_ip_address.id.endswith("/publicIPAddresses/vm1-ip")
    assert nic.network_security_group.id.endswith("/networkSecurityGroups/vm1-nsg")
    assert nic.virtual_machine.id.endswith("/virtualMachines/vm1")
    pip = await network.public_ip_addresses.get(RG, "vm1-ip")
    assert pip.sku.name == "Standard"
    assert pip.ip_address
    # A VM with a subnet NSG and no subnet= gets the subnet-NSG subnet "default-nsg".
    subnet = await network.subnets.get(RG, "vnet-westeurope", "default-nsg")
    assert subnet.address_prefix == "10.0.0.0/24"
    assert subnet.network_security_group.id.endswith("/vnet-westeurope-default-nsg")
    vnet = await network.virtual_networks.get(RG, "vnet-westeurope")
    assert vnet.address_space.address_prefixes == ["10.0.0.0/16"]
    assert [s.name async for s in network.subnets.list(RG, "vnet-westeurope")] == ["default-nsg"]
    assert [n.name async for n in network.network_interfaces.list(RG)] == ["vm1-nic"]
    assert [n.name async for n in network.network_interfaces.list_all()] == ["vm1-nic"]
    assert [p.name async for p in network.public_ip_addresses.list(RG)] == ["vm1-ip"]
    assert [v.name async for v in network.virtual_networks.list(RG)] == ["vnet-westeurope"]


async def test_second_vm_shares_vnet_and_gets_next_ip(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2", nsg=None)
    network = session.network(SUB)
    a = await network.network_interfaces.get(RG, "vm1-nic")
    b = await network.network_interfaces.get(RG, "vm2-nic")
    assert a.ip_configurations[0].private_ip_address != b.ip_configurations[0].private_ip_address
    assert b.network_security_group is None
    assert [v.name async for v in network.virtual_networks.list(RG)] == ["vnet-westeurope"]


async def test_nsg_has_six_default_rules(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    nsg = await network.network_security_groups.get(RG, "vm1-nsg")
    names = [(r.name, r.priority, r.direction) for r in nsg.default_security_rules]
    assert ("AllowVnetInBound", 65000, "Inbound") in names
    assert ("AllowInternetOutBound", 65001, "Outbound") in names
    assert ("DenyAllOutBound", 65500, "Outbound") in names
    assert len(names) == 6
    defaults = [r.name async for r in network.default_security_rules.list(RG, "vm1-nsg")]
    assert len(defaults) == 6
    one = await network.default_security_rules.get(RG, "vm1-nsg", "DenyAllInBound")
    assert one.access == "Deny"


async def test_rule_round_trip(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    created = await put_rule(session, "vm1-nsg", "PortForWAC", rule())
    assert created.provisioning_state == "Succeeded"
    got = await network.security_rules.get(RG, "vm1-nsg", "PortForWAC")
    assert got.destination_port_range == "6516"
    assert got.description == "Managed by wac_azure"
    listed = [r.name async for r in network.security_rules.list(RG, "vm1-nsg")]
    assert listed == ["PortForWAC"]
    nsg = await network.network_security_groups.get(RG, "vm1-nsg")
    assert [r.name for r in nsg.security_rules] == ["PortForWAC"]
    statuses = [r.status for r in emu.requests if r.method == "PUT"]
    assert statuses == [201]
    await put_rule(session, "vm1-nsg", "PortForWAC", rule(destinationPortRange="7000"))
    assert [r.status for r in emu.requests if r.method == "PUT"] == [201, 200]
    await (await network.security_rules.begin_delete(RG, "vm1-nsg", "PortForWAC")).result()
    with pytest.raises(ResourceNotFoundError) as info:
        await network.security_rules.get(RG, "vm1-nsg", "PortForWAC")
    assert info.value.error.code == "ResourceNotFound"


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"priority": 99}, "SecurityRuleInvalidPriority"),
        ({"priority": 4097}, "SecurityRuleInvalidPriority"),
        ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": "90-80"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": "abc"}, "SecurityRuleInvalidPortRange"),
        ({"sourceAddressPrefix": "10.0.0.300"}, "SecurityRuleInvalidAddressPrefix"),
        ({"sourceAddressPrefix": "NotAServiceTag"}, "SecurityRuleInvalidAddressPrefix"),
        ({"protocol": "Smtp"}, "InvalidRequestFormat"),
        ({"access": "Maybe"}, "InvalidRequestFormat"),
        ({"direction": "Sideways"}, "InvalidRequestFormat"),
    ],
)
async def test_rule_validation(
    emu: ArmEmulator, session: AzureSession, props: dict[str, Any], code: str
) -> None:
    emu.add_windows_vm("vm1")
    with pytest.raises(HttpResponseError) as info:
        await put_rule(session, "vm1-nsg", "bad", rule(**props))
    assert info.value.status_code == 400
    assert info.value.error.code == code
    assert (
        emu.resource(
            f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/"
            "networkSecurityGroups/vm1-nsg"
        )["properties"]["securityRules"]
        == []
    )


async def test_plural_fields_and_tags_are_accepted(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    body = rule(
        sourceAddressPrefix=None,
        sourceAddressPrefixes=["203.0.113.0/24", "2001:db8::/32"],
        destinationPortRange=None,
        destinationPortRanges=["443", "6500-6600"],
        protocol="*",
    )
    body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
    got = await put_rule(session, "vm1-nsg", "plural", body)
    assert got.destination_port_ranges == ["443", "6500-6600"]
    out = rule(direction="Outbound", destinationAddressPrefix="Storage.WestEurope")
    await put_rule(session, "vm1-nsg", "tagged", out)


async def test_rule_conflict_same_priority_and_direction(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    await put_rule(session, "vm1-nsg", "first", rule(200))
    with pytest.raises(HttpResponseError) as info:
        await put_rule(session, "vm1-nsg", "second", rule(200))
    assert info.value.error.code == "SecurityRuleConflict"
    assert "first" in info.value.error.message
    # other direction, same number: fine
    await put_rule(session, "vm1-nsg", "second", rule(200, direction="Outbound"))
    # the same rule may keep its priority on update
    await put_rule(session, "vm1-nsg", "first", rule(200, destinationPortRange="7000"))


async def test_second_write_while_nsg_busy_is_429(emu: ArmEmulator, session: AzureSession) -> None:
    """Network's 429 RetryableError / RetryableErrorDueToAnotherOperation (AZURE_FACTS §5)."""
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    first = await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "a", rule(200))
    with pytest.raises(HttpResponseError) as info:
        await network.security_rules.begin_create_or_update(
            RG, "vm1-nsg", "b", rule(201), retry_total=0
        )
    assert info.value.status_code == 429
    assert info.value.error.code == "RetryableError"
    assert info.value.error.details[0].code == "RetryableErrorDueToAnotherOperation"
    await first.result()
    await put_rule(session, "vm1-nsg", "b", rule(201))
    names = sorted([r.name async for r in network.security_rules.list(RG, "vm1-nsg")])
    assert names == ["a", "b"]


async def test_nsg_put_replaces_rules(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    await put_rule(session, "vm1-nsg", "keep-me", rule(300))
    network = session.network(SUB)
    body = {
        "location": "westeurope",
        "properties": {"securityRules": [{"name": "only", **rule(400)}]},
    }
    nsg = await (
        await network.network_security_groups.begin_create_or_update(RG, "vm1-nsg", body)
    ).result()
    assert [r.name for r in nsg.security_rules] == ["only"]
    assert len(nsg.default_security_rules) == 6
    fresh = await (
        await network.network_security_groups.begin_create_or_update(
            RG, "new-nsg", {"location": "westeurope"}
        )
    ).result()
    assert fresh.security_rules == []
    assert len(fresh.default_security_rules) == 6
    assert sorted([n.name async for n in network.network_security_groups.list(RG)]) == [
        "new-nsg",
        "vm1-nsg",
    ]
    assert len([n async for n in network.network_security_groups.list_all()]) == 2


async def test_nsg_put_rejects_conflicting_rules(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    body = {
        "location": "westeurope",
        "properties": {"securityRules": [{"name": "a", **rule(400)}, {"name": "b", **rule(400)}]},
    }
    with pytest.raises(HttpResponseError) as info:
        await network.network_security_groups.begin_create_or_update(RG, "vm1-nsg", body)
    assert info.value.error.code == "SecurityRuleConflict"


async def test_effective_network_security_groups(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1", nsg="both")
    network = session.network(SUB)
    await put_rule(session, "vm1-nsg", "PortForWAC", rule())
    poller = await network.network_interfaces.begin_list_effective_network_security_groups(
        RG, "vm1-nic"
    )
    result = await poller.result()
    groups = result.value
    assert [g.network_security_group.id.rsplit("/", 1)[-1] for g in groups] == [
        "vm1-nsg",
        "vnet-westeurope-default-nsg",
    ]
    names = [r.name for r in groups[0].effective_security_rules]
    assert "securityRules/PortForWAC" in names
    assert "defaultSecurityRules/DenyAllInBound" in names
    mine = next(r for r in groups[0].effective_security_rules if r.name.endswith("PortForWAC"))
    assert mine.destination_port_range == "6516-6516"


async def test_service_tags(emu: ArmEmulator, session: AzureSession) -> None:
    tags = await session.network(SUB).service_tags.list("westeurope")
    by_name = {v["name"]: v for v in tags["values"]}
    for name in ("WindowsAdminCenter", "AzureActiveDirectory", "AzureCloud"):
        assert by_name[name]["properties"]["addressPrefixes"]


async def test_resource_groups_and_generic_listing(emu: ArmEmulator, session: AzureSession) -> None:
    emu.add_windows_vm("vm1", public_ip=True)
    resources = session.resources(SUB)
    rg = await resources.resource_groups.get(RG)
    assert rg.location == "westeurope"
    assert [g.name async for g in resources.resource_groups.list()] == [RG]
    assert await resources.resource_groups.check_existence(RG) is True
    assert await resources.resource_groups.check_existence("nope") is False
    types = sorted({r.type async for r in resources.resources.list_by_resource_group(RG)})
    assert types == [
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/virtualNetworks",
    ]
    vms = [
        r.name
        async for r in resources.resources.list(
            filter="resourceType eq 'Microsoft.Compute/virtualMachines'"
        )
    ]
    assert vms == ["vm1"]
    with pytest.raises(ResourceNotFoundError) as info:
        await resources.resource_groups.get("nope")
    assert info.value.error.code == "ResourceGroupNotFound"


async def test_unknown_route_is_invalid_resource_type(
    emu: ArmEmulator, session: AzureSession
) -> None:
    from azure.core.rest import HttpRequest

    emu.add_windows_vm("vm1")
    client = session.network(SUB)
    request = HttpRequest(
        "GET",
        f"{session.base_url}/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/frobnicators/x?api-version=2024-01-01",
    )
    response = await client.send_request(request)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "InvalidResourceType"


async def test_list_paging_for_rules() -> None:
    emu = ArmEmulator(page_size=2)
    emu.add_windows_vm("vm1")
    nsg_id = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/"
        "networkSecurityGroups/vm1-nsg"
    )
    for i in range(5):
        emu.add_rule(nsg_id, {"name": f"r{i}", **rule(200 + i)})
    async with emu.session() as session:
        names = [r.name async for r in session.network(SUB).security_rules.list(RG, "vm1-nsg")]
    assert names == [f"r{i}" for i in range(5)]
    assert len([r for r in emu.requests if r.path.endswith("/securityRules")]) == 3


async def test_associating_a_new_nsg_through_nic_and_subnet_puts(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1", nsg=None)
    network = session.network(SUB)
    deny_out = {
        "name": "deny-out",
        **rule(300, direction="Outbound", access="Deny", destinationAddressPrefix="*"),
    }
    deny_out["properties"]["destinationPortRange"] = "*"
    nsg = await (
        await network.network_security_groups.begin_create_or_update(
            RG, "made", {"location": "westeurope", "properties": {"securityRules": [deny_out]}}
        )
    ).result()
    nic = (await network.network_interfaces.get(RG, "vm1-nic")).as_dict()
    nic["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    await (await network.network_interfaces.begin_create_or_update(RG, "vm1-nic", nic)).result()
    got = await network.network_interfaces.get(RG, "vm1-nic")
    assert got.network_security_group.id == nsg.id
    assert emu.outbound_verdict(emu.resource(target.resource_id), "WindowsAdminCenter").rule == (
        "deny-out"
    )
    subnet = (await network.subnets.get(RG, "vnet-westeurope", "default")).as_dict()
    subnet["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    await (
        await network.subnets.begin_create_or_update(RG, "vnet-westeurope", "default", subnet)
    ).result()
    got_subnet = await network.subnets.get(RG, "vnet-westeurope", "default")
    assert got_subnet.network_security_group.id == nsg.id
    assert got_subnet.ip_configurations  # kept from before the PUT
    await (await network.network_security_groups.begin_delete(RG, "made")).result()
    with pytest.raises(ResourceNotFoundError):
        await network.network_security_groups.get(RG, "made")
    assert [r.method for r in emu.writes()] == ["PUT", "PUT", "PUT", "DELETE"]


async def test_method_not_allowed_and_allow_all(emu: ArmEmulator, session: AzureSession) -> None:
    from azure.core.rest import HttpRequest

    emu.add_windows_vm("vm1")
    emu.deny("Microsoft.Network/*")
    network = session.network(SUB)
    with pytest.raises(HttpResponseError) as info:
        await network.network_security_groups.get(RG, "vm1-nsg")
    assert info.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Network/networkSecurityGroups/read'" in info.value.error.message
    emu.allow_all()
    assert (await network.network_security_groups.get(RG, "vm1-nsg")).name == "vm1-nsg"
    request = HttpRequest(
        "PATCH",
        f"{session.base_url}/subscriptions/{SUB}/providers/Microsoft.Network/"
        "locations/westeurope/serviceTags?api-version=2024-01-01",
    )
    response = await network.send_request(request)
    assert response.status_code == 405


async def test_create_resource_group(emu: ArmEmulator, session: AzureSession) -> None:
    resources = session.resources(SUB)
    rg = await resources.resource_groups.create_or_update("rg-new", {"location": "northeurope"})
    assert rg.location == "northeurope"
    assert [g.name async for g in resources.resource_groups.list()] == ["rg-new"]


# -- rules come back as Network RP returns them --------------------------------------------


FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "arm"
if not FIXTURES.is_dir():  # pragma: no cover - layout of the project's workspace
    FIXTURES = Path("/work/shared/fixtures/arm")


def _fixture_rule_keys() -> set[str]:
    doc = json.loads((FIXTURES / "network.DefaultSecurityRuleList.json").read_text())
    body = doc["responses"]["200"]["body"]["value"][0]
    return set(body["properties"])


async def test_custom_rule_get_has_every_plural_and_envelope(
    emu: ArmEmulator, session: AzureSession
) -> None:
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    await (
        await network.security_rules.begin_create_or_update(RG, "vm1-nsg", "r1", bare_rule())
    ).result()
    resp: dict[str, Any] = {}

    def hook(pipeline_response: Any) -> None:
        resp.update(json.loads(pipeline_response.http_response.text()))

    await network.security_rules.get(RG, "vm1-nsg", "r1", raw_response_hook=hook)
    props = resp["properties"]
    for plural in (
        "sourceAddressPrefixes",
        "destinationAddressPrefixes",
        "sourcePortRanges",
        "destinationPortRanges",
    ):
        assert props[plural] == []
    assert props["sourceAddressPrefix"] == "VirtualNetwork"  # singular kept as sent
    assert props["destinationPortRange"] == "6516"
    assert props["provisioningState"] == "Succeeded"
    assert resp["type"] == "Microsoft.Network/networkSecurityGroups/securityRules"
    assert resp["etag"]
    # the same property set the real default rules show (minus description, not sent)
    if FIXTURES.is_dir():
        assert _fixture_rule_keys() - {"description"} <= set(props)
    # a plural sent stays as sent; the NSG GET shows the same rule
    await (
        await network.security_rules.begin_create_or_update(
            RG,
            "vm1-nsg",
            "r2",
            bare_rule(
                300,
                sourceAddressPrefix=None,
                sourceAddressPrefixes=["10.1.0.0/16", "10.2.0.0/16"],
            ),
        )
    ).result()
    nsg = await network.network_security_groups.get(RG, "vm1-nsg")
    r2 = next(r for r in nsg.security_rules if r.name == "r2")
    assert r2.source_address_prefixes == ["10.1.0.0/16", "10.2.0.0/16"]
    assert r2.destination_address_prefixes == []
    # emu.add_rule stores the same shape
    added = emu.add_rule(nsg_id("vm1-nsg"), {"name": "pre", **bare_rule(400)})
    assert added["properties"]["destinationPortRanges"] == []


async def test_rule_delete_and_nsg_put_over_https(emu: ArmEmulator) -> None:
    emu.add_windows_vm("vm1")
    async with emu.serve() as srv, srv.session() as session:
        network = session.network(SUB)
        nsg = await (
            await network.network_security_groups.begin_create_or_update(
                RG,
                "extra-nsg",
                {
                    "location": "westeurope",
                    "properties": {"securityRules": [{"name": "a", **bare_rule()}]},
                },
            )
        ).result()
        assert nsg.provisioning_state == "Succeeded"
        assert nsg.security_rules[0].source_port_ranges == []
        await (await network.security_rules.begin_delete(RG, "extra-nsg", "a")).result()
        assert [r.name async for r in network.security_rules.list(RG, "extra-nsg")] == []
        sizes = [
            s.name async for s in session.compute(SUB).virtual_machine_sizes.list("westeurope")
        ]
        assert "Standard_D2s_v3" in sizes
        tags = await network.service_tags.list("westeurope")
        assert any(v["name"] == "WindowsAdminCenter" for v in tags.as_dict()["values"])


# -- network PUTs report Updating while pending --------------------------------------------


@pytest.mark.parametrize("kind", ["nic", "pip", "vnet", "subnet"])
async def test_network_put_is_updating_until_it_completes(kind: str) -> None:
    emu = ArmEmulator(seed=0, lro_polls=3)
    emu.add_windows_vm("vm1", public_ip=True)
    async with emu.session() as session:
        network = session.network(SUB)
        rg = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network"
        if kind == "nic":
            body = emu.resource(f"{rg}/networkInterfaces/vm1-nic")
            poller = await network.network_interfaces.begin_create_or_update(RG, "vm1-nic", body)
            rid = f"{rg}/networkInterfaces/vm1-nic"
        elif kind == "pip":
            body = emu.resource(f"{rg}/publicIPAddresses/vm1-ip")
            poller = await network.public_ip_addresses.begin_create_or_update(RG, "vm1-ip", body)
            rid = f"{rg}/publicIPAddresses/vm1-ip"
        elif kind == "vnet":
            body = emu.resource(f"{rg}/virtualNetworks/vnet-westeurope")
            poller = await network.virtual_networks.begin_create_or_update(
                RG, "vnet-westeurope", body
            )
            rid = f"{rg}/virtualNetworks/vnet-westeurope"
        else:
            body = {"properties": {"addressPrefix": "10.0.9.0/24"}}
            poller = await network.subnets.begin_create_or_update(
                RG, "vnet-westeurope", "extra", body
            )
            rid = f"{rg}/virtualNetworks/vnet-westeurope/subnets/extra"
        put = [r for r in emu.requests if r.method == "PUT"][-1]
        assert put.status in (200, 201)
        assert emu.resource(rid)["properties"]["provisioningState"] == "Updating"
        done = await poller.result()
        assert done.provisioning_state == "Succeeded"
        assert emu.resource(rid)["properties"]["provisioningState"] == "Succeeded"


async def test_rule_get_shows_its_operation_running_then_ended() -> None:
    # ARM RPC Addendum (PUT steps 4-6): GETs show a non-terminal provisioningState while the
    # operation runs, a terminal one after; a read that ends the operation shows the end
    emu = ArmEmulator(seed=0, lro_polls=2)
    emu.add_windows_vm("vm1")
    async with emu.session() as session:
        rules = session.network(SUB).security_rules
        await rules.begin_create_or_update(RG, "vm1-nsg", "r1", rule(300), polling=False)
        first = await rules.get(RG, "vm1-nsg", "r1")
        second = await rules.get(RG, "vm1-nsg", "r1")
        assert (first.provisioning_state, second.provisioning_state) == ("Updating", "Succeeded")
        # a write rolled back by its failing operation is gone on the read that ends it
        emu.faults.add_scripted(1, "OperationPreempted", method="PUT", path_regex="/r2$")
        await rules.begin_create_or_update(RG, "vm1-nsg", "r2", rule(310), polling=False)
        assert (await rules.get(RG, "vm1-nsg", "r2")).provisioning_state == "Updating"
        with pytest.raises(ResourceNotFoundError):
            await rules.get(RG, "vm1-nsg", "r2")


# -- rule validation -----------------------------------------------------------------------


@given(lo=st.integers(-5, 70000), hi=st.integers(-5, 70000), priority=st.integers(0, 5000))
def test_validator_accepts_exactly_valid_ports_and_priorities(
    lo: int, hi: int, priority: int
) -> None:
    props = dict(rule_body(priority)["properties"])
    props["destinationPortRange"] = f"{lo}-{hi}"
    valid_port = 0 <= lo <= hi <= 65535
    valid_priority = 100 <= priority <= 4096
    if valid_port and valid_priority:
        assert validate_rule("r", props)["priority"] == priority
        return
    expected = (
        "SecurityRuleInvalidPriority" if not valid_priority else "SecurityRuleInvalidPortRange"
    )
    with pytest.raises(ArmError) as info:
        validate_rule("r", props)
    assert info.value.code == expected


async def test_rule_writes_honour_if_match_and_if_none_match(
    emu: ArmEmulator, session: AzureSession
) -> None:
    """Conditional headers on a rule PUT/DELETE: 412 PreconditionFailed as Network answers."""
    emu.add_windows_vm("vm1")
    network = session.network(SUB)
    rules = network.security_rules

    async def put(body: dict[str, Any], **headers: str) -> Any:
        poller = await rules.begin_create_or_update(
            RG, "vm1-nsg", "PortForWAC", body, headers=headers
        )
        return await poller.result()

    # If-Match: * on a rule that does not exist fails
    with pytest.raises(HttpResponseError) as info:
        await put(rule(), **{"If-Match": "*"})
    assert info.value.status_code == 412
    assert info.value.error is not None
    assert info.value.error.code == "PreconditionFailed"
    body = json.loads(info.value.response.text())
    assert body["error"]["details"][0]["code"] == "PreconditionFailedEtagMismatch"
    # create-only succeeds once, then finds the name taken
    created = await put(rule(), **{"If-None-Match": "*"})
    with pytest.raises(HttpResponseError) as info:
        await put(rule(), **{"If-None-Match": "*"})
    assert info.value.status_code == 412
    # the etag changes on every write; a stale one is refused, the current one accepted
    stale = created.etag
    assert stale.startswith('W/"')
    current = await put(rule(destinationPortRange="7000"), **{"If-Match": stale})
    assert current.etag != stale
    with pytest.raises(HttpResponseError) as info:
        await put(rule(destinationPortRange="7001"), **{"If-Match": stale})
    assert info.value.status_code == 412
    assert stale in json.loads(info.value.response.text())["error"]["details"][0]["message"]
    got = await rules.get(RG, "vm1-nsg", "PortForWAC")
    assert got.destination_port_range == "7000"
    assert got.etag == current.etag
    # DELETE: a stale etag is refused and the rule stays; the current one deletes it
    with pytest.raises(HttpResponseError) as info:
        await (
            await rules.begin_delete(RG, "vm1-nsg", "PortForWAC", headers={"If-Match": stale})
        ).result()
    assert info.value.status_code == 412
    assert (await rules.get(RG, "vm1-nsg", "PortForWAC")).etag == got.etag
    await (
        await rules.begin_delete(RG, "vm1-nsg", "PortForWAC", headers={"If-Match": got.etag})
    ).result()
    with pytest.raises(ResourceNotFoundError):
        await rules.get(RG, "vm1-nsg", "PortForWAC")
    # If-Match on the rule now missing fails too (RFC 9110 §13.1.1)
    with pytest.raises(HttpResponseError) as info:
        await (
            await rules.begin_delete(RG, "vm1-nsg", "PortForWAC", headers={"If-Match": "*"})
        ).result()
    assert info.value.status_code == 412
