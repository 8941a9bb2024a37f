"""Progress events: one :class:`ProgressEvent` per VM and stage, for one VM and for fleets.

``emit`` calls a user's callback and never lets it break the run (``guarded`` wraps it
once per run, so a failing callback is logged once, not on every event); ``say``,
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


class GuardedProgress:
    """The caller's progress callback for one run: whatever it raises is swallowed, and
    logged once, at ``WARNING`` with the traceback, the first time (not on every event).

    ``failures`` counts the events it raised on. Each public operation wraps the
    callback it was given once (:func:`guarded`), so one run logs at most one warning
    for it however many events (and VMs) there are.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.failures = 0

    def __call__(self, event: ProgressEvent) -> None:
        try:
            self.callback(event)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                _log.warning(
                    "progress callback raised on %s; ignoring it, and any further failure "
                    "of it in this run (callback: %s)",
                    event,
                    getattr(self.callback, "__qualname__", type(self.callback).__name__),
                    exc_info=True,
                )


def guarded(callback: ProgressCallback | None) -> GuardedProgress | None:
    """``callback`` wrapped for one run (``None`` stays ``None``; a guarded one is kept)."""
    if callback is None or isinstance(callback, GuardedProgress):
        return callback
    return GuardedProgress(callback)


def emit(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Call ``callback`` with ``event``; whatever it raises is swallowed and logged (once
    per run when the callback is :func:`guarded`, as every public operation does)."""
    if callback is None:
        return
    guard = callback if isinstance(callback, GuardedProgress) else GuardedProgress(callback)
    guard(event)


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


def log_unknowns(t: VmTarget, report: Any) -> list[str]:
    """Log at ``WARNING`` the requirement checks of ``report`` that are *unknown* for a VM
    the install goes ahead on; return their codes."""
    unknown = [c.code for c in getattr(report, "unknowns", ())]
    if unknown:
        _log.warning(
            "%s: going ahead although requirement checks could not be confirmed: %s",
            t.name,
            ", ".join(unknown),
        )
    return unknown


def warn_unknowns(t: VmTarget, report: Any, progress: ProgressCallback | None) -> None:
    """Unknown checks do not stop an install (Azure is the judge); say which ones."""
    unknown = log_unknowns(t, report)
    if unknown:
        say(
            progress,
            t,
            ProgressStage.READING,
            f"not confirmed (continuing): {', '.join(unknown)}",
        )
