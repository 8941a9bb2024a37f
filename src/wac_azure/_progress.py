"""Progress of a fleet run: typed per-VM stage events and a tqdm adapter.

A fleet operation (:func:`wac_azure.enable_many`, :func:`wac_azure.disable_many`)
calls ``progress(event)`` for every stage a VM passes, in this order::

    reading → planned → rules applied → installing → done
                                                     failed / skipped (at any point)

(``disable_many`` uses ``reading → removing → rules removed → done``.)
Every VM ends with exactly one terminal event (``done``, ``failed`` or
``skipped``). Callbacks run on the event loop and must be quick; an exception
raised by a callback is logged and ignored — progress never stops a batch.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from typing import Any, Protocol

import attrs

from ._ids import VmTarget

__all__ = ["ProgressCallback", "ProgressEvent", "ProgressStage", "TqdmProgress", "emit"]

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


class ProgressCallback(Protocol):
    """Anything called with each :class:`ProgressEvent` (a function will do)."""

    def __call__(self, event: ProgressEvent) -> None: ...  # pragma: no cover


def emit(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Call ``callback`` with ``event``; log and swallow whatever it raises."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        _log.warning("progress callback raised on %s; ignoring it", event, exc_info=True)


class TqdmProgress:
    """Drive a tqdm-like progress bar from fleet events.

    ``bar`` is any object with ``update(n)`` and, optionally, a writable
    ``total``, ``set_postfix_str(text)`` and ``refresh()`` — a ``tqdm.tqdm``,
    ``tqdm.auto.tqdm`` or ``rich``-style adapter. tqdm is not a dependency of
    wac_azure: pass in the bar you already use::

        from tqdm.auto import tqdm
        with tqdm(unit="vm") as bar:
            result = await enable_many(session, targets, progress=TqdmProgress(bar))

    The bar advances once per VM that reaches a terminal stage; the postfix
    shows the counts so far. ``counts`` holds them too.
    """

    def __init__(self, bar: Any) -> None:
        if not callable(getattr(bar, "update", None)):
            from ._errors import ConfigurationError

            raise ConfigurationError(
                "TqdmProgress needs a tqdm-like bar with an update(n) method, "
                f"got {type(bar).__name__}"
            )
        self.bar = bar
        self.counts: dict[str, int] = {"done": 0, "failed": 0, "skipped": 0}
        self._seen_total = False

    def __call__(self, event: ProgressEvent) -> None:
        if not self._seen_total:
            self._seen_total = True
            if getattr(self.bar, "total", None) in (None, 0):
                with contextlib.suppress(AttributeError):  # a read-only total
                    self.bar.total = event.total
        if not event.stage.terminal:
            return
        self.counts[event.stage.value] += 1
        set_postfix = getattr(self.bar, "set_postfix_str", None)
        if callable(set_postfix):
            set_postfix(", ".join(f"{k} {v}" for k, v in self.counts.items() if v))
        self.bar.update(1)
