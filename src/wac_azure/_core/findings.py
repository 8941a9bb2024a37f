"""What checks find: one status vocabulary for requirement reports and diagnoses.

:class:`Status` is the outcome of any check, requirement or troubleshooting
step: ``PASS``, ``FAIL``, ``WARN`` or ``UNKNOWN`` (never a pass). Its public
names are :class:`~wac_azure.CheckStatus` and :class:`~wac_azure.FindingStatus`
(the same enum: ``FindingStatus.OK`` *is* ``CheckStatus.PASS`` and
``FindingStatus.PROBLEM`` *is* ``CheckStatus.FAIL``).

A requirement check answers a :class:`Check` and a VM's checks make a
:class:`RequirementReport`; a troubleshooting step answers a :class:`Finding`
(with its step number and structured details) and they make a
:class:`Diagnosis`. Both reports render the status the way their readers know
it: requirement reports say ``pass``/``fail``, diagnoses say ``ok``/``problem``
(:attr:`Status.finding_word`), as they always have.
"""

from __future__ import annotations

import datetime as _dt
import enum
import html
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wac_azure._core.errors import InvalidInputError
from wac_azure._core.facts import VmFacts, str_tuple
from wac_azure._core.ids import VmTarget


class Status(str, enum.Enum):
    """The outcome of one check or finding. ``UNKNOWN`` never counts as a pass.

    ``OK`` and ``PROBLEM`` are the diagnosis words for ``PASS`` and ``FAIL``
    (aliases: the same members), and ``Status("ok")`` / ``Status("problem")``
    find them too.
    """

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    UNKNOWN = "unknown"
    OK = "pass"
    PROBLEM = "fail"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> Status | None:
        return {"ok": cls.PASS, "problem": cls.FAIL}.get(str(value).lower())

    @property
    def finding_word(self) -> str:
        """The word a diagnosis uses: ``ok``, ``problem``, ``warn`` or ``unknown``."""
        return _FINDING_WORDS[self]


_FINDING_WORDS = {
    Status.PASS: "ok",
    Status.FAIL: "problem",
    Status.WARN: "warn",
    Status.UNKNOWN: "unknown",
}

#: The public name of :class:`Status` in requirement reports.
CheckStatus = Status
#: The public name of :class:`Status` in diagnoses.
FindingStatus = Status


#: Every check code, in report order, with its short title: filled by
#: :func:`~wac_azure._core.checks.register_check` (one entry per registered check).
CHECK_CODES: dict[str, str] = {}


@attrs.frozen
class Check:
    """One requirement check: a stable ``code``, a ``status``, a one-line
    ``message`` with the evidence, and a ``remedy`` (``None`` when nothing is
    to be done)."""

    code: str
    status: CheckStatus
    message: str
    remedy: str | None = None
    evidence: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    @property
    def title(self) -> str:
        """A short human title for the code."""
        return CHECK_CODES.get(self.code, self.code)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "code": self.code,
            "title": self.title,
            "status": self.status.value,
            "message": self.message,
            "remedy": self.remedy,
            "evidence": list(self.evidence),
        }


_ORDER = {
    CheckStatus.FAIL: 0,
    CheckStatus.UNKNOWN: 1,
    CheckStatus.WARN: 2,
    CheckStatus.PASS: 3,
}


@attrs.frozen
class RequirementReport:
    """Every check of one VM.

    ``passed`` is true only when no check failed *and* none is unknown
    (unknown never counts as a pass); ``failed`` is true when any check
    failed. Warnings never block.
    """

    target: VmTarget
    checks: tuple[Check, ...]
    evaluated_at: _dt.datetime
    facts: VmFacts | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def passed(self) -> bool:
        """No check failed and none is unknown."""
        return all(c.status in (CheckStatus.PASS, CheckStatus.WARN) for c in self.checks)

    @property
    def failed(self) -> bool:
        """At least one check failed."""
        return any(c.status is CheckStatus.FAIL for c in self.checks)

    @property
    def status(self) -> CheckStatus:
        """The worst status: fail, then unknown, then warn, then pass."""
        return min(
            (c.status for c in self.checks), key=_ORDER.__getitem__, default=CheckStatus.PASS
        )

    def _with(self, status: CheckStatus) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is status)

    @property
    def failures(self) -> tuple[Check, ...]:
        return self._with(CheckStatus.FAIL)

    @property
    def warnings(self) -> tuple[Check, ...]:
        return self._with(CheckStatus.WARN)

    @property
    def unknowns(self) -> tuple[Check, ...]:
        return self._with(CheckStatus.UNKNOWN)

    def check(self, code: str) -> Check:
        """The check with this code; :class:`~wac_azure.InvalidInputError` for an unknown code."""
        for c in self.checks:
            if c.code == code:
                return c
        raise InvalidInputError(
            f"no check {code!r} in this report; known codes: "
            + ", ".join(c.code for c in self.checks)
        )

    def __contains__(self, code: object) -> bool:
        return any(c.code == code for c in self.checks)

    def counts(self) -> dict[str, int]:
        """How many checks have each status."""
        return {s.value: len(self._with(s)) for s in CheckStatus}

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        n = self.counts()
        verdict = "passed" if self.passed else ("FAILED" if self.failed else "not confirmed")
        return (
            f"{self.target.name}: requirements {verdict} "
            f"({n['fail']} fail, {n['unknown']} unknown, {n['warn']} warn, {n['pass']} pass)"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "target": self.target.resource_id,
            "passed": self.passed,
            "failed": self.failed,
            "status": self.status.value,
            "counts": self.counts(),
            "evaluatedAt": self.evaluated_at.isoformat(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def __str__(self) -> str:
        width = max((len(c.code) for c in self.checks), default=5)
        lines = [self.summary(), f"{'STATUS':<8} {'CHECK':<{width}}  MESSAGE"]
        for c in self.checks:
            lines.append(f"{c.status.value:<8} {c.code:<{width}}  {c.message}")
            if c.remedy and c.status is not CheckStatus.PASS:
                lines.append(f"{'':<8} {'':<{width}}  remedy: {c.remedy}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape

        def rows(checks: Iterable[Check]) -> str:
            return "".join(
                f"<tr><td><strong>{e(c.status.value)}</strong></td><td><code>{e(c.code)}</code>"
                f"</td><td>{e(c.message)}</td>"
                f"<td>{e(c.remedy or '') if c.status is not CheckStatus.PASS else ''}</td></tr>"
                for c in checks
            )

        head = "<tr><th>status</th><th>check</th><th>message</th><th>remedy</th></tr>"
        problems = [c for c in self.checks if c.status is not CheckStatus.PASS]
        problems.sort(key=lambda c: _ORDER[c.status])
        out = [f"<div><p><strong>{e(self.summary())}</strong></p>"]
        if problems:
            out.append(f"<table>{head}{rows(problems)}</table>")
        out.append(
            f"<details><summary>all {len(self.checks)} checks</summary>"
            f"<table>{head}{rows(self.checks)}</table></details></div>"
        )
        return "".join(out)


def _jsonable(value: object) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@attrs.frozen
class Finding:
    """One check of a diagnosis.

    ``step`` is the troubleshooting step (1-7, see :func:`diagnose`), ``code``
    the check's stable name (``"inbound"``, ``"guest.service"``...),
    ``status`` a :class:`FindingStatus`, ``title`` one line saying what was
    found, ``evidence`` what it was concluded from, ``remedy`` what to do
    (``None`` when nothing needs doing) and ``details`` structured data
    (JSON-safe) for programs.
    """

    step: int
    code: str
    status: FindingStatus
    title: str
    evidence: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    remedy: str | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict, eq=False, converter=_jsonable)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "step": self.step,
            "code": self.code,
            "status": self.status.finding_word,
            "title": self.title,
            "evidence": list(self.evidence),
            "remedy": self.remedy,
            "details": dict(self.details),
        }

    def __str__(self) -> str:
        lines = [f"[{self.status.finding_word}] {self.step}. {self.code}: {self.title}"]
        lines += [f"    - {e}" for e in self.evidence]
        if self.remedy:
            lines.append(f"    remedy: {self.remedy}")
        return "\n".join(lines)


@attrs.frozen
class Diagnosis:
    """The findings of :func:`diagnose` for one VM, in step order.

    ``port`` is the port checked (the gateway's own, from appsettings.json or
    ``SmePort``, then the extension settings, then 6516), ``address`` the IP
    address the checks and the probe used (``None`` when unknown),
    ``run_commands`` how many Run Commands were sent (0 or 1).
    """

    target: VmTarget
    via: str
    client_ip: str | None
    port: int
    address: str | None
    findings: tuple[Finding, ...]
    diagnosed_at: _dt.datetime
    run_commands: int = 0

    @property
    def problems(self) -> tuple[Finding, ...]:
        """The findings whose status is ``problem``."""
        return self._with(FindingStatus.PROBLEM)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings whose status is ``warn``."""
        return self._with(FindingStatus.WARN)

    @property
    def unknowns(self) -> tuple[Finding, ...]:
        """The findings that could not be decided."""
        return self._with(FindingStatus.UNKNOWN)

    @property
    def ok(self) -> bool:
        """True when no finding is a problem (warnings and unknowns allowed)."""
        return not self.problems

    def _with(self, status: FindingStatus) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is status)

    def finding(self, code: str) -> Finding:
        """The finding called ``code``; :class:`InvalidInputError` naming the known codes."""
        for f in self.findings:
            if f.code == code:
                return f
        known = ", ".join(f.code for f in self.findings)
        raise InvalidInputError(f"this diagnosis has no finding {code!r}; it has: {known}")

    def counts(self) -> dict[str, int]:
        """How many findings have each status."""
        return {s.finding_word: len(self._with(s)) for s in FindingStatus}

    def summary(self) -> str:
        """One line: the VM, the port and the counts."""
        c = self.counts()
        verdict = (
            f"{c['problem']} problem{'s' if c['problem'] != 1 else ''}"
            if c["problem"]
            else "no problems found"
        )
        extra = []
        if c["warn"]:
            extra.append(f"{c['warn']} warning{'s' if c['warn'] != 1 else ''}")
        if c["unknown"]:
            extra.append(f"{c['unknown']} unknown")
        where = f"{self.address}:{self.port}" if self.address else f"port {self.port}"
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"Diagnosis of {self.target.name} via {self.via} ({where}): {verdict}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "target": self.target.resource_id,
            "via": self.via,
            "client_ip": self.client_ip,
            "port": self.port,
            "address": self.address,
            "diagnosed_at": self.diagnosed_at.isoformat(),
            "run_commands": self.run_commands,
            "ok": self.ok,
            "counts": self.counts(),
            "problems": [f.code for f in self.problems],
            "findings": [f.to_dict() for f in self.findings],
        }

    def __str__(self) -> str:
        order = {
            FindingStatus.PROBLEM: 0,
            FindingStatus.WARN: 1,
            FindingStatus.UNKNOWN: 2,
            FindingStatus.OK: 3,
        }
        ranked = sorted(self.findings, key=lambda f: (order[f.status], f.step))
        return "\n".join([self.summary(), *(str(f) for f in ranked)])

    def _repr_html_(self) -> str:
        e = html.escape
        marks = {
            FindingStatus.OK: "✔ ok",
            FindingStatus.PROBLEM: "✘ problem",
            FindingStatus.WARN: "⚠ warn",
            FindingStatus.UNKNOWN: "? unknown",
        }
        rows = []
        for f in self.findings:
            body = "".join(f"<li>{e(x)}</li>" for x in f.evidence)
            remedy = f"<p><strong>Remedy:</strong> {e(f.remedy)}</p>" if f.remedy else ""
            open_attr = " open" if f.status is FindingStatus.PROBLEM else ""
            rows.append(
                f"<tr><td>{f.step}</td><td><strong>{e(marks[f.status])}</strong></td>"
                f"<td><code>{e(f.code)}</code></td><td><details{open_attr}>"
                f"<summary>{e(f.title)}</summary><ul>{body}</ul>{remedy}</details></td></tr>"
            )
        return (
            f'<div class="wac-azure-diagnosis"><p><strong>{e(self.summary())}</strong></p>'
            "<table><thead><tr><th>step</th><th>status</th><th>check</th><th>finding</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
