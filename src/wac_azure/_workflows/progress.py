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
from typing import Protocol, runtime_checkable

from wac_azure._core.errors import ConfigurationError
from wac_azure._core.progress import ProgressEvent


@runtime_checkable
class ProgressBar(Protocol):
    """What :class:`TqdmProgress` needs of a bar: ``update(n)`` (a ``tqdm.tqdm`` has it).

    A writable ``total``, ``set_postfix_str(text)`` and ``refresh()`` are used
    when the bar has them.
    """

    def update(self, n: int = 1) -> object:
        """Advance the bar by ``n`` steps."""
        ...


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

    def __init__(self, bar: ProgressBar) -> None:
        if not callable(getattr(bar, "update", None)):
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
                    setattr(self.bar, "total", event.total)  # noqa: B010 (optional attribute)
        if not event.stage.terminal:
            return
        self.counts[event.stage.value] += 1
        set_postfix = getattr(self.bar, "set_postfix_str", None)
        if callable(set_postfix):
            set_postfix(", ".join(f"{k} {v}" for k, v in self.counts.items() if v))
        self.bar.update(1)
