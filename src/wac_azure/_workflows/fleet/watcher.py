"""Fleets: :func:`enable_many`, :func:`disable_many` and :func:`discover`.

What bounds a fleet run is Azure Resource Manager's throttling (AZURE_FACTS
§6: per subscription, writes 200 + 10/s, reads 250 + 25/s) and the
extension's install time, not this machine. The run is shaped around that:

* **Reads scale with resource groups and pages, not VMs.** Per resource
  group: one list of VMs (``$expand=instanceView``), network interfaces,
  virtual networks, NSGs and — only when a NIC has one — public IPs, each
  following ``nextLink``; VM sizes once per location; resources outside the
  listed groups (an NSG in a shared networking group) read once each. Each
  VM's :class:`~wac_azure.VmFacts` is assembled from those lists
  (:func:`wac_azure._facts.facts_from_arm`).
* **Act per resource group, as soon as it is read.** Its VMs are checked and
  planned purely (:func:`~wac_azure._requirements.evaluate_requirements`,
  :func:`~wac_azure._plan.plan_many`: an NSG shared by many VMs gets each
  rule once); groups that share an NSG do not wait for each other: their
  writes to it queue, and what queued during one write is re-planned
  together against the NSG as read under its lock and written once.
* **Writes are the unavoidable ones.** Rules are PUT one by one, serialized
  per NSG (NSGs in parallel), each waited for through its operation-status
  resource; the extension is PUT once per VM that needs it as soon as its
  outbound path is in place (the install needs no inbound rule), ahead of the
  rule writes no install waits for in the write bucket. A VM is done when its
  install and its rules are both in force.
* **Waiting costs pages, not polls.** Extension PUTs are not polled one by
  one: the run lists each resource group's VMs with ``$expand=instanceView``
  and reads every pending install's state from that one list (see
  :class:`RgWaiter` for when).
* **Pacing.** The session's :class:`~wac_azure._pacing.Pacer` keeps each
  subscription below ARM's buckets (from the
  ``x-ms-ratelimit-remaining-subscription-*`` headers); subscriptions run in
  parallel, each at its own pace; 429s that still come are retried by
  azure-core and counted in the result.
* **Failures stay local.** A VM that fails the requirements is *skipped*
  (with its report), one whose write or install fails is *failed* (with the
  error); the rest of the batch carries on.
* **Cancellation.** Cancelling the run never leaves half a rule: each
  security-rule PUT is shielded and finishes. Running the same batch again
  writes only what is still missing and waits for installs still running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from wac_azure._azure.inventory import pages
from wac_azure._azure.session import AzureSession
from wac_azure._workflows.fleet.state import BACKOFF_MAX, FleetVm


class RunView(Protocol):
    """What the watcher needs of the fleet run."""

    @property
    def poll_interval(self) -> float: ...

    #: The shortest time an extension operation of the run is known to need (or None).
    op_floor: float | None

    @property
    def read_gate(self) -> asyncio.Semaphore: ...

    def fail(self, vm: FleetVm, exc: BaseException, *, what: str | None = None) -> None: ...


class SubscriptionView(Protocol):
    """What the watcher needs of one subscription's part of the run."""

    @property
    def sub(self) -> str: ...

    @property
    def session(self) -> AzureSession: ...

    @property
    def run(self) -> RunView: ...

    def spawn(self, work: Coroutine[Any, Any, None]) -> None: ...


_log = logging.getLogger(__name__)


class RgWaiter:
    """Waits for the extension operations of one resource group by listing its VMs.

    When to list: every ``poll_interval`` at first, backing off (doubling, up
    to 4x) while nothing ends; once any operation of the run has been seen to end,
    no list is made before the oldest pending operation of the group can have
    ended too (it was accepted at least that long ago), then every
    ``poll_interval``. Installs that take minutes thus cost a few lists per
    group, not one every interval.
    """

    def __init__(
        self,
        sub: SubscriptionView,
        rg: str,
        check: Callable[[FleetVm, dict[str, Any] | None], bool],
    ) -> None:
        self.sub = sub
        self.rg = rg
        self.check = check
        self.pending: dict[str, FleetVm] = {}
        self.running = False
        self.previous: float | None = None  # when the previous list started
        self.quiet = 0  # lists in a row that settled nothing

    def add(self, vm: FleetVm) -> None:
        vm.accepted = time.monotonic()
        self.pending[vm.target.name.lower()] = vm
        if not self.running:
            self.running = True
            self.sub.spawn(self._loop())

    def _delay(self) -> float:
        base = self.sub.run.poll_interval
        floor = self.sub.run.op_floor
        if floor is None:
            return base * min(BACKOFF_MAX, 2.0 ** max(0, self.quiet - 1))
        oldest = min((vm.accepted for vm in self.pending.values()), default=time.monotonic())
        return max(base, oldest + floor - time.monotonic())

    async def _loop(self) -> None:
        run = self.sub.run
        failures = 0
        try:
            while self.pending:
                await self.sub.session.sleep(self._delay())
                try:
                    async with run.read_gate:  # bounded with the groups being read
                        await self._round()
                except Exception as exc:
                    failures += 1
                    _log.info("listing the VMs of %s failed while waiting: %s", self.rg, exc)
                    if failures >= 5:
                        for vm in list(self.pending.values()):
                            run.fail(vm, exc, what=f"waiting for {vm.target.name}")
                        self.pending.clear()
                    continue
                failures = 0
        finally:
            self.running = False

    async def _round(self) -> None:
        """One list of the group's VMs; settle the pending VMs it shows (page by page:
        a page's JSON is dropped as soon as it is looked at)."""
        sub = self.sub
        started = time.monotonic()
        path = (
            f"/subscriptions/{sub.sub}/resourceGroups/{self.rg}"
            "/providers/Microsoft.Compute/virtualMachines"
        )
        names: set[str] = set()
        settled: list[str] = []
        async for doc in pages(sub.session, "compute", sub.sub, path, {"$expand": "instanceView"}):
            key = str(doc.get("name") or "").lower()
            names.add(key)
            vm = self.pending.get(key)
            if vm is None or vm.accepted > started:
                continue  # the list may predate ARM accepting its write: next round
            if vm.outcome is not None:
                settled.append(key)
            elif self.check(vm, doc):  # it ended (and may still wait for its rules)
                self._learn(vm)
                settled.append(key)
        for key, vm in self.pending.items():
            if key in names or vm.accepted > started:
                continue
            if vm.outcome is not None or self.check(vm, None):
                settled.append(key)
        for key in settled:
            # a VM whose install was sent again (and accepted) during this round is
            # pending anew: leave it for the next round
            vm = self.pending.get(key)
            if vm is not None and vm.accepted <= started:
                del self.pending[key]
        self.quiet = 0 if settled else self.quiet + 1
        self.previous = started

    def _learn(self, vm: FleetVm) -> None:
        """An operation was seen to end: it needed at least (previous list - accepted)."""
        run = self.sub.run
        at_least = max(0.0, (self.previous or 0.0) - vm.accepted)
        run.op_floor = at_least if run.op_floor is None else min(run.op_floor, at_least)
