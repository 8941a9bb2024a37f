"""The JSON documents ``wac-azure --json`` prints: one schema per command (docs/cli.md).

Every key is snake_case. By default a document is compact: what a script acts on
(verdicts, the rules, the URL, what failed and why). ``--verbose`` prints the
library's whole ``to_dict()`` instead, with the keys turned to snake_case too
(the raw ARM bodies inside it included).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wac_azure import (
    ApplyResult,
    BlockingConflict,
    Diagnosis,
    DisableResult,
    EnablePreview,
    EnableResult,
    ExtensionState,
    FleetPlan,
    FleetResult,
    NetworkPlan,
    PortInfo,
    RequirementReport,
    RuleChange,
    VmOutcome,
    VmPlan,
    VmTarget,
)

__all__ = [
    "discover_doc",
    "document",
    "error_doc",
    "snake",
    "snake_key",
]

_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_key(key: str) -> str:
    """``destinationAddressPrefix`` → ``destination_address_prefix``, ``nicId`` → ``nic_id``.

    Only identifier-like keys that start in lower case are changed: keys that are data
    (a resource ID, a service tag such as ``AzureCloud``) are left as they are.
    """
    if not _CAMEL.fullmatch(key) or key.islower():
        return key
    return _BOUNDARY.sub("_", key).lower()


def snake(value: Any) -> Any:
    """``value`` (JSON-like) with every mapping's keys through :func:`snake_key`."""
    if isinstance(value, dict):
        return {(snake_key(k) if isinstance(k, str) else k): snake(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [snake(v) for v in value]
    return value


# ----------------------------------------------------------------------------- pieces


def _prefixes(values: Sequence[object]) -> list[str]:
    return [str(v) for v in values]


def change_doc(change: RuleChange) -> dict[str, Any]:
    """One planned write: the rule as ``wac-azure plan`` shows it."""
    doc: dict[str, Any] = {
        "action": change.action.value,
        "nsg": change.nsg_name,
        "nsg_id": change.nsg_id,
        "rule": change.rule_name,
    }
    rule = change.rule
    if rule is not None:
        doc.update(
            priority=rule.priority,
            direction=rule.direction.value,
            access=rule.access.value,
            protocol=rule.protocol.value,
            sources=_prefixes(rule.source_prefixes),
            destinations=_prefixes(rule.destination_prefixes),
            ports=_prefixes(rule.destination_ports),
        )
    else:  # a new NSG, attached to a NIC
        doc.update(nic_id=change.nic_id, location=change.location)
    doc["before"] = change.before
    doc["purpose"] = change.purpose
    return doc


def _conflict_doc(conflict: BlockingConflict) -> dict[str, Any]:
    return {
        "code": conflict.code,
        "reason": conflict.reason,
        "vm": conflict.vm,
        "nsg": conflict.nsg_name,
        "rule": conflict.rule,
        "priority": conflict.priority,
    }


def plan_doc(plan: NetworkPlan) -> dict[str, Any]:
    """``wac-azure plan``: the writes, what blocks, warnings, each needed flow's verdicts."""
    return {
        "kind": plan.kind,
        "targets": list(plan.targets),
        "access": snake(plan.access.to_dict()),
        "port": plan.port,
        "summary": plan.summary(),
        "is_noop": plan.is_noop,
        "is_blocked": plan.is_blocked,
        "changes": [change_doc(c) for c in plan.changes],
        "blocking": [_conflict_doc(b) for b in plan.blocking],
        "warnings": list(plan.warnings),
        "flows": [
            {
                "vm": c.vm.rsplit("/", 1)[-1],
                "purpose": c.purpose,
                "before": c.before.access.value,
                "after": c.after.access.value,
            }
            for c in plan.checks
        ],
    }


def report_doc(report: RequirementReport) -> dict[str, Any]:
    """``wac-azure check``: the verdict and every check (code, status, message, remedy)."""
    return {
        "target": report.target.resource_id,
        "passed": report.passed,
        "status": report.status.value,
        "summary": report.summary(),
        "counts": report.counts(),
        "checks": [
            {
                "code": c.code,
                "status": c.status.value,
                "message": c.message,
                "remedy": c.remedy,
            }
            for c in report.checks
        ],
    }


def _report_brief(report: RequirementReport | None) -> dict[str, Any] | None:
    """A report inside another document: the verdict and the checks that did not pass."""
    if report is None:
        return None
    return {
        "passed": report.passed,
        "status": report.status.value,
        "summary": report.summary(),
        "not_passed": [
            {"code": c.code, "status": c.status.value, "message": c.message, "remedy": c.remedy}
            for c in report.checks
            if c.status.value != "pass"
        ],
    }


def _rule_ref(change: RuleChange) -> str:
    return f"{change.nsg_name}/{change.rule_name}"


def apply_doc(applied: ApplyResult | None) -> dict[str, Any] | None:
    """What was written to the NSGs: ``<nsg>/<rule>`` per write."""
    if applied is None:
        return None
    return {
        "changed": applied.changed,
        "replanned": applied.replanned,
        "created": [_rule_ref(c) for c in applied.created],
        "updated": [_rule_ref(c) for c in applied.updated],
        "deleted": [_rule_ref(c) for c in applied.deleted],
        "skipped": [{"rule": _rule_ref(c), "reason": r} for c, r in applied.skipped],
    }


def extension_doc(state: ExtensionState | None) -> dict[str, Any] | None:
    """``wac-azure status``: the extension's state, its messages (no salt, no statuses)."""
    if state is None:
        return None
    return {
        "target": str(state.target),
        "installed": state.installed,
        "provisioning_state": state.provisioning_state,
        "handler_version": state.handler_version,
        "port": state.port,
        "changed": state.changed,
        "messages": list(dict.fromkeys(state.messages)),
    }


def port_doc(info: PortInfo | None) -> dict[str, Any] | None:
    """``wac-azure port``."""
    return None if info is None else snake(info.to_dict())


def enable_doc(result: EnableResult | EnablePreview) -> dict[str, Any]:
    """``wac-azure enable`` (``--dry-run``: an :class:`EnablePreview`, with ``port`` and
    ``applied`` null)."""
    real = result if isinstance(result, EnableResult) else None
    return {
        "target": str(result.target),
        "dry_run": result.dry_run,
        "changed": result.changed,
        "url": result.url,
        "port": port_doc(real.port) if real else None,
        "report": _report_brief(result.report),
        "plan": plan_doc(result.plan),
        "applied": apply_doc(real.apply) if real else None,
        "extension": extension_doc(result.extension),
    }


def disable_doc(result: DisableResult) -> dict[str, Any]:
    """``wac-azure disable``."""
    return {
        "target": str(result.target),
        "changed": result.changed,
        "extension_removed": result.extension_removed,
        "rules": apply_doc(result.rules),
    }


def diagnosis_doc(found: Diagnosis) -> dict[str, Any]:
    """``wac-azure diagnose``: the verdict and each finding (without its raw details)."""
    doc = snake(found.to_dict())
    for finding in doc.get("findings", []):
        finding.pop("details", None)
    return dict(doc)


def _outcome_doc(outcome: VmOutcome) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "target": str(outcome.target),
        "name": outcome.target.name,
        "status": outcome.status.value,
        "changed": outcome.changed,
        "port": outcome.port,
        "url": outcome.url,
        "rules": list(outcome.rules),
        "message": outcome.message,
        "error": type(outcome.error).__name__ if outcome.error is not None else None,
    }
    if isinstance(outcome, VmPlan):
        doc["changes"] = [change_doc(c) for c in outcome.changes]
        body = outcome.extension
        settings = (body or {}).get("properties", {}).get("settings")
        doc["extension"] = None if body is None else {"settings": snake(settings or {})}
    return doc


def fleet_doc(result: FleetResult) -> dict[str, Any]:
    """``wac-azure enable-many`` / ``disable-many`` (``--dry-run``: what would be written)."""
    doc: dict[str, Any] = {
        "operation": result.operation,
        "dry_run": isinstance(result, FleetPlan),
        "ok": result.ok,
        "summary": result.summary(),
        "counts": result.counts,
        "elapsed": round(result.elapsed, 3),
        "requests": {
            "reads": result.reads,
            "writes": result.writes,
            "deletes": result.deletes,
            "throttled": result.throttled,
        },
        "outcomes": [_outcome_doc(o) for o in result.outcomes],
    }
    if isinstance(result, FleetPlan):
        doc["changes"] = [change_doc(c) for c in result.changes]
    return doc


def discover_doc(
    targets: Sequence[VmTarget], subscription: str, resource_group: str | None
) -> dict[str, Any]:
    """``wac-azure discover``."""
    return {
        "subscription": subscription,
        "resource_group": resource_group,
        "count": len(targets),
        "vms": [
            {"name": t.name, "resource_group": t.resource_group, "target": t.resource_id}
            for t in targets
        ],
    }


_COMPACT: tuple[tuple[type, Any], ...] = (
    (RequirementReport, report_doc),
    (NetworkPlan, plan_doc),
    (EnableResult, enable_doc),
    (EnablePreview, enable_doc),
    (DisableResult, disable_doc),
    (ExtensionState, extension_doc),
    (PortInfo, port_doc),
    (Diagnosis, diagnosis_doc),
    (FleetResult, fleet_doc),
)


def document(value: Any, *, verbose: bool) -> Any:
    """The JSON document for a command's result (a plain dict passes through snake_case)."""
    if verbose and hasattr(value, "to_dict"):
        return snake(value.to_dict())
    for kind, build in _COMPACT:
        if isinstance(value, kind):
            return build(value)
    if hasattr(value, "to_dict"):
        return snake(value.to_dict())
    return snake(value)


def error_doc(exc: BaseException, *, verbose: bool = False) -> dict[str, Any]:
    """``{"error": {"type", "message", ...}}``: what failed, and what the error carries
    (``code``, ``status``, ``hints``, ``substatuses``, ``log_locations``, the ``report``
    or ``plan`` that stopped it)."""
    doc: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for attr in ("code", "status", "hints", "substatuses", "log_locations"):
        value = getattr(exc, attr, None)
        if value and isinstance(value, (str, int, list, tuple)):
            doc[attr] = list(value) if isinstance(value, tuple) else value
    report = getattr(exc, "report", None)
    if isinstance(report, RequirementReport):
        doc["report"] = snake(report.to_dict()) if verbose else _report_brief(report)
    plan = getattr(exc, "plan", None)
    if isinstance(plan, NetworkPlan):
        doc["plan"] = snake(plan.to_dict()) if verbose else plan_doc(plan)
    return {"error": doc}
