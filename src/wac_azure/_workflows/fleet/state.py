"""What a fleet run keeps per VM while it works (:class:`FleetVm`)."""

from __future__ import annotations

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
