"""A fleet's reading runs ahead of its writes only so far: the VMs whose facts it holds
at once stay within the subscription's read-ahead bound, whatever N is (issue #18)."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure._azure.pacing import PacingConfig
from wac_azure._core.access import PrivateAccess
from wac_azure._workflows.fleet import engine
from wac_azure._workflows.fleet.engine import disable_many, enable_many
from wac_azure._workflows.fleet.run import Run, read_ahead_bound
from wac_azure.testing import ArmEmulator

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))

#: A write bucket of 1 refilled 40 a second and a read bucket 25 times faster: without
#: a bound, every group is read (and its facts held) long before its VMs are written.
PACING = PacingConfig(writes=(1, 40.0), reads=(250, 1000.0))
GROUPS, PER_GROUP = 8, 6


class _Watching(ArmEmulator):
    """At every request it answers, counts the run's VMs read and not yet written."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: list[Run] = []
        self.most_facts = 0

    async def handle(self, req: Any) -> Any:
        for run in self.runs:
            # read, and its extension write (or delete) not yet accepted
            held = sum(
                1
                for vm in run.vms.values()
                if vm.facts is not None and vm.installing is None and not vm.accepted
            )
            self.most_facts = max(self.most_facts, held)
        return await super().handle(req)


@pytest.fixture
def watching(monkeypatch: pytest.MonkeyPatch) -> _Watching:
    emu = _Watching(seed=0, extension_seconds=0.5)

    class Recorded(Run):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            emu.runs.append(self)

    monkeypatch.setattr(engine, "Run", Recorded)
    return emu


def test_the_bound_covers_the_write_burst_the_window_and_two_groups_read() -> None:
    # ARM's buckets at 150 ms: 200 + 16 + 10/s x (2 x 100 x 1.2 reads / 25/s) = 312
    assert read_ahead_bound(burst=200, write_rate=10.0, window=16, read_rate=25.0, group=100) == 312
    # never less than two groups, whatever the buckets
    assert read_ahead_bound(burst=1, write_rate=1.0, window=1, read_rate=1000.0, group=50) == 100


async def test_facts_held_at_once_stay_within_the_read_ahead_bound(watching: _Watching) -> None:
    emu = watching
    targets = [
        emu.add_windows_vm(f"vm{g}{i}", resource_group=f"rg{g}", nsg="nic")
        for g in range(GROUPS)
        for i in range(PER_GROUP)
    ]
    async with emu.session(pacing=PACING) as session:
        result = await enable_many(session, targets, access=ONPREM, poll_interval=0.2)
    assert result.ok, result.summary()
    (run,) = emu.runs
    (ahead,) = run.ahead.values()
    # the bound here: 1 + 8 + 40/s x (2 x 6 x 1.2 / 1000/s) = 10, at least two groups
    # of 6: 12, not N = 48 (the write window's floor is 8)
    assert ahead.bound == 12
    assert ahead.bound < len(targets)
    assert 0 < ahead.peak <= ahead.bound
    assert emu.most_facts <= ahead.bound, emu.most_facts  # counted from the VMs themselves
    assert ahead.held == 0  # every VM let go of its facts
    assert all(vm.facts is None for vm in run.vms.values())


async def test_a_removal_lets_go_of_the_facts_once_its_delete_is_accepted(
    watching: _Watching,
) -> None:
    emu = watching
    targets = [
        emu.add_windows_vm(f"vm{g}{i}", resource_group=f"rg{g}", nsg="nic")
        for g in range(GROUPS)
        for i in range(PER_GROUP)
    ]
    async with emu.session(pacing=PACING) as session:
        assert (await enable_many(session, targets, access=ONPREM, poll_interval=0.2)).ok
        emu.runs.clear()
        emu.most_facts = 0
        result = await disable_many(session, targets, poll_interval=0.2)
    assert result.ok, result.summary()
    (run,) = emu.runs
    (ahead,) = run.ahead.values()
    assert 0 < ahead.peak <= ahead.bound < len(targets)
    assert emu.most_facts <= ahead.bound, emu.most_facts
    assert ahead.held == 0
