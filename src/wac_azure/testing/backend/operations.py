"""Long-running operations as ARM runs them: operation-status resources polled to completion.

An operation completes after ``lro_polls`` polls (of its status URL, its
``Location`` URL, or a GET of the resource it changes), or, when the emulator
has ``lro_seconds``, once that many emulated seconds have passed.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Operation", "OperationTable", "Outcome"]


@attrs.define
class Outcome:
    """How an operation ended: ``Succeeded`` (with an optional result body) or ``Failed``."""

    status: str = "Succeeded"
    error: dict[str, Any] | None = None
    result: Any = None


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z") if t.tzinfo else t.isoformat() + "Z"


@attrs.define(eq=False)
class Operation:
    """One operation-status resource."""

    id: str
    namespace: str
    location: str
    subscription: str
    resource_id: str
    kind: str  # "put" | "delete" | "action"
    started: float
    duration: float | None
    polls_needed: int
    on_success: Callable[[], Outcome] | None = None
    on_abort: Callable[[], None] | None = None
    forced_failure: tuple[str, str] | None = None
    #: a verbatim operation-status body to end with (``Fault.operation_result``)
    forced_result: dict[str, Any] | None = None
    #: keep the resource when ``forced_result`` fails: call ``on_fail`` instead of ``on_abort``
    keep_on_failure: bool = False
    #: marks the resource failed (given the error) for ``keep_on_failure``
    on_fail: Callable[[dict[str, Any]], None] | None = None
    polls: int = 0
    status: str = "InProgress"
    outcome: Outcome | None = None
    start_time: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(dt.UTC))
    end_time: dt.datetime | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def due(self, now: float) -> bool:
        if self.duration is not None:
            return now >= self.started + self.duration
        return self.polls >= self.polls_needed

    def finish(self) -> None:
        if self.done:
            return
        if self.forced_result is not None:
            status = str(self.forced_result.get("status", "Failed"))
            error = self.forced_result.get("error")
            if status == "Succeeded":
                if self.on_success is not None:
                    self.on_success()
            elif self.keep_on_failure and self.on_fail is not None:
                self.on_fail(error if isinstance(error, dict) else {})
            elif self.on_abort is not None:
                self.on_abort()
            outcome = Outcome(status, error if isinstance(error, dict) else None)
        elif self.forced_failure is not None:
            code, message = self.forced_failure
            if self.on_abort is not None:
                self.on_abort()
            outcome = Outcome("Failed", {"code": code, "message": message})
        elif self.on_success is not None:
            outcome = self.on_success()
        else:
            outcome = Outcome()
        self.outcome = outcome
        self.status = outcome.status
        self.end_time = dt.datetime.now(dt.UTC)

    def status_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/providers/{self.namespace}"
            f"/locations/{self.location}/operations/{self.id}"
        )

    def result_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/providers/{self.namespace}"
            f"/locations/{self.location}/operationResults/{self.id}"
        )

    def cancel(self, error: dict[str, Any]) -> None:
        """End the operation ``Canceled`` with ``error`` now, undoing its write (superseded)."""
        if self.done:
            return
        if self.on_abort is not None:
            self.on_abort()
        self.outcome = Outcome("Canceled", error)
        self.status = "Canceled"
        self.end_time = dt.datetime.now(dt.UTC)

    def status_body(self) -> dict[str, Any]:
        if self.forced_result is not None and self.done:
            return dict(self.forced_result)
        body: dict[str, Any] = {
            "name": self.id,
            "status": self.status,
            "startTime": _iso(self.start_time),
        }
        if self.end_time is not None:
            body["endTime"] = _iso(self.end_time)
            body["percentComplete"] = 100
        if self.outcome is not None and self.outcome.error is not None:
            body["error"] = self.outcome.error
        if self.kind == "action" and self.outcome is not None and self.outcome.result is not None:
            body["properties"] = {"output": self.outcome.result}
        return body


class OperationTable:
    """Every operation the emulator started, by ID.

    Pending operations are indexed so that a request costs little however many are in
    flight (10k-VM fleets): timed ones sit in a heap keyed by due time, so :meth:`tick`
    pops only those whose time has come; every pending one is filed under its resource ID
    and each ancestor path, so :meth:`touch` and :meth:`busy` look at the operations under
    one path only. Finished operations leave the indexes lazily.
    """

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}
        self._pending: dict[str, Operation] = {}
        self._timed: list[tuple[float, int, Operation]] = []
        self._seq = itertools.count()
        self._under: dict[str, dict[str, Operation]] = {}

    def clear(self) -> None:
        self.ops.clear()
        self._pending.clear()
        self._timed.clear()
        self._under.clear()

    @staticmethod
    def _paths(resource_id: str) -> list[str]:
        """``resource_id`` (lower-cased, no trailing ``/``) and each ancestor path."""
        key = resource_id.lower().rstrip("/")
        out = [key]
        i = key.rfind("/")
        while i > 0:
            key = key[:i]
            out.append(key)
            i = key.rfind("/")
        return out

    def add(self, op: Operation) -> Operation:
        self.ops[op.id] = op
        if not op.done:
            self._pending[op.id] = op
            for path in self._paths(op.resource_id):
                self._under.setdefault(path, {})[op.id] = op
            if op.duration is not None:
                heapq.heappush(self._timed, (op.started + op.duration, next(self._seq), op))
            elif op.polls >= op.polls_needed:
                heapq.heappush(self._timed, (op.started, next(self._seq), op))
        return op

    def get(self, op_id: str) -> Operation | None:
        return self.ops.get(op_id.lower()) or self.ops.get(op_id)

    def _forget(self, op: Operation) -> None:
        self._pending.pop(op.id, None)
        for path in self._paths(op.resource_id):
            bucket = self._under.get(path)
            if bucket is not None:
                bucket.pop(op.id, None)
                if not bucket:
                    del self._under[path]

    def pending(self) -> list[Operation]:
        for op in [op for op in self._pending.values() if op.done]:
            self._forget(op)
        return list(self._pending.values())

    def under(self, path: str) -> list[Operation]:
        """Pending operations on ``path`` or on resources under it."""
        bucket = self._under.get(path.lower().rstrip("/"))
        if not bucket:
            return []
        done = [op for op in bucket.values() if op.done]
        for op in done:
            self._forget(op)
        return list(bucket.values())

    def first_under(self, path: str) -> Operation | None:
        """One pending operation on ``path`` or under it (the oldest), or ``None``."""
        bucket = self._under.get(path.lower().rstrip("/"))
        while bucket:
            op = next(iter(bucket.values()))
            if not op.done:
                return op
            self._forget(op)
        return None

    def pending_on(self, resource_id: str) -> list[Operation]:
        key = resource_id.lower().rstrip("/")
        return [op for op in self.under(key) if op.resource_id.lower().rstrip("/") == key]

    def tick(self, now: float) -> None:
        """Finish every operation whose time has come (pops only those from the heap)."""
        timed = self._timed
        while timed and timed[0][0] <= now:
            _, _, op = heapq.heappop(timed)
            if not op.done and op.due(now):
                op.finish()
            if op.done:
                self._forget(op)

    def touch(self, path: str, now: float) -> None:
        """Count a GET of ``path`` as a poll of the operations on resources under it."""
        for op in self.under(path):
            op.polls += 1
            if op.due(now):
                op.finish()
                self._forget(op)
