"""Access modes: PrivateAccess and PublicAccess validation."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure import InvalidAccessError, PrivateAccess, PublicAccess


def test_private_default_is_virtual_network() -> None:
    a = PrivateAccess()
    assert a.sources == ("VirtualNetwork",)
    assert not a.is_public
    assert a.warnings == ()
    assert PrivateAccess(["virtualnetwork", "192.168.10.0/24"]).sources == (
        "VirtualNetwork",
        "192.168.10.0/24",
    )
    assert a.to_dict() == {"mode": "private", "sources": ["VirtualNetwork"]}


@pytest.mark.parametrize("bad", ["*", "Internet", "0.0.0.0/0", "bogus", "", 5])
def test_private_refuses(bad: Any) -> None:
    with pytest.raises(InvalidAccessError):
        PrivateAccess([bad])


def test_public_normalizes_and_dedups() -> None:
    a = PublicAccess(["203.0.113.7", " 198.51.100.9/24 ", "203.0.113.7", "2001:db8::1"])
    assert a.sources == ("203.0.113.7", "198.51.100.0/24", "2001:db8::1")
    assert a.is_public
    assert not a.open_to_everyone
    assert PublicAccess("203.0.113.7").sources == ("203.0.113.7",)


@pytest.mark.parametrize(
    "bad",
    [
        ["*"],
        ["Any"],
        ["any"],
        ["Internet"],
        ["0.0.0.0/0"],
        ["::/0"],
        ["203.0.113.0/0"],
        ["0.0.0.0/1", "128.0.0.0/1"],
        ["VirtualNetwork"],
        ["WindowsAdminCenter"],
        ["203.0.113.300"],
        [],
        [None],
    ],
)
def test_public_refuses_everyone_tags_and_junk(bad: list[Any]) -> None:
    with pytest.raises(InvalidAccessError) as info:
        PublicAccess(bad)
    text = str(info.value)
    assert "IP" in text or "source" in text


def test_refusal_says_how_to_fix() -> None:
    with pytest.raises(InvalidAccessError, match="acknowledge_risk=True"):
        PublicAccess(["0.0.0.0/0"])
    with pytest.raises(InvalidAccessError, match=r"203\.0\.113"):
        PublicAccess(["Internet"])


def test_anywhere_needs_acknowledgement() -> None:
    with pytest.raises(InvalidAccessError):
        PublicAccess.anywhere()
    with pytest.raises(InvalidAccessError):
        PublicAccess.anywhere(acknowledge_risk="yes")  # type: ignore[arg-type]
    a = PublicAccess.anywhere(acknowledge_risk=True)
    assert a.open_to_everyone
    assert a.sources == ("*",)
    assert a.warnings
    assert "every host" in a.warnings[0]
    with pytest.raises(TypeError):
        PublicAccess(["*"], open_to_everyone=True)  # type: ignore[call-arg]


def test_wide_and_private_sources_warn() -> None:
    a = PublicAccess(["20.0.0.0/6", "203.0.113.7", "10.1.2.3"], acknowledge_risk=True)
    assert len(a.warnings) == 3
    assert "very wide" in a.warnings[0]
    assert "PrivateAccess" in a.warnings[1]
    assert "67,108,865 public addresses" in a.warnings[2]
    assert PublicAccess(["203.0.113.0/24"]).warnings == ()
