"""Watching a fleet's installs: :class:`ExtensionWaiter` lists a subscription's VM
extensions (or, when that is cheaper, those of each resource group with VMs
waiting) through ARM's generic resources list, and confirms by the extension's own
GET only what the list cannot settle, so waiting costs pages, not polls.

Which scope (docs/performance.md, "Reads per VM"): one list of the whole
subscription serves every group of the run, a page per thousand extensions of the
subscription; a list per group costs at least a page per group. The waiter lists
the subscription while VMs of two or more groups wait, unless its last
subscription-wide list took more pages than there are groups waiting (a
subscription with many extensions outside the run); then it lists the groups.

Why this way (AZURE_FACTS §7, docs/performance.md): a VM list with
``$expand=instanceView`` is not a legal request; the generic list
(``$filter=resourceType eq 'Microsoft.Compute/virtualMachines/extensions'``,
``$expand=provisioningState,changedTime``) is, and costs one read per thousand
extensions. ARM's view of an extension may lag its own, so a settled state on the
list is trusted alone only when it cannot be stale: the list showed the VM's
operation *running* (``Creating``, ``Updating``, ``Deleting``…) in a list that
started after ARM accepted the write, and now shows it ``Succeeded`` — a later
state of the same operation (ARM's view moves forward in time). Such a VM is
settled without a read. Every other case — ``Failed`` or ``Canceled`` (the GET
carries the extension's messages), a ``Succeeded`` never seen running (an install
quicker than a round, or a stale entry from before the write), an extension the
list no longer shows — is settled by the extension's GET with its instance view.

It sees the run only through :class:`RunView` and :class:`SubscriptionView`
(protocols the engine fulfils), so the engine imports it and not the reverse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from wac_azure._azure.inventory import gather_all, get_extension, list_extensions
from wac_azure._azure.session import AzureSession
from wac_azure._core.facts import EXTENSION_NAME
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

#: Provisioning states that end an extension operation.
SETTLED = frozenset({"succeeded", "failed", "canceled"})
#: Extension GETs in flight per round.
CONFIRM_PARALLEL = 16


Key = tuple[str, str]  # (resource group, VM name), both lower case


def _vm_of(extension_id: str) -> Key | None:
    """(resource group, VM name), lower case, of ``/subscriptions/{s}/resourceGroups/
    {rg}/providers/Microsoft.Compute/virtualMachines/{vm}/extensions/AdminCenter``."""
    parts = extension_id.rstrip("/").split("/")
    if len(parts) < 8 or parts[-2].lower() != "extensions":
        return None
    if parts[-1].lower() != EXTENSION_NAME.lower() or parts[-4].lower() != "virtualmachines":
        return None
    if parts[-8].lower() != "resourcegroups":
        return None
    return parts[-7].lower(), parts[-3].lower()


def key_of(vm: FleetVm) -> Key:
    """The waiter's key of a VM."""
    return vm.target.resource_group.lower(), vm.target.name.lower()


def _succeeded(body: dict[str, Any]) -> dict[str, Any]:
    """The extension this run wrote (``body``), ``Succeeded`` as the list shows it."""
    props = dict(body.get("properties") or {})
    props["provisioningState"] = "Succeeded"
    return {
        "name": EXTENSION_NAME,
        "type": "Microsoft.Compute/virtualMachines/extensions",
        "properties": props,
    }


def _finished(vm: FleetVm) -> bool:
    return vm.outcome is not None


class ExtensionWaiter:
    """Waits for the extension operations of one subscription's VMs by listing extensions.

    ``check(vm, ext)`` gets the extension's own GET (with its instance view), or
    ``None`` when the extension (or its VM) does not exist, and says whether the
    VM is settled.

    When to list: every ``poll_interval`` at first, backing off (doubling, up
    to 4x) while nothing ends; once any operation of the run has been seen to end,
    no list is made before the oldest pending operation of the group can have
    ended too (it was accepted at least that long ago), then every
    ``poll_interval``. Installs that take minutes thus cost a few lists per
    round, not one every interval; a round is one list of the subscription, or one
    per group with VMs waiting (see the module's docstring).
    """

    def __init__(
        self,
        sub: SubscriptionView,
        check: Callable[[FleetVm, dict[str, Any] | None], bool],
    ) -> None:
        self.sub = sub
        self.check = check
        self.pending: dict[Key, FleetVm] = {}
        #: Resource group names as the targets spell them (lower -> as given).
        self._groups: dict[str, str] = {}
        #: Pages the last subscription-wide list took (None: none made yet).
        self.sub_pages: int | None = None
        #: Pages read, by scope: ``"subscription"`` and ``"group"``.
        self.pages = {"subscription": 0, "group": 0}
        self.running = False
        self.previous: float | None = None  # when the previous list started
        self.quiet = 0  # lists in a row that settled nothing
        #: VMs settled from the list alone (no extension GET).
        self.listed_settled = 0

    def add(self, vm: FleetVm) -> None:
        vm.accepted = time.monotonic()
        vm.seen_running = False
        key = key_of(vm)
        self.pending[key] = vm
        self._groups.setdefault(key[0], vm.target.resource_group)
        if not self.running:
            self.running = True
            self.sub.spawn(self._loop())

    def discard(self, vm: FleetVm) -> None:
        """Stop waiting for ``vm`` (its operation is settled some other way)."""
        self.pending.pop(key_of(vm), None)

    def scopes(self) -> list[str | None]:
        """What the next round lists: ``[None]`` for the whole subscription, else the
        resource groups with VMs waiting."""
        groups = sorted({rg for rg, _ in self.pending})
        if len(groups) >= 2 and (self.sub_pages is None or self.sub_pages <= len(groups)):
            return [None]
        return [self._groups[rg] for rg in groups]

    def _delay(self) -> float:
        base = self.sub.run.poll_interval
        floor = self.sub.run.op_floor
        if floor is None:
            return base * min(BACKOFF_MAX, 2.0 ** min(8, max(0, self.quiet - 1)))
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
                    _log.info(
                        "watching the extensions of subscription %s failed: %s", self.sub.sub, exc
                    )
                    if failures >= 5:
                        for vm in list(self.pending.values()):
                            run.fail(vm, exc, what=f"waiting for {vm.target.name}")
                        self.pending.clear()
                    continue
                failures = 0
        finally:
            self.running = False

    async def _list(self, rg: str | None, listed: dict[Key, str]) -> None:
        """One list (all its pages) of ``rg``'s extensions, or the subscription's."""
        scope = "group" if rg is not None else "subscription"
        pages = 0

        def page() -> None:
            nonlocal pages
            pages += 1

        async for doc in list_extensions(self.sub.session, self.sub.sub, rg, on_page=page):
            key = _vm_of(str(doc.get("id") or ""))
            if key is not None and key in self.pending:
                listed[key] = str(doc.get("provisioningState") or "").lower()
        self.pages[scope] += pages
        if rg is None:
            self.sub_pages = pages

    async def _round(self) -> None:
        """One round of lists; confirm by GET each pending VM whose extension they show
        settled or do not show, and settle those the GET says."""
        sub = self.sub
        started = time.monotonic()
        listed: dict[Key, str] = {}  # (rg, vm) lower -> provisioning state (lower)
        for rg in self.scopes():
            await self._list(rg, listed)
        due: list[tuple[Key, FleetVm]] = []
        settled: list[Key] = []
        for key, vm in list(self.pending.items()):  # check() may change pending
            if vm.accepted > started:  # the list may predate ARM accepting its write
                continue
            state = listed.get(key)
            if vm.outcome is not None:
                due.append((key, vm))
            elif state is not None and state not in SETTLED:
                vm.seen_running = True
            elif state == "succeeded" and vm.seen_running and vm.body is not None:
                # running in an earlier list made after this run's write, succeeded
                # now: the operation it waits for ended well (no read needed)
                self.listed_settled += 1
                if self.check(vm, _succeeded(vm.body)):
                    self._learn(vm)
                    settled.append(key)
                else:
                    due.append((key, vm))
            else:  # failed / canceled (their messages), never seen running, or gone
                due.append((key, vm))
        gate = asyncio.Semaphore(CONFIRM_PARALLEL)

        async def confirm(key: Key, vm: FleetVm) -> None:
            if vm.outcome is not None:
                settled.append(key)
                return
            async with gate:
                ext = await get_extension(
                    sub.session,
                    sub.sub,
                    vm.target.resource_group,
                    vm.target.name,
                    EXTENSION_NAME,
                )
            # (another task may have failed it meanwhile: then it is settled too)
            if _finished(vm):
                settled.append(key)
            elif self.check(vm, ext):  # it ended (and may still wait for its rules)
                self._learn(vm)
                settled.append(key)

        await gather_all(confirm(key, vm) for key, vm in due)
        for key in settled:
            # a VM whose install was sent again (and accepted) during this round is
            # pending anew: leave it for the next round
            still = self.pending.get(key)
            if still is not None and still.accepted <= started:
                del self.pending[key]
        self.quiet = 0 if settled else self.quiet + 1
        self.previous = started

    def _learn(self, vm: FleetVm) -> None:
        """An operation was seen to end: it needed at least (previous list - accepted)."""
        run = self.sub.run
        at_least = max(0.0, (self.previous or 0.0) - vm.accepted)
        run.op_floor = at_least if run.op_floor is None else min(run.op_floor, at_least)
