"""Hypothesis: the facts parsers never raise on junk ARM JSON; unknowns come out instead."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wac_azure._core.facts import (
    _vnet_prefixes,
    parse_agent,
    parse_extensions,
    parse_nic,
    parse_os,
    parse_power_state,
    parse_public_ip,
    parse_vm_sizes,
)

KEYS = [
    "properties", "storageProfile", "imageReference", "publisher", "offer", "sku", "osDisk",
    "osType", "instanceView", "osName", "osVersion", "statuses", "code", "time", "vmAgent",
    "vmAgentVersion", "displayStatus", "resources", "name", "type", "settings", "port", "salt",
    "extensions", "typeHandlerVersion", "value", "memoryInMB", "numberOfCores", "id",
    "ipConfigurations", "privateIPAddress", "publicIPAddress", "subnet", "networkSecurityGroup",
    "addressSpace", "addressPrefixes", "virtualNetworkPeerings", "remoteAddressSpace",
    "peeringState", "ipAddress", "primary", "applicationSecurityGroups", "substatuses",
    "loadBalancerBackendAddressPools", "message", "level", "autoUpgradeMinorVersion",
    "provisioningState", "publicIPAddressVersion", "OSNAME", "Properties",
]  # fmt: skip

TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "Windows Server 2019 Datacenter",
            "Windows 10 Enterprise",
            "10.0.22631.1",
            "6.3.9600",
            "10.0.",
            "ubuntu",
            "MicrosoftWindowsServer",
            "MicrosoftWindowsDesktop",
            "2012-R2-Datacenter",
            "win11-23h2",
            "PowerState/running",
            "PowerState/",
            "2024-13-45T99:00:00Z",
            "2024-05-01T10:00:00.12345678Z",
            "Standard_B1ms",
        ]
    ),
)
LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT)
JSON = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=5
        ),
    ),
    max_leaves=40,
)


def vm_shaped(junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A VM-like skeleton whose every value may be junk (to reach the deep paths)."""
    return st.fixed_dictionaries(
        {
            "properties": st.one_of(
                junk,
                st.fixed_dictionaries(
                    {
                        "storageProfile": st.one_of(
                            junk,
                            st.fixed_dictionaries({"imageReference": junk, "osDisk": junk}),
                        ),
                        "instanceView": st.one_of(
                            junk,
                            st.fixed_dictionaries(
                                {
                                    "osName": junk,
                                    "osVersion": junk,
                                    "statuses": st.lists(junk, max_size=3),
                                    "vmAgent": junk,
                                    "extensions": st.lists(junk, max_size=3),
                                }
                            ),
                        ),
                    }
                ),
            ),
            "resources": st.one_of(junk, st.lists(junk, max_size=3)),
        }
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, vm_shaped(JSON)))
def test_vm_parsers_never_raise(doc: Any) -> None:
    info = parse_os(doc)
    assert info.source in ("imageReference", "instanceView", "osDisk", "unknown")
    assert info.family in ("windows", "linux", None)
    assert info.kind in ("server", "client", None)
    assert (info.family is None) == (info.source == "unknown")
    state, started = parse_power_state(doc)
    assert state is None or isinstance(state, str)
    assert started is None or started.tzinfo is not None
    parse_agent(doc)
    for ext in parse_extensions(doc):
        assert ext.port is None or 1 <= ext.port <= 65535
        assert isinstance(ext.name, str)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        JSON,
        st.lists(
            st.dictionaries(st.sampled_from(["name", "memoryInMB", "numberOfCores"]), LEAF),
            max_size=5,
        ),
    )
)
def test_size_parser_never_raises(doc: Any) -> None:
    sizes = parse_vm_sizes(doc)
    for name, (memory, cores) in sizes.items():
        assert name == name.lower()
        assert memory is None or isinstance(memory, int)
        assert cores is None or isinstance(cores, int)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_network_parsers_never_raise(doc: Any) -> None:
    nic = parse_nic(doc, "/fallback")
    assert nic.id
    assert all(isinstance(ip, str) for ip in nic.private_ips)
    assert all(isinstance(p, str) for p in _vnet_prefixes(doc))
    assert parse_public_ip(doc, "/x/pip").id


SUB = "00000000-0000-0000-0000-0000000000ff"
NIC = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n"
VNET = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
NSG = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/g"


@settings(max_examples=150, deadline=None)
@given(vm_shaped(JSON), JSON, JSON, JSON)
def test_junk_documents_give_a_report_not_an_exception(
    vm: Any, nic: Any, vnet: Any, nsg: Any
) -> None:
    """The whole path, facts_from_arm then evaluate_requirements, on junk ARM JSON."""
    from wac_azure import VmTarget
    from wac_azure._core.checks import evaluate_requirements
    from wac_azure._core.facts import facts_from_arm
    from wac_azure._core.findings import CHECK_CODES

    if isinstance(vm, dict) and isinstance(vm.get("properties"), dict):
        vm["properties"]["networkProfile"] = {"networkInterfaces": [{"id": NIC}]}
    nic_doc = {
        "id": NIC,
        "properties": {
            "networkSecurityGroup": {"id": NSG},
            "ipConfigurations": [
                {
                    "properties": {
                        "privateIPAddress": "10.0.0.4",
                        "subnet": {"id": f"{VNET}/subnets/s"},
                    }
                },
                nic,
            ],
        },
    }
    vnet_doc = {"id": VNET, "properties": {"subnets": [vnet], "addressSpace": vnet}}
    nsg_doc = {"id": NSG, "name": "g", "properties": {"securityRules": [nsg]}}
    t = VmTarget.from_parts(SUB, "rg", "vm")
    facts = facts_from_arm(
        t,
        vm,
        resources={NIC.lower(): nic_doc, VNET.lower(): vnet_doc, NSG.lower(): nsg_doc},
        sizes=parse_vm_sizes(nsg),
    )
    report = evaluate_requirements(facts)
    assert [c.code for c in report.checks] == list(CHECK_CODES)
    assert str(report)
    assert report.to_dict()["checks"]
