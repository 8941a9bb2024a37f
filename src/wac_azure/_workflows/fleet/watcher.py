"""Watching a fleet's installs: :class:`RgWaiter` lists a resource group's VMs
and settles every pending install it shows, so waiting costs pages, not polls.

It sees the run only through :class:`RunView` and :class:`SubscriptionView`
(protocols the engine fulfils), so the engine imports it and not the reverse.
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
