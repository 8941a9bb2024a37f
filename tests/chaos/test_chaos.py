"""Chaos: ``enable_many`` over a fleet while 20 % of ARM requests fail, then an audit.

CI runs N=40 in-process (virtual time) and N=8 over the HTTPS front (real sockets, so
connection resets are real TCP resets). The full size is a documented command::

    WAC_AZURE_CHAOS_N=200 .venv/bin/pytest -m chaos tests/chaos -s

``WAC_AZURE_CHAOS_N`` sets the in-process N (the HTTPS run uses N/5, at least 8),
``WAC_AZURE_CHAOS_SEED`` the seed, ``WAC_AZURE_CHAOS_RATE`` the faulted share (0.2),
``WAC_AZURE_CHAOS_REPORT`` a path where the figures are written as JSON as well. The
figures are printed at the end of each run and written to ``chaos-*.json`` in pytest's
base temporary directory.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from typing import Any

import pytest

from wac_azure import FleetResult, OutcomeStatus, RetryConfig, disable_many, enable_many
from wac_azure.testing import ArmEmulator, Fault

from ._world import (
    BLOCKED,
    DEALLOCATED,
    ONPREM,
    Counters,
    World,
    audit,
    build_world,
    is_transient,
    read_state,
    snapshot,
)
from .conftest import FIGURES

pytestmark = pytest.mark.chaos

N = int(os.environ.get("WAC_AZURE_CHAOS_N", "40"))
SEED = int(os.environ.get("WAC_AZURE_CHAOS_SEED", "20261129"))
RATE = float(os.environ.get("WAC_AZURE_CHAOS_RATE", "0.2"))
#: Fast library retries (the emulator's faults are transient by construction).
FAST_RETRY = RetryConfig(attempts=8, initial=0.01, maximum=0.05, jitter=0.0, deadline=120)


def _report(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    name: str,
    figures: dict[str, Any],
) -> None:
    """Print the figures to the terminal (whatever the capture mode) and write them as JSON."""
    text = json.dumps(figures, indent=2, sort_keys=True)
    path = tmp_path_factory.getbasetemp() / f"chaos-{name}.json"
    path.write_text(text)
    extra = os.environ.get("WAC_AZURE_CHAOS_REPORT")
    if extra:
        with open(extra, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures, sort_keys=True) + "\n")
    FIGURES.append((name, figures))
    with capsys.disabled():
        print(f"\n[chaos {name}] figures ({path}):\n{text}")


def _outcome_checks(world: World, result: FleetResult) -> tuple[list[str], list[str]]:
    """Every VM enabled, or skipped/failed for its non-transient, planned reason."""
    problems = []
    enabled = []
    for o in result.outcomes:
        name = o.target.name
        why = world.doomed.get(name)
        if o.status is OutcomeStatus.ENABLED:
            enabled.append(name)
            if why is not None:
                problems.append(f"{name} should not be enabled ({why})")
            continue
        reason = o.message or ""
        if is_transient(reason) or not reason.strip():
            problems.append(f"{name}: {o.status.value} for a transient/empty reason: {reason!r}")
        elif why == DEALLOCATED:
            if o.status is not OutcomeStatus.SKIPPED or "running" not in reason.lower():
                problems.append(f"{name}: expected skipped (not running), got {o}")
        elif why == BLOCKED:
            if o.status is not OutcomeStatus.FAILED or "443" not in reason:
                problems.append(f"{name}: expected failed (outbound 443 blocked), got {o}")
        else:
            problems.append(f"{name}: {o.status.value}: {reason}")
    return enabled, problems


def _figures(
    world: World, result: FleetResult, run: dict[str, Any], res: Any, problems: list[str]
) -> dict[str, Any]:
    """The run's figures: ``run`` holds what was measured around the faulted enable_many."""
    requests = run["requests"]
    statuses = collections.Counter(r.status for r in requests)
    return {
        "vms": len(world.targets),
        "nsgs": len({k.rsplit("/securityrules/", 1)[0] for k in world.preexisting}),
        "preexisting_rules": len(world.preexisting),
        "fault_rate": RATE,
        "seed": SEED,
        "requests": len(requests),
        "writes": sum(1 for r in requests if r.is_write),
        "faults_injected": sum(run["faults"].values()),
        "faults_by_kind": dict(sorted(run["faults"].items())),
        "answers_by_status": {str(k): v for k, v in sorted(statuses.items())},
        "retries_azure_core": run["retries_azure_core"],
        "retries_library": run["retries_library"],
        "vms_enabled": len(result.enabled),
        "vms_skipped": len(result.skipped),
        "vms_failed": len(result.failed),
        "vms_meant_to_fail": len(world.doomed),
        "vms_converged": len(world.targets) - len(problems),
        "managed_rules": res.managed_rules,
        "rules_lost": len(res.rules_lost),
        "duplicate_rules": len(res.duplicates),
        "priority_clashes": len(res.priority_clashes),
        "wide_open_rules": len(res.wide_open),
        "second_run_requests": run["second_requests"],
        "second_run_faults": run["second_faults"],
        "second_run_writes": run["second_writes"],
        "elapsed_s": round(result.elapsed, 2),
    }


class _LibraryRetries(logging.Handler):
    """Counts the library's own retries (409 in progress, failed operations sent again)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("retrying ") or "sending it again" in text:
            self.count += 1


async def _chaos_run(session_factory: Any, world: World, counters: Counters) -> dict[str, Any]:
    retries = _LibraryRetries()
    loggers = [
        logging.getLogger("wac_azure._azure.retry"),
        logging.getLogger("wac_azure._workflows.fleet"),
    ]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(retries)
        lg.setLevel(logging.INFO)
    try:
        return await _chaos_body(session_factory, world, counters, retries)
    finally:
        for lg, level in zip(loggers, saved, strict=False):
            lg.removeHandler(retries)
            lg.setLevel(level)


async def _chaos_body(
    session_factory: Any, world: World, counters: Counters, retries: _LibraryRetries
) -> dict[str, Any]:
    emu = world.emu
    async with session_factory() as session:
        await snapshot(session, world)  # before any fault
        emu.faults.add_random(RATE, KINDS_IN_PROCESS if not _https(session) else KINDS_HTTPS)
        if _https(session):  # at least one real TCP reset on a read and on a write
            emu.faults.add_scripted(3, "reset", method="GET")
            emu.faults.add_scripted(2, "reset", method="PUT")
        first = len(emu.requests)
        core_before = counters.retries
        result = await enable_many(
            session, world.targets, access=ONPREM, poll_interval=0.05, timeout=600
        )
        run: dict[str, Any] = {
            "requests": emu.requests[first:],
            "faults": dict(emu.faults.counts),
            "retries_azure_core": counters.retries - core_before,
            "retries_library": retries.count,
        }
        enabled, problems = _outcome_checks(world, result)
        # The audit reads with faults off: it judges the state, not the reads.
        emu.faults.enabled = False
        state = await read_state(session, world)
        res = audit(world, state, enabled=enabled)
        emu.faults.enabled = True
        # A second run over the converged VMs (faults still on) writes nothing.
        settled = [
            o.target
            for o in result.outcomes
            if o.status in (OutcomeStatus.ENABLED, OutcomeStatus.SKIPPED)
        ]
        before = len(emu.requests)
        faults_before = emu.faults.total
        again = await enable_many(session, settled, access=ONPREM, poll_interval=0.05)
        second = emu.requests[before:]
        run["second_requests"] = len(second)
        run["second_faults"] = emu.faults.total - faults_before
        run["second_writes"] = sum(1 for r in second if r.is_write)
        # Then take it all off again, faults still on: every managed rule and extension
        # goes, every pre-existing rule stays.
        before = len(emu.requests)
        faults_before = emu.faults.total
        off = await disable_many(session, world.targets, poll_interval=0.05, timeout=600)
        run["disable_requests"] = len(emu.requests) - before
        run["disable_faults"] = emu.faults.total - faults_before
        emu.faults.enabled = False
        after = audit(
            world,
            await read_state(session, world),
            enabled=(),
            disabled=[t.name for t in world.targets],
        )
        emu.faults.enabled = True
    figures = _figures(world, result, run, res, problems)
    figures["disable"] = {
        "requests": run["disable_requests"],
        "faults_injected": run["disable_faults"],
        "vms_disabled": len(off.disabled),
        "managed_rules_left": after.managed_rules,
        "rules_lost": len(after.rules_lost),
    }
    assert not problems, "\n".join(problems)
    assert not res.problems(), json.dumps(res.problems(), indent=1)
    assert len(enabled) == len(world.targets) - len(world.doomed)
    assert figures["faults_injected"] > 0.5 * figures["requests"] * RATE  # faults happened
    assert run["second_writes"] == 0, [r for r in second if r.is_write]
    assert again.counts["changed"] == 0
    assert len(again.enabled) == len(enabled)
    assert len(off.disabled) == len(world.targets), str(off)
    assert not after.problems(), json.dumps(after.problems(), indent=1)
    assert after.managed_rules == 0
    return figures


KINDS_IN_PROCESS: list[str | Fault] = [
    "429",
    "500",
    "503",
    "409",
    "reset",
    "OperationPreempted",
    "InternalExecutionError",
    "slow",
]
#: Real time over HTTPS: 429 with ``Retry-After: 0`` and short delays keep CI quick.
KINDS_HTTPS: list[str | Fault] = [
    Fault.throttled(retry_after=0),
    "500",
    Fault.unavailable(retry_after=0),
    "409",
    "reset",
    "OperationPreempted",
    "InternalExecutionError",
    Fault.slow(0.05),
]


def _https(session: Any) -> bool:
    return not session.base_url.endswith(".localhost")


async def test_enable_many_under_faults_in_process(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = ArmEmulator(seed=SEED)
    world = build_world(emu, N, seed=SEED)
    counters = Counters()

    def factory() -> Any:
        return emu.session(client_kwargs=counters.client_kwargs(), retry=FAST_RETRY)

    figures = await _chaos_run(factory, world, counters)
    figures["front"] = "in-process"
    _report(request, tmp_path_factory, capsys, f"in-process-n{N}", figures)
    assert figures["rules_lost"] == 0
    assert figures["wide_open_rules"] == 0


async def test_enable_many_under_faults_over_https(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    n = max(8, N // 5)
    emu = ArmEmulator(seed=SEED + 1)
    world = build_world(emu, n, seed=SEED + 1)
    counters = Counters()
    async with emu.serve() as srv:

        def factory() -> Any:
            return srv.session(
                client_kwargs={
                    **counters.client_kwargs(),
                    "retry_backoff_factor": 0.01,
                    "retry_backoff_max": 0.05,
                },
                retry=FAST_RETRY,
            )

        figures = await _chaos_run(factory, world, counters)
    figures["front"] = "https"
    _report(request, tmp_path_factory, capsys, f"https-n{n}", figures)
    assert figures["faults_by_kind"].get("reset", 0) > 0  # real TCP resets were survived
