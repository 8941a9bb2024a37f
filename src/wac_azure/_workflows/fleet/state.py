"""What a fleet run keeps while it works: per VM (:class:`FleetVm`), per NSG
(:class:`NsgQueue` of :class:`NsgJob`), and the shapes of a batch's decision."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from wac_azure._core.facts import VmFacts
from wac_azure._core.ids import VmTarget
from wac_azure._core.progress import ProgressStage
from wac_azure._workflows.fleet.results import VmOutcome

#: While no install of the run has been seen to end, lists of a group's VMs back off
#: to this many poll intervals (an install of ten minutes costs a dozen lists, not forty).
BACKOFF_MAX = 4.0


@attrs.define(eq=False)
class FleetVm:
    """One VM's state during a run."""

    target: VmTarget
    started: float
    facts: VmFacts | None = None
    stage: ProgressStage | None = None
    outcome: VmOutcome | None = None
    rules: list[str] = attrs.field(factory=list)
    changed: bool = False
    waiting_nsgs: int = 0  # NSGs on its path whose rule writes are not done yet
    #: Of those, the NSGs whose writes its install or removal must wait for: for
    #: ``enable`` the ones with outbound changes (the install needs outbound HTTPS;
    #: inbound rules only matter for connecting), for ``disable`` all of them.
    gating: set[str] = attrs.field(factory=set)
    rules_done: bool = False
    installing: str | None = None  # the "installing" message, held until its rules are in
    ext_done: Any = None  # the installed extension, held until its rules are in
    url: str | None = None  # its URL, kept when its facts are let go during the install
    body: dict[str, Any] | None = None
    accepted: float = 0.0  # when ARM accepted its extension write (time.monotonic())
    reputs: int = 0  # extension PUTs sent again after ARM dropped an accepted one
    #: A list started after ARM accepted its write showed its operation still running.
    seen_running: bool = False
    #: Its primary NIC as its group's list showed it (compact JSON text), kept only
    #: until the address record is written (its etag guards that PUT: no GET needed).
    nic_doc: str | None = None
    #: The subscription's read-ahead that counts it while its facts are held.
    ahead: ReadAhead | None = None


Then = Callable[[FleetVm], Awaitable[None]]


#: What a batch decided: rule changes to write, the VMs to go on with, what to do next.
Decision = tuple[Sequence[Any], list[FleetVm], Then]


Decide = Callable[[list[FleetVm]], Awaitable[Decision]]


@attrs.define(eq=False)
class NsgJob:
    """One batch's planned changes to one NSG and the VMs they serve."""

    changes: list[Any]
    served: list[FleetVm]
    then: Then


@attrs.define(eq=False)
class NsgQueue:
    """The batches waiting to write one NSG (a write cycle takes them all)."""

    jobs: list[NsgJob] = attrs.field(factory=list)
    running: bool = False


class ReadAhead:
    """How far one subscription's reading may run ahead of its writes.

    At most :attr:`bound` of its VMs are *held* at once: reserved for a group about to
    be read, read and waiting for their extension write (or delete) to be accepted, or
    for their outcome. (A VM whose extension write is accepted keeps its facts only
    until the rule writes on its path are in force too.) :meth:`reserve` waits, first
    come first served, until a group fits; a group larger than the bound is let in
    alone. :attr:`peak` is the most held at once.
    """

    def __init__(self, bound: int) -> None:
        self.bound = max(1, bound)
        self.held = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, n: int) -> bool:
        return self.held == 0 or self.held + n <= self.bound

    def _take(self, n: int) -> None:
        self.held += n
        self.peak = max(self.peak, self.held)

    async def reserve(self, vms: Sequence[FleetVm]) -> None:
        """Wait until ``vms`` fit under the bound (in the order asked), then hold them."""
        n = len(vms)
        if self._waiters or not self._fits(n):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (n, fut)
            self._waiters.append(entry)
            try:
                await fut  # _wake() takes the slots for us before it resolves this
            except BaseException:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                elif fut.done() and not fut.cancelled():
                    self.held -= n  # let in as it was cancelled: give the slots back
                self._wake()
                raise
        else:
            self._take(n)
        for vm in vms:
            vm.ahead = self

    def release(self, vm: FleetVm) -> None:
        """The VM's facts are let go: it no longer counts."""
        if vm.ahead is not self:
            return
        vm.ahead = None
        self.held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            n, fut = self._waiters.popleft()
            if not fut.done():
                self._take(n)
                fut.set_result(None)
