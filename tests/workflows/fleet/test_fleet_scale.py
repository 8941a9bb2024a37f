"""Fleets under latency: the write window follows Little's law; installs watched with few reads."""

from __future__ import annotations

from typing import Any

from wac_azure import PacingConfig
from wac_azure._core.access import PrivateAccess
from wac_azure._core.errors import ExtensionInstallError
from wac_azure._workflows.fleet.engine import enable_many
from wac_azure._workflows.fleet.results import OutcomeStatus
from wac_azure.testing import ArmEmulator

from tests.workflows._worlds import InFlightCounting

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))


def _counting(**kwargs: Any) -> InFlightCounting:
    """Counts the extension PUTs being answered at once."""
    return InFlightCounting(method="PUT", path=r"(?i)/extensions/", **kwargs)


async def test_write_window_grows_with_latency_so_latency_does_not_set_the_pace() -> None:
    # 0.1 s per request and a write bucket refilling 400/s: Little's law wants 40 writes
    # in flight (x2 headroom: 80) to keep pace; a fixed 16 would send 160/s at most.
    emu = _counting(seed=0, latency=0.1)
    targets = [emu.add_windows_vm(f"vm{i:02d}", nsg="subnet") for i in range(60)]
    pacing = PacingConfig(writes=(200, 400.0), reads=(250, 1000.0))
    async with emu.session(pacing=pacing) as session:
        result = await enable_many(session, targets, access=ONPREM, poll_interval=0.5)
        window = session.pacer.subscription(targets[0].subscription_id).write_window()
    assert result.ok, result.summary()
    assert window >= 60
    assert emu.peak > 16, emu.peak


async def test_a_fixed_concurrency_still_caps_the_writes_in_flight() -> None:
    emu = _counting(seed=0, latency=0.05)
    targets = [emu.add_windows_vm(f"vm{i:02d}", nsg="subnet") for i in range(30)]
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM, concurrency=3)
    assert result.ok
    assert emu.peak <= 3


async def test_installs_seen_running_then_succeeded_need_no_extension_get() -> None:
    # Installs take 1.5 s +- 50 %, lists come every 0.3 s: each one is seen running
    # (Creating) on a list made after its write, then Succeeded: settled from the list.
    emu = ArmEmulator(seed=3, extension_seconds=1.5, extension_jitter=0.5)
    good = [emu.add_windows_vm(f"vm{i:02d}", nsg="subnet") for i in range(12)]
    blocked = emu.add_windows_vm("blocked", nsg="subnet")
    emu.guest(blocked).outbound_blocked = True  # its install ends Failed, with messages
    async with emu.session() as session:
        result = await enable_many(session, [*good, blocked], access=ONPREM, poll_interval=0.3)
    by_name = {o.target.name: o for o in result.outcomes}
    assert all(by_name[t.name].status is OutcomeStatus.ENABLED for t in good)
    assert all(by_name[t.name].port == 6516 for t in good)
    assert by_name["blocked"].status is OutcomeStatus.FAILED
    assert isinstance(by_name["blocked"].error, ExtensionInstallError)
    assert by_name["blocked"].error.substatuses  # the extension's own messages, from its GET
    ext_gets = [
        r.path.split("/virtualMachines/")[1].split("/")[0]
        for r in emu.requests
        if r.method == "GET" and r.path.endswith("/extensions/AdminCenter")
    ]
    assert ext_gets == ["blocked"]
    lists = [r for r in emu.requests if r.method == "GET" and r.path.endswith("/resources")]
    assert len(lists) >= 3  # the installs were watched over several rounds
