"""The access argument: PrivateAccess() by default, a wrong type refused before any write."""

from __future__ import annotations

import inspect

import pytest

from wac_azure import (
    AzureSession,
    InvalidAccessError,
    PrivateAccess,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator


def test_access_defaults_are_private_access() -> None:
    for fn in (enable, enable_many):
        default = inspect.signature(fn).parameters["access"].default
        assert default == PrivateAccess()


async def test_enable_refuses_a_wrong_access_type(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    with pytest.raises(InvalidAccessError):
        await enable(session, target, access="public")  # type: ignore[arg-type]
    assert [r for r in emu.requests if r.method != "GET"] == []
