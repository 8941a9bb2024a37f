"""Exposure limits end to end: sources of the wrong IP family stop `enable` and
`enable_many` alike, with the same typed error and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure import (
    InvalidAccessError,
    OutcomeStatus,
    PrivateAccess,
    PublicAccess,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator


def _world() -> tuple[ArmEmulator, Any]:
    emu = ArmEmulator(seed=3)
    t = emu.add_windows_vm("vm1", nsg="both", public_ip=True)
    return emu, t


@pytest.mark.parametrize(
    "access",
    [
        PublicAccess(["203.0.113.7", "2001:db8::7"]),
        PrivateAccess(["fd00:1234::/48"]),
    ],
    ids=["public-ipv6", "private-ipv6"],
)
async def test_wrong_family_is_refused_alike_by_enable_and_enable_many(access: Any) -> None:
    emu, t = _world()
    async with emu.session() as session:
        with pytest.raises(InvalidAccessError) as single:
            await enable(session, t, access=access)
        assert emu.writes() == []
        fleet = await enable_many(session, [t], access=access)
    assert emu.writes() == []
    (outcome,) = fleet.outcomes
    assert outcome.status is OutcomeStatus.FAILED
    assert isinstance(outcome.error, InvalidAccessError)
    assert type(outcome.error) is type(single.value)
    assert "IPv6" in str(single.value)
    assert "IPv4 only" in str(single.value)
    assert "nothing was written" in str(single.value)
