"""Progress events: one :class:`ProgressEvent` per VM and stage, for one VM and for fleets.

``emit`` calls a user's callback and never lets it break the run; ``say``,
``non_terminal`` and ``warn_unknowns`` are the single-VM helpers that
``install``, ``enable`` and ``disable`` share.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs

from wac_azure._core.ids import VmTarget

_log = logging.getLogger(__name__)


class ProgressStage(enum.Enum):
    """A stage of one VM in a fleet run."""

    READING = "reading"
    PLANNED = "planned"
    RULES_APPLIED = "rules applied"
    INSTALLING = "installing"
    REMOVING = "removing"
    RULES_REMOVED = "rules removed"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        """True for ``done``, ``failed`` and ``skipped``."""
        return self in (ProgressStage.DONE, ProgressStage.FAILED, ProgressStage.SKIPPED)


@attrs.frozen
class ProgressEvent:
    """One VM reached one stage.

    ``total`` is the number of VMs in the run, ``message`` a short
    human-readable detail (why a VM failed, which port...), ``at`` a
    ``time.monotonic()`` stamp.
    """

    target: VmTarget
    stage: ProgressStage
    total: int
    message: str | None = None
    at: float = attrs.field(factory=time.monotonic)

    def __str__(self) -> str:
        tail = f": {self.message}" if self.message else ""
        return f"{self.target.name} {self.stage.value}{tail}"


#: Anything called with each :class:`ProgressEvent`: ``print``, ``events.append``, a
#: ``def cb(ev) -> None``, a :class:`~wac_azure.TqdmProgress`. What it returns is ignored.
ProgressCallback = Callable[[ProgressEvent], object]


def emit(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Call ``callback`` with ``event``; log and swallow whatever it raises."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        _log.warning("progress callback raised on %s; ignoring it", event, exc_info=True)


#: A progress callback: called with one :class:`~wac_azure.ProgressEvent` per stage
#: (the same type fleets use; ``str(event)`` is a readable line). Kept as an alias.
Progress = ProgressCallback


def say(
    progress: ProgressCallback | None,
    target: VmTarget,
    stage: ProgressStage,
    message: str | None = None,
) -> None:
    """Emit one single-VM :class:`ProgressEvent` (``total=1``); a raising callback is ignored."""
    emit(progress, ProgressEvent(target, stage, 1, message))


def non_terminal(progress: ProgressCallback | None) -> ProgressCallback | None:
    """``progress`` without terminal events: for a step inside a larger operation
    (``enable`` runs ``install``), so the operation ends with exactly one terminal event."""
    if progress is None:
        return None
    callback = progress

    def forward(event: ProgressEvent) -> None:
        if not event.stage.terminal:
            callback(event)

    return forward


def warn_unknowns(t: VmTarget, report: Any, progress: ProgressCallback | None) -> None:
    """Unknown checks do not stop an install (Azure is the judge); say which ones."""
    unknown = [c.code for c in getattr(report, "unknowns", ())]
    if unknown:
        _log.info("%s: requirement checks not confirmed: %s", t.name, ", ".join(unknown))
        say(
            progress,
            t,
            ProgressStage.READING,
            f"not confirmed (continuing): {', '.join(unknown)}",
        )
