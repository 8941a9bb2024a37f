"""Chaos beside another writer: a second OS process writes its own rules into the same NSGs.

While ``enable_many`` runs over the fleet (N=200 by default) with 20 % of the library's
requests faulted, another process (``tests/chaos/_other_writer.py``) talks to the same
emulator over its HTTPS front with the plain ``azure-mgmt-network`` client, no etags,
and creates and keeps updating rules of its own (``OtherWriter-*``) in every NSG of
the fleet, with priorities in the band the library plans in. Afterwards:

* every VM converged (enabled, or skipped/failed for its planned reason);
* not one of the other writer's rules is lost or changed: each is, field for field, the
  body that writer last wrote;
* no flow is open that was neither asked for nor open before (each VM's flows judged
  by the emulator's own evaluator, ``testing.backend.nsgeval``), and the asked ones are
  open on every enabled VM; every pre-existing rule is intact (the chaos audit).

``WAC_AZURE_CHAOS_WRITER_N`` sets N. The figures are printed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from wac_azure import RetryConfig, enable_many
from wac_azure.testing import ArmEmulator, Fault

from ._flows import ASKED, all_flows, opened_beyond
from ._world import ONPREM, audit, build_world, nsg_ids, read_state, snapshot
from .conftest import FIGURES
from .test_chaos import _outcome_checks

pytestmark = pytest.mark.chaos

N = int(os.environ.get("WAC_AZURE_CHAOS_WRITER_N", "200"))
SEED = int(os.environ.get("WAC_AZURE_CHAOS_SEED", "20261129")) + 7
RATE = 0.2
FAST_RETRY = RetryConfig(attempts=8, initial=0.01, maximum=0.05, jitter=0.0, deadline=120)
ROOT = Path(__file__).resolve().parents[2]
#: The library's requests are faulted; the other writer's own rule writes are not (it is
#: not the one under test), though its operation polls are.
NOT_THE_OTHER_WRITER = r"^(?!.*/securityRules/OtherWriter-)"
#: The transient faults of the chaos run but throttling: on a real clock each throttling
#: 429 holds a whole request class back for a second (the pacer's rule for a 429 without
#: Retry-After), which test_chaos.py covers in virtual time. Network's "busy" 429s still
#: come, from the emulator itself, whenever the two writers meet on one NSG.
KINDS = [
    "500",
    Fault.unavailable(retry_after=0),
    "409",
    "reset",
    "OperationPreempted",
    "InternalExecutionError",
    Fault.slow(0.05),
]


async def _start_writer(job: dict[str, Any]) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.chaos._other_writer",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env=env,
        limit=2**26,  # its last line lists every rule it wrote
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(job).encode() + b"\n")
    await proc.stdin.drain()
    return proc


async def _line(proc: asyncio.subprocess.Process, timeout: float = 120) -> bytes:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    assert line, f"the other writer exited ({await proc.wait()})"
    return line


async def test_enable_many_beside_another_writing_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Real time (scaled: an emulated second is 10 ms) for both writers: the library's
    # waits (Retry-After, polls) must overlap the other process's operations as they
    # would on Azure; in virtual time the library would retry a busy NSG a hundred times
    # in the instant the other writer's operation takes.
    emu = ArmEmulator(seed=SEED, lro_seconds=1.0, time_scale=0.01)
    world = build_world(emu, N, seed=SEED)
    names = [t.name for t in world.targets]
    nsgs = nsg_ids(emu, world.resource_groups, world.subscription)
    async with emu.serve() as srv:
        async with emu.session(retry=FAST_RETRY) as session:
            await snapshot(session, world)
            before = all_flows(await read_state(session, world, extensions=False), names)
        job = {
            "base_url": srv.base_url,
            "ca_file": srv.ca_file,
            "token": srv.token,
            "subscription": world.subscription,
            "nsgs": [[i.split("/")[4], i.rsplit("/", 1)[1]] for i in nsgs],
            "seed": SEED,
        }
        proc = await _start_writer(job)
        try:
            assert (await _line(proc)).strip() == b"ready"
            emu.faults.add_random(RATE, KINDS, path_regex=NOT_THE_OTHER_WRITER)
            first = len(emu.requests)
            started = time.monotonic()
            async with emu.session(
                retry=FAST_RETRY,
                polling_interval=0.01,
                client_kwargs={"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05},
            ) as session:
                result = await enable_many(
                    session, world.targets, access=ONPREM, poll_interval=0.02, timeout=600
                )
            run_s = time.monotonic() - started
            window = emu.requests[first:]
            assert proc.stdin is not None
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
            report = json.loads(await _line(proc))
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    emu.faults.enabled = False
    async with emu.session() as session:
        state = await read_state(session, world)

    # every VM converged
    enabled, problems = _outcome_checks(world, result)
    # not one of the other writer's rules lost or changed
    written: dict[str, dict[str, Any]] = report["written"]
    theirs_lost = []
    for rid, body in written.items():
        try:
            now = emu.resource(rid)["properties"]
        except Exception as exc:  # gone
            theirs_lost.append(f"{rid}: {exc}")
            continue
        changed = {k: (v, now.get(k)) for k, v in body.items() if now.get(k) != v}
        if changed or rid not in state.rules():
            theirs_lost.append(f"{rid}: {changed or 'not listed'}")
    # no flow beyond what was asked; the asked ones open on the enabled VMs
    after = all_flows(state, names)
    beyond = opened_beyond(before, after)
    closed = {vm: [q for q in ASKED if not after[vm][q]] for vm in enabled}
    closed = {vm: qs for vm, qs in closed.items() if qs}
    res = audit(world, state, enabled=enabled)
    interleaved = sum(1 for r in window if "/securityrules/otherwriter-" in r.path.lower())
    figures = {
        "vms": len(world.targets),
        "nsgs": len(nsgs),
        # both writers' requests while enable_many ran (the other writer's operation polls
        # cannot be told from the library's; its rule requests can)
        "requests": len(window),
        "other_writer_rule_requests": interleaved,
        "rules_lost": len(res.rules_lost) + len(theirs_lost),
        "wide_open_rules": len(res.wide_open),
        "faults_injected": emu.faults.total,
        "faults_by_kind": dict(sorted(emu.faults.counts.items())),
        "other_writer_rules": len(written),
        "other_writer_writes": report["writes"],
        "other_writer_writes_during_run": sum(
            1 for r in window if r.is_write and "/securityrules/otherwriter-" in r.path.lower()
        ),
        "other_writer_retries": report["retries"],
        "other_writer_priority_moves": report["priority_moves"],
        "nsg_busy_answers": sum(1 for r in window if r.status == 429),
        # the library's rule writes refused because the other writer got there first
        "library_rule_conflicts": sum(
            1
            for r in window
            if r.method == "PUT"
            and r.status in (400, 409, 412)
            and "/securityrules/" in r.path.lower()
            and "/securityrules/otherwriter-" not in r.path.lower()
        ),
        "vms_enabled": len(result.enabled),
        "vms_converged": len(world.targets) - len(problems),
        "other_writer_rules_lost_or_changed": len(theirs_lost),
        "flows_opened_beyond_asked": sum(len(v) for v in beyond.values()),
        "elapsed_s": round(run_s, 2),
    }
    FIGURES.append((f"other-writer-n{N}", figures))
    with capsys.disabled():
        print(f"\n[chaos other-writer] {json.dumps(figures, sort_keys=True)}")
    assert figures["other_writer_writes_during_run"] > 0  # the two really wrote at once
    assert not problems, "\n".join(problems)
    assert len(enabled) == len(world.targets) - len(world.doomed)
    assert not theirs_lost, "\n".join(theirs_lost[:20])
    assert not beyond, beyond
    assert not closed, closed
    assert not res.problems(), json.dumps(res.problems(), indent=1)[:3000]
