"""Fuzz what users type: access sources, ports, resource IDs and portal URLs.

(tests/core/test_ids.py fuzzes VmTarget.parse with free text and a round trip of plain IDs;
tests/core/test_access.py lists refused sources. Here: portal-URL variants of generated
IDs must parse to exactly that VM; generated source lists — IPv4/IPv6, CIDRs, netmasks,
tags, junk, padding — must give a typed error or a normalized, never-everyone access whose
plan opens exactly those sources; ports of every type are checked the same everywhere.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import string
import urllib.parse
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wac_azure import (
    InvalidAccessError,
    InvalidInputError,
    InvalidResourceIdError,
    PrivateAccess,
    PublicAccess,
    VmTarget,
    WacAzureError,
    enable_many,
)
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.plan import plan_network
from wac_azure.testing import ArmEmulator

from ._strategies import fuzz_settings

# ----------------------------------------------------------------------------- IDs and URLs

_rg = st.text(alphabet=string.ascii_letters + string.digits + "-_.()", min_size=1, max_size=40)
_vm = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}[A-Za-z0-9]", fullmatch=True)
_case = st.sampled_from([str, str.lower, str.upper])
_host = st.sampled_from(["portal.azure.com", "ms.portal.azure.com", "portal.azure.us"])
_tenant = st.sampled_from(["", "@contoso.onmicrosoft.com", "@72f988bf-86f1-41af-91ab-2d7cd011db47"])
_blade = st.sampled_from(["", "/overview", "/networking", "/extensions"])


@fuzz_settings()
@given(
    sub=st.uuids(),
    rg=_rg,
    vm=_vm,
    seg_case=_case,
    host=_host,
    tenant=_tenant,
    blade=_blade,
    encode=st.booleans(),
    query=st.sampled_from(["", "?feature.x=true"]),
    pad=st.sampled_from(["", " ", "\t", "\n"]),
)
def test_portal_urls_name_exactly_that_vm(
    sub: Any,
    rg: str,
    vm: str,
    seg_case: Any,
    host: str,
    tenant: str,
    blade: str,
    encode: bool,
    query: str,
    pad: str,
) -> None:
    assume(not rg.endswith("."))
    rid = (
        f"/{seg_case('subscriptions')}/{sub}/{seg_case('resourceGroups')}/{rg}/"
        f"{seg_case('providers')}/{seg_case('Microsoft.Compute')}/"
        f"{seg_case('virtualMachines')}/{vm}"
    )
    path = urllib.parse.quote(rid, safe="") if encode else rid
    url = f"{pad}https://{host}/{query}#{tenant}/resource{path}{blade}{pad}"
    expected = VmTarget.from_parts(str(sub), rg, vm)
    assert VmTarget.parse(rid) == expected
    assert VmTarget.parse(url) == expected, url


@fuzz_settings()
@given(
    sub=st.uuids(),
    rg=_rg,
    vm=_vm,
    tail=st.sampled_from(
        [
            "/extensions/AdminCenter",
            "/virtualMachines/other",
            "/../vm2",
            "/runCommands/x/y",
        ]
    ),
    host=st.sampled_from(["portal.azure.com.evil.example", "evil.example", "portal.azure.com"]),
    scheme=st.sampled_from(["https", "http", "javascript"]),
)
def test_urls_for_something_else_are_refused(
    sub: Any, rg: str, vm: str, tail: str, host: str, scheme: str
) -> None:
    """Never silently read another resource or trust another host."""
    assume(not rg.endswith("."))
    rid = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}"
    )
    if host == "portal.azure.com" and scheme == "https":
        with pytest.raises(InvalidResourceIdError):
            VmTarget.parse(f"https://{host}/#/resource{rid}{tail}/overview")
        return
    with pytest.raises(InvalidResourceIdError):
        VmTarget.parse(f"{scheme}://{host}/#@t/resource{rid}")


# ----------------------------------------------------------------------------- sources


def _cidr(draw: Any) -> str:
    version = draw(st.sampled_from([4, 6]))
    addr = draw(st.ip_addresses(v=version))
    bits = 32 if version == 4 else 128
    return f"{addr}/{draw(st.integers(0, bits))}"


_source = st.one_of(
    st.ip_addresses().map(str),
    st.composite(lambda draw: _cidr(draw))(),
    st.sampled_from(
        [
            "*",
            "Any",
            "internet",
            "VirtualNetwork",
            "virtualnetwork",
            "AzureLoadBalancer",
            "Storage.WestEurope",
            "0.0.0.0/0",
            "::/0",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "::/1",
            "8000::/1",
            "10.0.0.0/255.0.0.0",
            "10.0.0.0/0.255.255.255",
            "010.001.002.003",
            "1.2.3.4/32 ",
            " 203.0.113.0/24",
            "::ffff:0.0.0.0/96",
            "fe80::1%eth0",
            "1.2.3",
            "1.2.3.4.5",
            "300.1.1.1",
            "2001:db8::/129",
            "",
            "   ",
            "\u0661.2.3.4",
        ]
    ),
    st.text(max_size=20),
)
_sources = st.one_of(
    st.lists(_source, min_size=0, max_size=5),
    st.lists(st.one_of(_source, st.none(), st.integers(), st.just(b"1.2.3.4")), max_size=3),
    _source,
    st.none(),
    st.integers(),
)


def _covers_everything(sources: tuple[str, ...]) -> bool:
    nets = []
    for s in sources:
        if s == "VirtualNetwork":
            continue
        nets.append(ipaddress.ip_network(s, strict=False))
    for version, total in ((4, 2**32), (6, 2**128)):
        fam = [n for n in nets if n.version == version]
        if fam and sum(n.num_addresses for n in ipaddress.collapse_addresses(fam)) >= total:  # type: ignore[type-var,misc]
            return True
    return any(n.prefixlen == 0 for n in nets)


@fuzz_settings()
@given(sources=_sources, public=st.booleans())
def test_sources_give_a_typed_error_or_a_safe_access(sources: Any, public: bool) -> None:
    try:
        access = PublicAccess(sources) if public else PrivateAccess(sources=sources)
    except InvalidAccessError as exc:
        refused: InvalidAccessError | None = exc
    else:
        refused = None
    if refused is not None:
        assert str(refused)
        return
    assert access.sources
    for s in access.sources:
        assert s == s.strip()
        if s == "VirtualNetwork":
            assert not public
            continue
        ipaddress.ip_network(s)  # canonical: parses strictly
    assert not _covers_everything(access.sources)
    assert not getattr(access, "open_to_everyone", False)
    assert len(set(access.sources)) == len(access.sources)
    access.to_dict()
    str(access)
    if public:
        access.warnings  # noqa: B018 - computing them must not raise


def _facts() -> Any:
    emu = ArmEmulator(seed=9)
    t = emu.add_windows_vm("vm1", nsg="both", public_ip=True)

    async def read() -> Any:
        from wac_azure import read_vm_facts

        async with emu.session() as s:
            return await read_vm_facts(s, t)

    return asyncio.run(read())


FACTS = _facts()


@fuzz_settings(0.5)
@given(sources=st.lists(_source, min_size=1, max_size=4), public=st.booleans())
def test_plans_open_exactly_the_given_sources(sources: list[Any], public: bool) -> None:
    try:
        access = PublicAccess(sources) if public else PrivateAccess(sources=sources)
    except InvalidAccessError:
        return
    plan = plan_network(FACTS, access=access)
    inbound = [
        c.rule for c in plan.changes if c.rule is not None and c.rule.direction.value == "Inbound"
    ]
    for rule in inbound:
        assert set(rule.source_prefixes) <= set(access.sources)
        assert not _covers_everything(
            tuple(p for p in rule.source_prefixes if p != "VirtualNetwork")
        )


# ----------------------------------------------------------------------------- ports

_port = st.one_of(
    st.integers(-5, 70000),
    st.sampled_from([0, 1, 443, 6516, 65535, 65536, True, False]),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.none(),
)


def _valid(port: Any) -> bool:
    return isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535


@fuzz_settings()
@given(port=_port)
def test_ports_are_checked_alike_by_every_pure_entry_point(port: Any) -> None:
    for call in (
        lambda: plan_network(FACTS, port=port),
        lambda: evaluate_requirements(FACTS, port=port),
    ):
        try:
            result: Any = call()
        except InvalidInputError as exc:
            result = exc
        if isinstance(result, InvalidInputError):
            assert not _valid(port), result
            assert str(result)
        else:
            assert _valid(port), (port, result)


@pytest.mark.parametrize("port", [0, -1, 65536, True, 6516.0, "6516", None, [6516]])
async def test_fleet_refuses_bad_ports_before_any_request(port: Any) -> None:
    emu = ArmEmulator(seed=10)
    t = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        with pytest.raises(WacAzureError):
            await enable_many(session, [t], port=port)
    assert emu.requests == []
