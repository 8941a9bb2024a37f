"""Exposure limits of the access modes: public coverage, public PrivateAccess sources, IP family."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wac_azure import CheckStatus, InvalidAccessError, PrivateAccess, PublicAccess
from wac_azure._core.access import EXPOSURE_LIMIT, exposure
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.decide import decide_enable
from wac_azure._core.facts import NicFacts, PublicIpFacts
from wac_azure._core.nsg import NON_INTERNET
from wac_azure._core.nsg.prefixes import address_count

from .requirements.build import NET, SUBNET, facts, nic

# -- the coverage helper against ipaddress, address by address ----------------------------------

# Anchors next to the borders that matter: RFC 1918, CGNAT, loopback, link-local, multicast.
_V4_ANCHORS = [
    "9.255.252.0",
    "10.0.0.0",
    "10.255.254.0",
    "100.63.255.0",
    "100.127.255.0",
    "126.255.255.0",
    "169.253.255.0",
    "172.15.255.0",
    "172.31.255.0",
    "192.167.255.0",
    "198.51.100.0",
    "223.255.255.0",
]
_V6_ANCHORS = [
    "fbff:ffff:ffff:ffff:ffff:ffff:ffff:fc00",
    "fc00::",
    "fe7f:ffff:ffff:ffff::",
    "2001:db8::",
]


@st.composite
def _small_net(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        base = int(ipaddress.ip_address(draw(st.sampled_from(_V4_ANCHORS))))
        prefix = draw(st.integers(22, 32))
        offset = draw(st.integers(0, 2048))
        return (
            ipaddress.ip_network((base + offset * 4) % 2**32, strict=False).supernet(
                new_prefix=prefix
            )
            if prefix < 32
            else ipaddress.ip_network((base + offset) % 2**32)
        )
    base = int(ipaddress.ip_address(draw(st.sampled_from(_V6_ANCHORS))))
    prefix = draw(st.integers(118, 128))
    offset = draw(st.integers(0, 4096))
    net = ipaddress.IPv6Network((base + offset) % 2**128)
    return net.supernet(new_prefix=prefix) if prefix < 128 else net


def _brute(nets: list[Any], excluding: tuple[Any, ...]) -> dict[int, int]:
    seen: dict[int, set[int]] = {4: set(), 6: set()}
    for net in nets:
        seen[net.version].update(range(int(net.network_address), int(net.broadcast_address) + 1))
    out = {}
    for version, addresses in seen.items():
        holes = [h for h in excluding if h.version == version]
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        out[version] = sum(1 for a in addresses if not any(cls(a) in h for h in holes))
    return out


@settings(max_examples=200, deadline=None)
@given(nets=st.lists(_small_net(), min_size=0, max_size=6))
def test_address_count_matches_ipaddress_address_by_address(nets: list[Any]) -> None:
    assert address_count(nets) == _brute(nets, ())
    assert address_count(nets, excluding=NON_INTERNET) == _brute(nets, NON_INTERNET)
    assert exposure(nets) == _brute(nets, NON_INTERNET)


def test_overlaps_count_once() -> None:
    nets = [ipaddress.ip_network(p) for p in ("11.0.0.0/8", "11.1.0.0/16", "11.1.2.3/32")]
    assert address_count(nets) == {4: 2**24, 6: 0}
    assert exposure([ipaddress.ip_network("8.0.0.0/6")])[4] == 3 * 2**24  # 10/8 is private


# -- the limit, in both modes ---------------------------------------------------------------------

_ALL_BUT_ONE = [
    str(n)
    for n in ipaddress.ip_network("0.0.0.0/0").address_exclude(
        ipaddress.ip_network("203.0.113.7/32")
    )
]


def test_everything_but_one_address_needs_acknowledge_risk() -> None:
    """Found by the issue: this passed without acknowledge_risk."""
    with pytest.raises(InvalidAccessError) as info:
        PublicAccess(_ALL_BUT_ONE)
    text = str(info.value)
    public_v4 = 2**32 - sum(n.num_addresses for n in NON_INTERNET if n.version == 4)
    assert f"{public_v4 - 1:,} public addresses" in text
    assert "% of IPv4" in text
    assert "acknowledge_risk=True" in text
    accepted = PublicAccess(_ALL_BUT_ONE, acknowledge_risk=True)
    assert any("public addresses" in w for w in accepted.warnings)
    assert accepted.to_dict()["acknowledgeRisk"] is True


def test_a_slash_8_passes_and_one_address_more_does_not() -> None:
    assert PublicAccess(["11.0.0.0/8"]).sources == ("11.0.0.0/8",)
    assert PublicAccess(["11.0.0.0/8", "11.200.0.0/16"]).sources  # overlap: still a /8
    with pytest.raises(InvalidAccessError, match=r"16,777,217 public addresses"):
        PublicAccess(["11.0.0.0/8", "12.0.0.1"])
    # Private space is not exposure: a /8 public plus all of RFC 1918 is fine.
    PublicAccess(["11.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])


def test_the_message_gives_the_coverage_as_the_issue_asks() -> None:
    with pytest.raises(InvalidAccessError) as info:
        PublicAccess(["0.0.0.0/1", "128.0.0.0/2"])
    expected = exposure([ipaddress.ip_network("0.0.0.0/1"), ipaddress.ip_network("128.0.0.0/2")])
    share = 100 * expected[4] / 2**32
    assert f"cover {expected[4]:,} public addresses, {share:.1f} % of IPv4" in str(info.value)


def test_ipv6_limit_is_a_slash_32() -> None:
    assert EXPOSURE_LIMIT == {4: 2**24, 6: 2**96}
    PublicAccess(["2001:db8::/32"])
    with pytest.raises(InvalidAccessError, match="% of IPv6"):
        PublicAccess(["2001:db8::/31"])
    PublicAccess(["2001:db8::/31"], acknowledge_risk=True)


@pytest.mark.parametrize("mode", ["public", "private"])
def test_a_whole_family_stays_refused_even_acknowledged(mode: str) -> None:
    cls: Any = PublicAccess if mode == "public" else PrivateAccess
    with pytest.raises(InvalidAccessError, match="every IPv4"):
        cls(["0.0.0.0/1", "128.0.0.0/1"], acknowledge_risk=True)


@pytest.mark.parametrize("ack", [1, "yes", None, "True"])
def test_acknowledge_risk_must_be_a_bool(ack: Any) -> None:
    with pytest.raises(InvalidAccessError, match="acknowledge_risk"):
        PublicAccess(["203.0.113.7"], acknowledge_risk=ack)
    with pytest.raises(InvalidAccessError, match="acknowledge_risk"):
        PrivateAccess(acknowledge_risk=ack)


def test_anywhere_is_acknowledged() -> None:
    a = PublicAccess.anywhere(acknowledge_risk=True)
    assert a.acknowledge_risk is True
    assert a.to_dict() == {"mode": "public", "sources": ["*"], "openToEveryone": True}


# -- PrivateAccess and public addresses -----------------------------------------------------------


@pytest.mark.parametrize(
    "sources",
    [
        ["203.0.113.0/24"],
        ["VirtualNetwork", "198.51.100.7"],
        ["8.0.0.0/6"],  # mostly public, holds 10/8
        ["2001:db8::/64"],
        ["0.0.0.0/2", "64.0.0.0/3"],  # together most of IPv4 (the issue's finding)
    ],
)
def test_private_access_refuses_public_sources(sources: list[str]) -> None:
    with pytest.raises(InvalidAccessError) as info:
        PrivateAccess(sources)
    text = str(info.value)
    assert "public" in text
    assert "acknowledge_risk=True" in text
    assert "translat" in text  # says why: NSGs see the traffic after the public IP's NAT


def test_private_access_takes_public_sources_when_acknowledged() -> None:
    a = PrivateAccess(["10.0.0.0/8", "203.0.113.0/24"], acknowledge_risk=True)
    assert a.sources == ("10.0.0.0/8", "203.0.113.0/24")
    assert len(a.warnings) == 1
    assert "203.0.113.0/24" in a.warnings[0]
    assert a.to_dict() == {
        "mode": "private",
        "sources": ["10.0.0.0/8", "203.0.113.0/24"],
        "acknowledgeRisk": True,
    }
    with pytest.raises(InvalidAccessError, match="more than a /8"):
        PrivateAccess(["0.0.0.0/2"], acknowledge_risk=False)
    wide = PrivateAccess(["0.0.0.0/2"], acknowledge_risk=True)
    assert any("% of IPv4" in w for w in wide.warnings)


@pytest.mark.parametrize(
    "sources",
    [
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"],
        ["VirtualNetwork", "fd00::/8", "fe80::/10"],
        ["127.0.0.1", "169.254.0.0/16"],
    ],
)
def test_private_access_takes_non_internet_ranges(sources: list[str]) -> None:
    a = PrivateAccess(sources)
    assert a.warnings == ()
    assert "acknowledgeRisk" not in a.to_dict()


# -- sources of the wrong IP family ----------------------------------------------------------------


def _dual_stack(public: bool) -> NicFacts:
    pips = (
        (
            PublicIpFacts(
                id=f"{NET}/publicIPAddresses/v4", name="v4", address="20.1.1.1", version="IPv4"
            ),
            PublicIpFacts(
                id=f"{NET}/publicIPAddresses/v6", name="v6", address="2603:1000::7", version="IPv6"
            ),
        )
        if public
        else ()
    )
    return NicFacts(
        id=f"{NET}/networkInterfaces/vm-nic",
        name="vm-nic",
        primary=True,
        private_ips=("10.0.0.4", "fd00:db8::4"),
        public_ips=pips,
        subnet_id=SUBNET,
        nsg_id=nic().nsg_id,
    )


def _family(access: Any, **changes: Any) -> Any:
    return evaluate_requirements(facts(**changes), access=access).check("network.source_family")


def test_ipv6_sources_for_an_ipv4_only_vm_fail_the_check() -> None:
    found = _family(PublicAccess(["203.0.113.7", "2001:db8::7"]), nics=(nic(public_ip="20.1.1.1"),))
    assert found.status is CheckStatus.FAIL
    assert "2001:db8::7" in found.message
    assert "203.0.113.7" not in found.message.split("but")[0]
    assert "IPv4 only" in found.message
    assert "IPv6 IP configuration" in (found.remedy or "")
    private = _family(PrivateAccess(["fd00::/8"]))
    assert private.status is CheckStatus.FAIL


def test_matching_families_pass() -> None:
    assert _family(PrivateAccess()).status is CheckStatus.PASS  # a tag: no family
    assert _family(PrivateAccess(["192.168.0.0/24"])).status is CheckStatus.PASS
    dual = (_dual_stack(public=True),)
    assert (
        _family(PublicAccess(["2001:db8::7", "203.0.113.7"]), nics=dual).status is CheckStatus.PASS
    )
    assert _family(PrivateAccess(["fd00::/8"]), nics=(_dual_stack(public=False),)).status is (
        CheckStatus.PASS
    )
    # Public access judges the public IPs: an IPv6 private address does not make an
    # IPv6 source reach an IPv4-only public IP.
    v4_public = attrs.evolve(_dual_stack(public=True), public_ips=_dual_stack(True).public_ips[:1])
    found = _family(PublicAccess(["2001:db8::7"]), nics=(v4_public,))
    assert found.status is CheckStatus.FAIL


def test_family_unknown_without_addresses() -> None:
    assert _family(PrivateAccess(["10.1.0.0/16"]), nics=()).status is CheckStatus.UNKNOWN


def _decide(fs: list[Any], access: Any) -> Any:
    return decide_enable(fs, access=access, new_salt=lambda: "s" * 32)


def test_the_decision_refuses_the_wrong_family_with_a_typed_error() -> None:
    v4 = facts(nics=(nic(public_ip="20.1.1.1"),))
    dual = attrs.evolve(
        facts(nics=(_dual_stack(public=True),)),
        target=attrs.evolve(v4.target, name="vm2"),
        vm_resource_id=v4.vm_resource_id + "2",
    )
    decision = _decide([v4, dual], PublicAccess(["2001:db8::7"]))
    first, second = decision.vms
    assert isinstance(first.error, InvalidAccessError)
    assert first.stage == "requirements"
    assert "2001:db8::7" in str(first.error)
    assert not first.skipped  # the caller's access mode, not a VM that does not qualify
    assert second.go
    # Nothing is planned for the refused VM.
    assert all(first.key.lower() not in [v.lower() for v in c.vms] for c in decision.plan.changes)


_prefix = st.builds(
    lambda a, n: str(ipaddress.ip_network((a, n), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(1, 32),
)


@settings(max_examples=300, deadline=None)
@given(sources=st.lists(_prefix, min_size=1, max_size=6), private=st.booleans())
def test_acknowledge_risk_is_needed_exactly_beyond_the_limit(
    sources: list[str], private: bool
) -> None:
    cls: Any = PrivateAccess if private else PublicAccess
    nets = [ipaddress.ip_network(s) for s in sources]
    try:
        accepted = cls(sources, acknowledge_risk=True)
    except InvalidAccessError:
        # Only a whole address family is refused whatever the flag.
        assert address_count(nets)[4] == 2**32
        return
    assert accepted.sources
    public = exposure(nets)[4]
    refused = public > EXPOSURE_LIMIT[4] or (private and public > 0)
    if not refused:
        cls(sources)
        return
    with pytest.raises(InvalidAccessError) as info:
        cls(sources)
    if public > EXPOSURE_LIMIT[4]:
        assert f"{public:,} public addresses" in str(info.value)
