"""Fleet benchmark: ``enable_many`` against the ARM emulator's HTTPS server at Azure's limits.

Each run starts the emulator's HTTPS server — one process per subscription —
with Azure's token buckets (reads 250 + 25/s, writes 200 + 10/s per
subscription) and Compute's throttling policies (the emulator's default
``ThrottleConfig``: Update VM, Low Cost Get, High Cost Get, Get Operation…),
an ARM round trip added to every request (``--latency-ms``, 150), an
extension install time (``--install-seconds``: each N runs with 300 s and
with 600 s unless told otherwise) spread per install by ``U(1 − j, 1 + j)``
(``--install-jitter``, 0.5), a rule-write operation time (``--rule-seconds``,
5) and a ``time_scale`` (real seconds per emulated second: bucket refill,
latency, operation times, the client's pacing and its poll interval are
compressed alike). The emulator refuses what Azure refuses (a VM list with
``$expand=instanceView``...), so the client sends legal reads only. Then the
client runs in another process — ``enable_many`` with the library's own
connection handling: an ``AzureSession`` with ``connection_verify=<CA bundle>``
and, as its one addition, a per-call policy that sends each subscription's
requests to its server (ARM is one endpoint; the emulator is one process per
subscription); no transport or pool of its own — and one JSON line per run is
printed::

    .venv/bin/python benchmarks/fleet.py     # N=50 (+ baseline), 1,000, 10,000/10 subs; 300, 600 s
    .venv/bin/python benchmarks/fleet.py --runs 1000 --install-seconds 600   # one run
    .venv/bin/python benchmarks/fleet.py --runs 30000 --install-seconds 300 --processes 3
    .venv/bin/python benchmarks/fleet.py --runs 2000 --subscriptions 2 --profile client.prof

Figures (all times in emulated, i.e. Azure, seconds unless ``_real``):

* ``wall`` – the client's wall time; ``bound`` – the throttle bound: the
  larger of the install time and the time the write and read buckets need for
  the requests no client can avoid (one extension PUT per VM, one PUT per
  distinct rule; one GET per VM with its instance view — a VM list may not
  expand it —, one GET per VM confirming its install, one GET per rule
  written, the list pages); ``wall_over_bound``.
* ``floor`` – the least wall time any client can have: the last extension
  PUT cannot leave before the write bucket has let every extension PUT out
  (``T_ext``: one per VM, after the burst of 200, at 10 per second, or
  Compute's Update VM bucket — 1,500, then 500 a minute — if slower; even when
  every rule write waits until they are all out), and its install then takes
  the full install time; the rule writes need ``T_writes`` plus one rule
  operation. So ``floor = max(T_ext + install, T_writes + rule operation,
  T_reads)``, and wall/bound > 1 is unavoidable whenever the install time and
  the write time are of the same size; ``wall_over_floor``.
* ``reads_per_vm`` / ``writes_per_vm`` (ARM requests seen by the servers,
  polls and lists included; ``vm_gets``, ``extension_gets``, ``watch_lists``),
  ``throttled`` (429s, ARM's and Compute's), ``failed`` (VMs), ``rss_mb``
  (client peak RSS; ``rss_total_mb`` adds N times the largest worker's with
  ``--processes N``, an upper bound; ``rss_sum_peak_mb`` the true peak of the
  sum over the client process and its workers, sampled every 0.5 s from
  ``/proc``; ``rss_timeline`` ``[seconds, own MiB, sum MiB, sockets]`` every
  5 s; ``peak_sockets`` the most sockets they held open), ``cpu_ms_per_vm`` (the client's CPU while
  ``enable_many`` ran, workers included, per VM), ``cpu_client`` /
  ``cpu_servers`` (seconds), ``peak_in_flight`` (the session's most requests
  in flight, so its most connections), ``timeline`` (first and last event of
  each progress stage).
* With jittered installs the floor uses the install times the servers drew:
  the i-th extension PUT to reach a server gets its i-th draw whatever order
  the client sends them in, and cannot arrive before ``leave(i)`` (the write
  bucket's and Compute's Update VM pace), so ``floor = max(max_i(leave(i) +
  d[i]), T_writes + rule operation, T_reads)``; the bound uses the longest
  draw. The reads counted as unavoidable: one GET per VM with its instance
  view, the group's NIC/VNet/NSG lists, two pages per thousand VMs of the
  subscription's extension list (one sees an install running, a later one
  Succeeded), per rule written the rule's GET that shows it in force, and per
  group one NSG list as the write cycles' fresh read. The writes counted: one
  extension PUT per VM and one PUT per rule (the address record's NIC write,
  one per VM, is this library's bookkeeping, sent after the writes a VM waits
  for, and not counted as unavoidable).

For N=50 it also runs the baseline users write today: a sequential loop over
the synchronous ``azure-mgmt-compute`` client, ``begin_create_or_update(...)
.result()`` per VM (on its own clock, ``BASELINE_TIME_SCALE``), and prints
``baseline_over_wac_azure``.

The fleet: VMs of ``--rg-size`` per resource group; most sit behind their
subnet's NSG, every 10th has its own NIC NSG too, every 10th (offset 5) only
a NIC NSG; access is ``PrivateAccess(sources=["10.10.0.0/16"])`` (an
on-premises range behind a VPN), which every NSG must allow: one rule per NSG.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
from typing import Any

from azure.core.pipeline.policies import SansIOHTTPPolicy

DEFAULT_SUB = "00000000-0000-0000-0000-0000000000{:02d}"
PAGE_SIZE = 50
#: ARM's generic resources list pages at up to 1,000 (the emulator's default too).
GENERIC_PAGE_SIZE = 1000
ONPREM = ("10.10.0.0/16",)
WRITES = (200, 10.0)
READS = (250, 25.0)
#: Compute's "Update VM" bucket per subscription (AZURE_FACTS §6): 1,500, then 500 a minute.
COMPUTE_UPDATE = (1500, 500 / 60)
#: Compute's "Low Cost Get" bucket per subscription (VM GETs): 24,000, then 8,000 a minute.
LOW_COST_GET = (24000, 8000 / 60)


def sub_id(i: int) -> str:
    return DEFAULT_SUB.format(i + 1)


def nsg_kind(i: int) -> str:
    if i % 10 == 0:
        return "both"
    if i % 10 == 5:
        return "nic"
    return "subnet"


def layout(n: int, subs: int, rg_size: int) -> list[tuple[str, str, str, str]]:
    """``(subscription, resource group, vm name, nsg kind)`` for every VM."""
    per_sub = n // subs
    out = []
    for s in range(subs):
        for i in range(per_sub):
            out.append((sub_id(s), f"rg-{i // rg_size:03d}", f"vm{i:05d}", nsg_kind(i)))
    return out


# ----------------------------------------------------------------------------- server


def server_main(conn: Any, cfg: dict[str, Any], only_sub: str | None = None) -> None:
    """Child process: build and serve the emulator (the VMs of ``only_sub``, or all);
    answer ``stats`` / ``stop``."""
    from wac_azure.testing import ArmEmulator, ThrottleConfig

    class BenchEmulator(ArmEmulator):
        """Records when ARM accepted each write and how long each install takes."""

        def start_operation(self, req: Any, **kwargs: Any) -> Any:
            rid = str(kwargs.get("resource_id", "")).lower()
            kind = "extension" if "/extensions/" in rid else "rule"
            if kind == "extension" and kwargs.get("duration") is not None:
                durations.append(float(kwargs["duration"]))
            # When ARM accepted each write (CLOCK_MONOTONIC: one clock for every process)
            now = time.monotonic()
            seen = accepted.setdefault(kind, [now, now])
            seen[1] = now
            return super().start_operation(req, **kwargs)

    accepted: dict[str, list[float]] = {}
    durations: list[float] = []  # each extension install (emulated s), in arrival order

    emu = BenchEmulator(
        seed=0,
        lro_seconds=cfg["rule_seconds"],
        # each install takes install x U(1 - j, 1 + j) (the emulator's extension_jitter)
        extension_seconds=cfg["install_seconds"],
        extension_jitter=cfg["install_jitter"],
        # ARM's round trip, added server-side to every request
        latency=cfg["latency_ms"] / 1000.0,
        time_scale=cfg["time_scale"],
        # ARM's buckets and (ThrottleConfig's default) Compute's policies per VM and
        # subscription: Update VM, Low Cost Get, High Cost Get, Get Operation...
        throttle=ThrottleConfig(reads=READS, writes=WRITES),
        page_size=PAGE_SIZE,
    )
    for sub, rg, name, nsg in layout(cfg["n"], cfg["subs"], cfg["rg_size"]):
        if only_sub is None or sub == only_sub:
            emu.add_windows_vm(name, subscription_id=sub, resource_group=rg, nsg=nsg)
    emu.token = cfg["token"]  # one test token for every server of the run
    emu.requests.clear()
    emu.throttle.reset()

    async def main() -> None:
        async with emu.serve() as handle:
            conn.send(handle.to_dict())
            loop = asyncio.get_running_loop()
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command == "stats":
                    conn.send({**_server_stats(emu), "accepted": accepted, "durations": durations})
                elif command == "reset":
                    emu.requests.clear()
                    conn.send("ok")
                else:
                    conn.send("bye")
                    return

    asyncio.run(main())


def _server_stats(emu: Any) -> dict[str, Any]:
    reqs = emu.requests
    return {
        "reads": sum(1 for r in reqs if r.method in ("GET", "HEAD")),
        "writes": sum(1 for r in reqs if r.method in ("PUT", "PATCH", "POST")),
        "deletes": sum(1 for r in reqs if r.method == "DELETE"),
        "polls": sum(1 for r in reqs if r.is_poll),
        "rule_puts": sum(
            1 for r in reqs if r.method == "PUT" and "/securityrules/" in r.path.lower()
        ),
        "extension_puts": sum(
            1 for r in reqs if r.method == "PUT" and "/extensions/" in r.path.lower()
        ),
        "throttled": sum(emu.throttle.rejected.values())
        + sum(getattr(emu.throttle, "compute_rejected", {}).values()),
        "extension_gets": sum(
            1
            for r in reqs
            if r.method == "GET" and r.path.lower().endswith("/extensions/admincenter")
        ),
        "vm_gets": sum(
            1
            for r in reqs
            if r.method == "GET" and r.path.lower().rsplit("/", 2)[-2] == "virtualmachines"
        ),
        "watch_lists": sum(
            1 for r in reqs if r.method == "GET" and r.path.lower().endswith("/resources")
        ),
        "cpu": resource.getrusage(resource.RUSAGE_SELF).ru_utime
        + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
    }


# ----------------------------------------------------------------------------- clients


def _targets(cfg: dict[str, Any]) -> list[Any]:
    from wac_azure import VmTarget

    return [
        VmTarget(sub, rg, name)
        for sub, rg, name, _ in layout(cfg["n"], cfg["subs"], cfg["rg_size"])
    ]


class RouteBySubscription(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """An azure-core per-call policy that sends each subscription's requests to its own
    emulator process. ARM is one endpoint, the emulator one Python process: one process
    holding ten thousand VMs would be the bottleneck, not the client. This is the
    benchmark's only addition to what a user has — no transport, no pool: connections
    are the session's own (one pool, capped by its in-flight window)."""

    def __init__(self, base: str, routes: dict[str, str]) -> None:
        super().__init__()
        self.base = base
        self.routes = routes

    def on_request(self, request: Any) -> None:
        http = request.http_request
        url = http.url
        if url.startswith(self.base):
            tail = url[len(self.base) :]
            parts = tail.split("/")
            if len(parts) > 2 and parts[1].lower() == "subscriptions":
                http.url = self.routes[parts[2].lower()] + tail


class BenchSessionFactory:
    """Builds the benchmark's session: what a user writes, plus the routing policy.

    Picklable (module-level, plain data), so ``enable_many(processes=N)`` workers
    rebuild it (``session_factory=``)."""

    def __init__(self, cfg: dict[str, Any], servers: dict[str, dict[str, Any]]) -> None:
        self.cfg = cfg
        self.servers = servers

    def bundle(self) -> str:
        """One PEM file trusting every server's CA (each server makes its own)."""
        import hashlib
        import os
        import tempfile
        from pathlib import Path

        pems = [Path(s["ca_file"]).read_text() for s in self.servers.values()]
        digest = hashlib.sha256("".join(pems).encode()).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"wac-bench-ca-{digest}.pem")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("".join(pems))
        return path

    def __call__(self, subscriptions: Any = ()) -> Any:
        """A new session (``subscriptions``: the worker's shard, unused here)."""
        from wac_azure import AzureSession, PacingConfig
        from wac_azure.testing import StaticTokenCredential

        cfg = self.cfg
        scale = cfg["time_scale"]
        first = next(iter(self.servers.values()))
        routes = {sub.lower(): srv["base_url"] for sub, srv in self.servers.items()}
        return AzureSession(
            StaticTokenCredential(cfg["token"]),
            base_url=first["base_url"],
            connection_verify=self.bundle(),
            client_kwargs={"per_call_policies": [RouteBySubscription(first["base_url"], routes)]},
            # ARM's network provider answers Retry-After in whole seconds; when it says 0
            # azure-core falls back to this: poll a rule write once it can be done.
            polling_interval=max(0.01, cfg["rule_seconds"] * scale),
            pacing=PacingConfig(reads=READS, writes=WRITES, refill_scale=1.0 / scale),
        )


def _rss_kib(pid: int) -> int:
    """A process's resident set (KiB) from ``/proc/<pid>/status``; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _sockets(pid: int) -> int:
    """How many sockets a process has open (its connections, and a few more)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    count = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (``enable_many(processes=N)``'s workers)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return found


class RssSampler:
    """Samples the client's RSS every ``interval`` seconds in a thread of the process
    that started it (not in the client, whose memory a sampling thread would add to:
    glibc gives a thread its own malloc arena): the client's and the *sum* over it and
    its child processes (the OS's ``ru_maxrss`` gives each process's own peak, and for
    children only the largest one's), from ``/proc``.

    ``peak_sum_kib`` is the true peak of the sum; ``timeline`` ``(seconds, own MiB,
    sum MiB, sockets open over them)`` every ``every`` samples, to see when memory
    grows; ``peak_sockets`` the most sockets open at once."""

    def __init__(self, pid: int, interval: float = 0.5, every: int = 10) -> None:
        self.pid = pid
        self.interval = interval
        self.every = every
        self.peak_sum_kib = 0
        self.peak_own_kib = 0
        self._samples = 0
        self.peak_sockets = 0
        self.timeline: list[tuple[float, float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample(force=True)

    def sample(self, force: bool = False) -> None:
        me = self.pid
        own = _rss_kib(me)
        children = _children(me)
        total = own + sum(_rss_kib(c) for c in children)
        sockets = _sockets(me) + sum(_sockets(c) for c in children)
        self.peak_sockets = max(self.peak_sockets, sockets)
        self.peak_own_kib = max(self.peak_own_kib, own)
        self.peak_sum_kib = max(self.peak_sum_kib, total)
        self._samples += 1
        if force or self._samples % self.every == 1:
            t = round(time.monotonic() - self._t0, 1)
            self.timeline.append((t, round(own / 1024, 1), round(total / 1024, 1), sockets))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def client_main(conn: Any, cfg: dict[str, Any], servers: dict[str, dict[str, Any]]) -> None:
    """Child process: ``enable_many`` over HTTPS; sends its figures back."""
    # Import the SDK clients before the clock starts: a one-time cost per process
    # (about a second), not part of a fleet run's pace. With --processes the workers
    # talk to Azure and this process only merges: it never needs them.
    if cfg.get("processes", 1) <= 1:
        import azure.mgmt.compute.aio
        import azure.mgmt.network.aio  # noqa: F401

    from wac_azure import PrivateAccess, enable_many

    scale = cfg["time_scale"]
    targets = _targets(cfg)

    async def main() -> dict[str, Any]:
        factory = BenchSessionFactory(cfg, servers)
        session = factory()
        marks: dict[str, list[float]] = {}

        installing: dict[Any, float] = {}
        lags: list[float] = []

        def progress(event: Any) -> None:
            if event.stage.value == "installing":
                installing[event.target] = event.at
            elif event.stage.value == "done" and event.target in installing:
                lags.append(event.at - installing[event.target])
            seen = marks.setdefault(event.stage.value, [event.at, event.at])
            seen[0] = min(seen[0], event.at)
            seen[1] = max(seen[1], event.at)

        extra: dict[str, Any] = {}
        if cfg.get("concurrency"):
            extra["concurrency"] = cfg["concurrency"]
        if cfg.get("processes", 1) > 1:
            extra.update(processes=cfg["processes"], session_factory=factory)
        async with session:
            start = time.monotonic()
            cpu0 = time.process_time()
            result = await enable_many(
                session,
                targets,
                access=PrivateAccess(sources=ONPREM),
                progress=progress,
                poll_interval=cfg["poll_seconds"] * scale,
                timeout=max(600.0, 20 * cfg["install_seconds"] * scale),
                **extra,
            )
            wall = time.monotonic() - start
            cpu_run = time.process_time() - cpu0
            connections = session.in_flight.peak
        counts = result.counts
        timeline = {
            stage: [round((a - start) / scale, 1), round((b - start) / scale, 1)]
            for stage, (a, b) in marks.items()
        }
        if lags:
            timeline["install_observed"] = [
                round(min(lags) / scale, 1),
                round(sum(lags) / len(lags) / scale, 1),
                round(max(lags) / scale, 1),
            ]
        return {
            "start": start,
            "timeline": timeline,
            "wall_real": wall,
            "enabled": counts["enabled"],
            "skipped": counts["skipped"],
            "failed": counts["failed"],
            "failed_throttled": sum(
                1 for o in result.failed if "429" in o.message or "throttl" in o.message.lower()
            ),
            "first_failure": result.failed[0].message[:300] if result.failed else None,
            "client_reads": result.reads,
            "client_writes": result.writes,
            "client_throttled": result.throttled,
            "cpu_run": cpu_run,
            "peak_in_flight": connections,
        }

    if cfg.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        figures = profiler.runcall(asyncio.run, main())
        profiler.dump_stats(cfg["profile"])
    else:
        figures = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # processes=N workers
    figures["rss_mb"] = round(usage.ru_maxrss / 1024.0, 1)
    figures["rss_workers_mb"] = round(children.ru_maxrss / 1024.0, 1)
    figures["cpu"] = usage.ru_utime + usage.ru_stime
    figures["cpu_workers"] = children.ru_utime + children.ru_stime
    conn.send(figures)


class _SyncCredential:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


def baseline_main(conn: Any, cfg: dict[str, Any], server: dict[str, Any]) -> None:
    """Child process: what users write today, one VM after the other (sync SDK)."""
    from azure.mgmt.compute import ComputeManagementClient

    scale = cfg["time_scale"]
    clients: dict[str, Any] = {}
    start = time.monotonic()
    failed = 0
    for t in _targets(cfg):
        client = clients.get(t.subscription_id)
        if client is None:
            client = clients[t.subscription_id] = ComputeManagementClient(
                _SyncCredential(server["token"]),
                t.subscription_id,
                base_url=server["base_url"],
                connection_verify=server["ca_file"],
                polling_interval=max(0.01, 1.0 * scale),
            )
        body = {
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "autoUpgradeMinorVersion": True,
                "settings": {"port": "6516", "salt": t.name},
            },
        }
        try:
            client.virtual_machine_extensions.begin_create_or_update(
                t.resource_group, t.name, "AdminCenter", body
            ).result()
        except Exception:
            failed += 1
    wall = time.monotonic() - start
    conn.send({"wall_real": wall, "failed": failed})


def _accepted(stats: dict[str, Any], start: float, scale: float) -> dict[str, list[float]]:
    """First and last extension / rule write ARM accepted, in emulated seconds from the
    client's start (over every server)."""
    out: dict[str, list[float]] = {}
    for kind in ("extension", "rule"):
        spans = [s["accepted"][kind] for s in stats["servers"] if kind in s["accepted"]]
        if spans:
            out[f"{kind} PUT accepted"] = [
                round((min(a for a, _ in spans) - start) / scale, 1),
                round((max(b for _, b in spans) - start) / scale, 1),
            ]
    return out


# ----------------------------------------------------------------------------- bound


def throttle_bound(
    cfg: dict[str, Any], durations: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """The unavoidable requests per subscription, the time ARM's and Compute's buckets
    need for them, and the floor given the install times the servers drew."""
    per_sub: dict[str, dict[str, Any]] = {}
    for sub, rg, _name, nsg in layout(cfg["n"], cfg["subs"], cfg["rg_size"]):
        s = per_sub.setdefault(sub, {"vms": 0, "rgs": {}, "nic_nsgs": 0})
        s["vms"] += 1
        g = s["rgs"].setdefault(rg, {"vms": 0, "subnet_nsg": False, "nsgs": 0})
        g["vms"] += 1
        if nsg in ("subnet", "both"):
            g["subnet_nsg"] = True
        if nsg in ("nic", "both"):
            s["nic_nsgs"] += 1
            g["nsgs"] += 1
    install = float(cfg["install_seconds"])
    jitter = float(cfg.get("install_jitter", 0.0))
    worst = {
        "t_writes": 0.0,
        "t_reads": 0.0,
        "t_ext": 0.0,
        "writes": 0,
        "reads": 0,
        "ext_floor": 0.0,
        "install_max": 0.0,
    }
    for sub, s in per_sub.items():
        rules = s["nic_nsgs"] + sum(1 for g in s["rgs"].values() if g["subnet_nsg"])
        writes = s["vms"] + rules
        # VM sizes (resource SKUs) and service tags of the one location; per rule written
        # the rule's GET that shows it in force (its operation's end and the read-back at
        # once), and per group one list of its NSGs shared by its write cycles as their
        # fresh read (docs/performance.md, "Reads per VM")
        reads = 2 + rules + len(s["rgs"])
        # the install watch: the subscription's generic extension list at least twice
        # (one list sees an install running, a later one sees it Succeeded: no GET
        # needed), a page per thousand extensions
        reads += 2 * math.ceil(s["vms"] / GENERIC_PAGE_SIZE)
        for g in s["rgs"].values():
            nsgs = g["nsgs"] + (1 if g["subnet_nsg"] else 0)
            vm_pages = math.ceil(g["vms"] / PAGE_SIZE)
            # NICs, VNets, NSGs listed; one GET per VM with its instance view (a VM list
            # may not expand it: AZURE_FACTS §7)
            reads += vm_pages + 1 + math.ceil(nsgs / PAGE_SIZE)
            reads += g["vms"]
        t_w = max(0.0, writes - WRITES[0]) / WRITES[1]
        # extension PUTs leave at ARM's write pace and at Compute's "Update VM" pace per
        # subscription (1,500, then 500 a minute), whichever is slower

        def leave(i: int) -> float:
            """The earliest the i-th (0-based) extension PUT can reach ARM."""
            return max(
                max(0.0, i + 1 - WRITES[0]) / WRITES[1],
                max(0.0, i + 1 - COMPUTE_UPDATE[0]) / COMPUTE_UPDATE[1],
            )

        t_ext = leave(s["vms"] - 1)
        worst["t_ext"] = max(worst["t_ext"], t_ext)
        # Each install's time is drawn by the server in the order the PUTs arrive, so
        # whatever order a client sends them in, the i-th to arrive takes d[i]: the
        # last install cannot end before max_i(leave(i) + d[i]).
        drawn = (durations or {}).get(sub) or [install] * s["vms"]
        worst["ext_floor"] = max(worst["ext_floor"], max(leave(i) + d for i, d in enumerate(drawn)))
        worst["install_max"] = max(worst["install_max"], max(drawn))
        # Compute's Low Cost Get (VM GETs: 24,000, then 8,000 a minute) never binds here
        t_r = max(
            max(0.0, reads - READS[0]) / READS[1],
            max(0.0, s["vms"] - LOW_COST_GET[0]) / LOW_COST_GET[1],
        )
        if t_w >= worst["t_writes"]:
            worst.update(t_writes=t_w, writes=writes)
        if t_r >= worst["t_reads"]:
            worst.update(t_reads=t_r, reads=reads)
    longest = worst["install_max"] or install * (1 + jitter)
    worst["bound"] = max(longest, worst["t_writes"], worst["t_reads"])
    worst["floor"] = max(
        worst["ext_floor"] or worst["t_ext"] + install,
        worst["t_writes"] + float(cfg["rule_seconds"]),
        worst["t_reads"],
    )
    return worst


# ----------------------------------------------------------------------------- runs


def _spawn(target: Any, *args: Any, daemon: bool = True) -> tuple[Any, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args), daemon=daemon)
    proc.start()
    return proc, parent


def _recv(conn: Any, proc: Any, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        proc.kill()
        raise SystemExit(f"{what} did not answer within {timeout:.0f}s")
    return conn.recv()


def _start_servers(cfg: dict[str, Any]) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """One emulator process per subscription: ``{sub: (process, pipe, handle)}``."""
    subs = sorted({sub for sub, _, _, _ in layout(cfg["n"], cfg["subs"], cfg["rg_size"])})
    started = {sub: _spawn(server_main, cfg, sub) for sub in subs}
    out = {}
    for sub, (proc, conn) in started.items():
        out[sub] = (proc, conn, _recv(conn, proc, 600, "an emulator server"))
    return out


def _stop_servers(servers: dict[str, tuple[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"servers": [], "durations": {}}
    for sub, (proc, conn, _) in servers.items():
        try:
            conn.send("stats")
            stats = conn.recv()
            totals["servers"].append({"accepted": stats.pop("accepted")})
            totals["durations"][sub] = stats.pop("durations")
            for key, value in stats.items():
                totals[key] = totals.get(key, 0) + value
            conn.send("stop")
            conn.recv()
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return totals


def run(cfg: dict[str, Any], *, baseline: bool) -> dict[str, Any]:
    import secrets

    cfg = {**cfg, "token": secrets.token_urlsafe(24)}
    t0 = time.monotonic()
    servers = _start_servers(cfg)
    try:
        setup = time.monotonic() - t0
        handles = {sub: handle for sub, (_, _, handle) in servers.items()}
        # a daemonic process may not start processes: enable_many(processes=N) needs one
        client, cconn = _spawn(client_main, cfg, handles, daemon=cfg.get("processes", 1) <= 1)
        sampler = RssSampler(client.pid).start()
        try:
            figures = _recv(cconn, client, 3600, "the client")
        finally:
            sampler.stop()
        figures["rss_sum_peak_mb"] = round(sampler.peak_sum_kib / 1024.0, 1)
        figures["rss_timeline"] = sampler.timeline
        figures["peak_sockets"] = sampler.peak_sockets
        client.join(30)
    finally:
        stats = _stop_servers(servers)
    scale = cfg["time_scale"]
    workers = cfg.get("processes", 1) if cfg.get("processes", 1) > 1 else 0
    bound = throttle_bound(cfg, stats["durations"])
    wall = figures["wall_real"] / scale
    n = cfg["n"]
    line: dict[str, Any] = {
        "N": n,
        "subscriptions": cfg["subs"],
        "rg_size": cfg["rg_size"],
        "install_seconds": cfg["install_seconds"],
        "install_jitter": cfg["install_jitter"],
        "latency_ms": cfg["latency_ms"],
        "processes": cfg.get("processes", 1),
        "concurrency": cfg.get("concurrency"),
        "rule_seconds": cfg["rule_seconds"],
        "time_scale": scale,
        "wall": round(wall, 1),
        "wall_real": round(figures["wall_real"], 2),
        "bound": round(bound["bound"], 1),
        "wall_over_bound": round(wall / bound["bound"], 3),
        "floor": round(bound["floor"], 1),
        "wall_over_floor": round(wall / bound["floor"], 3),
        "t_ext": round(bound["t_ext"], 1),
        "t_writes": round(bound["t_writes"], 1),
        "t_reads": round(bound["t_reads"], 1),
        "install_max": round(bound["install_max"], 1),
        "reads_per_vm": round(stats["reads"] / n, 3),
        "vm_gets": stats["vm_gets"],
        "extension_gets": stats["extension_gets"],
        "watch_lists": stats["watch_lists"],
        "writes_per_vm": round((stats["writes"] + stats["deletes"]) / n, 3),
        "polls": stats["polls"],
        "rule_puts": stats["rule_puts"],
        "extension_puts": stats["extension_puts"],
        "throttled": stats["throttled"],
        "client_throttled": figures["client_throttled"],
        "enabled": figures["enabled"],
        "failed": figures["failed"],
        "failed_by_throttling": figures["failed_throttled"],
        "rss_mb": figures["rss_mb"],
        "setup_real": round(setup, 1),
        "cpu_client": round(figures["cpu"], 1),
        "cpu_workers": round(figures["cpu_workers"], 1),
        # the client's CPU per VM while enable_many ran (imports and start-up excluded):
        # its own process and its worker processes
        "cpu_ms_per_vm": round(1000.0 * (figures["cpu_run"] + figures["cpu_workers"]) / n, 2),
        # with worker processes: the parent's peak plus N times the largest worker's (the
        # OS gives the largest child's peak, not their sum: an upper bound)
        "rss_total_mb": round(figures["rss_mb"] + workers * figures["rss_workers_mb"], 1),
        # the true peak of the client's RSS summed over its process and its workers,
        # sampled every 0.5 s from /proc (the peak of a sum, not a sum of peaks)
        "rss_sum_peak_mb": figures["rss_sum_peak_mb"],
        # (real seconds since the client started, its own RSS MiB, the sum's, sockets) every 5 s
        "rss_timeline": figures["rss_timeline"],
        # the most sockets the client's processes held open at once (its TLS connections)
        "peak_sockets": figures["peak_sockets"],
        "peak_in_flight": figures["peak_in_flight"],
        "cpu_servers": round(stats["cpu"], 1),
        "timeline": {**figures["timeline"], **_accepted(stats, figures["start"], scale)},
    }
    if figures["first_failure"]:
        line["first_failure"] = figures["first_failure"]
    if baseline:
        cfg = {**cfg, "time_scale": BASELINE_TIME_SCALE}
        servers = _start_servers(cfg)
        try:
            handle = next(iter(servers.values()))[2]
            base, bconn = _spawn(baseline_main, cfg, handle)
            base_figures = _recv(bconn, base, 7200, "the baseline client")
            base.join(30)
        finally:
            _stop_servers(servers)
        base_wall = base_figures["wall_real"] / BASELINE_TIME_SCALE
        line["baseline_wall"] = round(base_wall, 1)
        line["baseline_failed"] = base_figures["failed"]
        line["baseline_over_wac_azure"] = round(base_wall / wall, 1)
    return line


#: The baseline installs one VM after the other: its own, faster clock.
BASELINE_TIME_SCALE = 0.005
PRESETS = {
    # N: (subscriptions, time_scale). Emulated time is compressed, the client's CPU
    # time is not: a run whose client is busy (10,000 VMs in one process) runs in
    # real time so that its CPU weighs as it would against Azure.
    50: (1, 0.05),
    1000: (1, 0.25),
    10000: (10, 1.0),
    30000: (30, 1.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default="50,1000,10000",
        help="comma-separated N values (default 50,1000,10000; 10000 uses 10 subscriptions)",
    )
    parser.add_argument(
        "--install-seconds",
        default="300,600",
        help="comma-separated extension install times; each N runs with each (300,600)",
    )
    parser.add_argument(
        "--rule-seconds", type=float, default=5.0, help="a security-rule write's operation (5)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=150.0,
        help="emulated ms the servers add to every request (ARM's round trip; 150)",
    )
    parser.add_argument(
        "--install-jitter",
        type=float,
        default=0.5,
        help="each install takes install x U(1 - j, 1 + j) (0.5)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="enable_many(processes=N): worker processes (1)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="enable_many(concurrency=N): fixed extension writes in flight (default: from latency)",
    )
    parser.add_argument(
        "--profile", metavar="PATH", help="cProfile the client's run, stats to PATH (pstats)"
    )
    parser.add_argument("--rg-size", type=int, default=100, help="VMs per resource group")
    parser.add_argument(
        "--poll-seconds", type=float, default=15.0, help="enable_many poll_interval"
    )
    parser.add_argument("--time-scale", type=float, default=None, help="override the preset")
    parser.add_argument("--subscriptions", type=int, default=None, help="override the preset")
    parser.add_argument("--no-baseline", action="store_true", help="skip the N=50 baseline")
    args = parser.parse_args(argv)
    installs = [float(t) for t in str(args.install_seconds).split(",")]
    for text in args.runs.split(","):
        n = int(text)
        subs, scale = PRESETS.get(n, (1, 0.02))
        for k, install in enumerate(installs):
            cfg = {
                "n": n,
                "subs": args.subscriptions or subs,
                "time_scale": args.time_scale or scale,
                "install_seconds": install,
                "rule_seconds": args.rule_seconds,
                "rg_size": args.rg_size,
                "poll_seconds": args.poll_seconds,
                "latency_ms": args.latency_ms,
                "install_jitter": args.install_jitter,
                "processes": args.processes,
                "profile": args.profile,
                "concurrency": args.concurrency,
            }
            line = run(cfg, baseline=(n == 50 and k == 0 and not args.no_baseline))
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
