"""What a fleet run returns: :class:`FleetResult`, one :class:`VmOutcome` per VM,
and :class:`OutcomeStatus` (succeeded, skipped, failed)."""

from __future__ import annotations

import collections
import enum
import html
import re
from collections.abc import Sequence
from typing import Any

import attrs

from wac_azure._core.errors import InvalidInputError
from wac_azure._core.findings import RequirementReport
from wac_azure._core.ids import VmTarget

# ============================================================================ results


class OutcomeStatus(enum.Enum):
    """How one VM of a fleet run ended."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    SKIPPED = "skipped"
    FAILED = "failed"


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


@attrs.frozen
class VmOutcome:
    """The result for one VM of a fleet run.

    ``status`` is enabled/disabled (the VM is in the asked state; ``changed``
    says whether this run wrote anything for it), skipped (``report`` is the
    failed :class:`~wac_azure.RequirementReport`; nothing was written) or
    failed (``error`` is the exception, ``message`` its text). ``rules`` are
    the ids of security rules this run wrote for the VM (a rule on a shared
    NSG is listed for every VM it serves, but written once).
    """

    target: VmTarget
    status: OutcomeStatus
    changed: bool = False
    port: int | None = None
    url: str | None = None
    rules: tuple[str, ...] = ()
    message: str = ""
    report: RequirementReport | None = attrs.field(default=None, eq=False, repr=False)
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    elapsed: float = attrs.field(default=0.0, eq=False)

    @property
    def ok(self) -> bool:
        """True when the VM ended in the asked state."""
        return self.status in (OutcomeStatus.ENABLED, OutcomeStatus.DISABLED)

    @property
    def reason(self) -> str:
        """A one-line reason for a skip or failure (``""`` otherwise)."""
        if self.ok:
            return ""
        first = (self.message or "").strip().splitlines()
        return first[0] if first else self.status.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        out: dict[str, Any] = {
            "target": str(self.target),
            "name": self.target.name,
            "status": self.status.value,
            "changed": self.changed,
            "port": self.port,
            "url": self.url,
            "rules": list(self.rules),
            "message": self.message,
            "elapsed": round(self.elapsed, 3),
        }
        if self.error is not None:
            out["error"] = type(self.error).__name__
        report = self.report
        if report is not None and hasattr(report, "to_dict"):
            out["report"] = report.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VmOutcome:
        """The outcome :meth:`to_dict` wrote (JSON-safe; ``error`` and ``report`` are not
        rebuilt: ``message`` and ``reason`` carry the cause). Raises
        :class:`~wac_azure.InvalidInputError` naming a missing or bad field."""
        try:
            return cls(
                target=VmTarget.parse(str(data["target"])),
                status=OutcomeStatus(data["status"]),
                changed=bool(data.get("changed", False)),
                port=None if data.get("port") is None else int(data["port"]),
                url=data.get("url"),
                rules=tuple(str(r) for r in data.get("rules") or ()),
                message=str(data.get("message") or ""),
                elapsed=float(data.get("elapsed") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"not a VmOutcome.to_dict() mapping ({type(exc).__name__}: {exc}); it needs "
                "'target' (a VM resource id) and 'status' (enabled, disabled, skipped, failed)"
            ) from None

    def __str__(self) -> str:
        bits = [f"{self.target.name}: {self.status.value}"]
        if self.ok:
            bits.append("(changed)" if self.changed else "(unchanged)")
            if self.url:
                bits.append(self.url)
        elif self.reason:
            bits.append(f"- {self.reason}")
        return " ".join(bits)


@attrs.frozen
class FleetResult:
    """What a fleet run did: one :class:`VmOutcome` per VM, counts and the ARM cost.

    ``outcomes`` keep the order of the targets given. ``reads``, ``writes``
    and ``deletes`` are the ARM requests the session sent during the run
    (retries and polls included) and ``throttled`` the 429s it saw; they
    count every request of the session in that time.
    """

    operation: str
    outcomes: tuple[VmOutcome, ...]
    elapsed: float = 0.0
    subscriptions: int = 0
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    throttled: int = 0

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Any:
        return iter(self.outcomes)

    def _with(self, status: OutcomeStatus) -> list[VmOutcome]:
        return [o for o in self.outcomes if o.status is status]

    @property
    def enabled(self) -> list[VmOutcome]:
        """VMs that have Windows Admin Center now."""
        return self._with(OutcomeStatus.ENABLED)

    @property
    def disabled(self) -> list[VmOutcome]:
        """VMs that no longer have it."""
        return self._with(OutcomeStatus.DISABLED)

    @property
    def skipped(self) -> list[VmOutcome]:
        """VMs left alone because they do not meet the requirements."""
        return self._with(OutcomeStatus.SKIPPED)

    @property
    def failed(self) -> list[VmOutcome]:
        """VMs where something went wrong."""
        return self._with(OutcomeStatus.FAILED)

    @property
    def counts(self) -> dict[str, int]:
        """``{"enabled"|"disabled": n, "skipped": n, "failed": n, "changed": n, "total": n}``."""
        done = OutcomeStatus.ENABLED if self.operation == "enable" else OutcomeStatus.DISABLED
        out = {done.value: 0, "skipped": 0, "failed": 0}
        for o in self.outcomes:
            out[o.status.value] = out.get(o.status.value, 0) + 1
        out["changed"] = sum(1 for o in self.outcomes if o.changed)
        out["total"] = len(self.outcomes)
        return out

    @property
    def ok(self) -> bool:
        """True when no VM failed (skipped VMs do not count as failures)."""
        return not any(o.status is OutcomeStatus.FAILED for o in self.outcomes)

    def reasons(self) -> dict[str, list[VmOutcome]]:
        """Skipped and failed VMs grouped by their one-line reason, most frequent first."""
        groups: dict[str, list[VmOutcome]] = collections.defaultdict(list)
        for o in self.outcomes:
            if not o.ok:
                groups[f"{o.status.value}: {_generic_reason(o)}"].append(o)
        return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def per_vm(self, kind: str = "reads") -> float:
        """ARM requests of ``kind`` (reads/writes/deletes) per VM in this run."""
        n = len(self.outcomes) or 1
        return float(getattr(self, kind)) / n

    def summary(self) -> str:
        """One line: counts, time and cost."""
        c = self.counts
        done = "enabled" if self.operation == "enable" else "disabled"
        return (
            f"{self.operation} on {c['total']} VMs: {c[done]} {done} ({c['changed']} changed), "
            f"{c['skipped']} skipped, {c['failed']} failed in {self.elapsed:.1f}s; "
            f"ARM reads {self.reads}, writes {self.writes}, deletes {self.deletes}, "
            f"429s {self.throttled}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "operation": self.operation,
            "counts": self.counts,
            "elapsed": round(self.elapsed, 3),
            "subscriptions": self.subscriptions,
            "requests": {
                "reads": self.reads,
                "writes": self.writes,
                "deletes": self.deletes,
                "throttled": self.throttled,
            },
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FleetResult:
        """The result :meth:`to_dict` wrote: the merge format of sharded runs (a worker
        process, a Ray task or a Kubernetes Job per shard sends its ``to_dict()`` back;
        :meth:`merge` combines them). Errors and reports come back as their messages."""
        if not isinstance(data, dict) or "operation" not in data:
            raise InvalidInputError(
                "not a FleetResult.to_dict() mapping: it needs 'operation' and 'outcomes'"
            )
        requests = data.get("requests") or {}
        return cls(
            operation=str(data["operation"]),
            outcomes=tuple(VmOutcome.from_dict(o) for o in data.get("outcomes") or ()),
            elapsed=float(data.get("elapsed") or 0.0),
            subscriptions=int(data.get("subscriptions") or 0),
            reads=int(requests.get("reads") or 0),
            writes=int(requests.get("writes") or 0),
            deletes=int(requests.get("deletes") or 0),
            throttled=int(requests.get("throttled") or 0),
        )

    @classmethod
    def merge(
        cls,
        results: Sequence[FleetResult],
        *,
        order: Sequence[VmTarget] | None = None,
        elapsed: float | None = None,
    ) -> FleetResult:
        """One result from the results of shards of one run (disjoint sets of VMs).

        Outcomes follow ``order`` (the targets as the run was given them; by default
        the shards' order), request counts and subscriptions add up, ``elapsed`` is the
        longest shard's unless given. Raises :class:`~wac_azure.InvalidInputError` when
        the shards ran different operations or share a VM.
        """
        if not results:
            raise InvalidInputError("FleetResult.merge needs at least one result")
        operations = {r.operation for r in results}
        if len(operations) != 1:
            raise InvalidInputError(
                f"cannot merge results of different operations: {sorted(operations)}"
            )
        by_target: dict[str, VmOutcome] = {}
        for r in results:
            for o in r.outcomes:
                key = o.target.resource_id.lower()
                if key in by_target:
                    raise InvalidInputError(
                        f"{o.target.name} is in two shards' results; shards must be disjoint"
                    )
                by_target[key] = o
        if order is not None:
            ordered = [
                by_target.pop(t.resource_id.lower())
                for t in order
                if t.resource_id.lower() in by_target
            ]
            ordered.extend(by_target.values())
        else:
            ordered = list(by_target.values())
        return cls(
            operation=operations.pop(),
            outcomes=tuple(ordered),
            elapsed=max(r.elapsed for r in results) if elapsed is None else elapsed,
            subscriptions=sum(r.subscriptions for r in results),
            reads=sum(r.reads for r in results),
            writes=sum(r.writes for r in results),
            deletes=sum(r.deletes for r in results),
            throttled=sum(r.throttled for r in results),
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        limit = 20
        for reason, group in self.reasons().items():
            names = ", ".join(o.target.name for o in group[:limit])
            more = f" and {len(group) - limit} more" if len(group) > limit else ""
            lines.append(f"  {reason} ({len(group)}): {names}{more}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        c = self.counts
        done = "enabled" if self.operation == "enable" else "disabled"
        head = (
            f"<div><strong>wac_azure {_esc(self.operation)}_many</strong>: "
            f"{c['total']} VMs &mdash; {c[done]} {done} ({c['changed']} changed), "
            f"{c['skipped']} skipped, {c['failed']} failed in {self.elapsed:.1f}s"
            f"<br><small>ARM reads {self.reads} ({self.per_vm('reads'):.2f}/VM), "
            f"writes {self.writes}, deletes {self.deletes}, 429s {self.throttled}, "
            f"subscriptions {self.subscriptions}</small></div>"
        )
        parts = [head]
        reasons = self.reasons()
        if reasons:
            rows = "".join(
                f"<tr><td>{len(group)}</td><td>{_esc(reason)}</td></tr>"
                for reason, group in reasons.items()
            )
            parts.append(
                "<details open><summary>Skipped and failed, by reason</summary>"
                f"<table><tr><th>VMs</th><th>reason</th></tr>{rows}</table></details>"
            )
        order = {OutcomeStatus.FAILED: 0, OutcomeStatus.SKIPPED: 1}
        outcomes = sorted(self.outcomes, key=lambda o: order.get(o.status, 2))
        shown = outcomes[:_HTML_ROWS]
        more = (
            f"<p>{len(outcomes) - len(shown)} more VMs not shown: see <code>to_dict()</code>.</p>"
            if len(outcomes) > len(shown)
            else ""
        )
        rows = "".join(
            "<tr>"
            f"<td>{_esc(o.target.name)}</td><td>{_esc(o.target.resource_group)}</td>"
            f"<td>{_esc(o.status.value)}</td><td>{'yes' if o.changed else 'no'}</td>"
            f"<td>{_esc(o.url or '')}</td><td>{_esc(o.reason)}</td>"
            "</tr>"
            for o in shown
        )
        parts.append(
            f"<details><summary>All {len(outcomes)} VMs (failed and skipped first)</summary>"
            "<table><tr><th>VM</th><th>resource group</th><th>status</th><th>changed</th>"
            f"<th>URL</th><th>reason</th></tr>{rows}</table>{more}</details>"
        )
        return "\n".join(parts)


def _generic_reason(o: VmOutcome) -> str:
    """The reason without the VM's own name, so that equal causes group together."""
    text = o.reason
    name = o.target.name
    for prefix in (f"{name}: ", f"{name} "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return _IPV4.sub("<ip>", text.replace(name, "<vm>"))


_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
#: Rows of the per-VM table in a notebook (the rest: ``to_dict()``).
_HTML_ROWS = 2000
