"""Flags that widen or skip something refuse anything but True/False: a string such as
"no" is truthy, so it would silently open a well-known port or skip the writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    ConfigurationError,
    ExtensionManager,
    NetworkRulePlanner,
    VmTarget,
    disable,
    disable_many,
    enable,
    enable_many,
)
from wac_azure.testing import ArmEmulator

Call = Callable[[AzureSession, VmTarget, Any], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "enable(allow_well_known_port)": lambda s, t, v: enable(s, t, port=22, allow_well_known_port=v),
    "enable(dry_run)": lambda s, t, v: enable(s, t, dry_run=v),
    "enable_many(allow_well_known_port)": lambda s, t, v: enable_many(
        s, [t], port=22, allow_well_known_port=v
    ),
    "enable_many(dry_run)": lambda s, t, v: enable_many(s, [t], dry_run=v),
    "disable(remove_rules)": lambda s, t, v: disable(s, t, remove_rules=v),
    "disable_many(remove_rules)": lambda s, t, v: disable_many(s, [t], remove_rules=v),
    "ExtensionManager.install(allow_well_known_port)": lambda s, t, v: ExtensionManager(s).install(
        t, port=22, allow_well_known_port=v
    ),
    "NetworkRulePlanner.plan(allow_well_known_port)": lambda s, t, v: NetworkRulePlanner(s).plan(
        t, port=22, allow_well_known_port=v
    ),
}


@pytest.mark.parametrize("value", ["no", "", 0, 1, None], ids=repr)
@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_flag_that_is_not_a_bool_is_refused_before_any_request(
    emu: ArmEmulator, name: str, value: Any
) -> None:
    t = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        before = len(emu.requests)
        with pytest.raises(ConfigurationError, match=r"must be True or False"):
            await CALLS[name](session, t, value)
        assert len(emu.requests) == before
