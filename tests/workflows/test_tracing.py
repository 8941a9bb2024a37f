"""Spans through azure-core's tracing abstraction (the ``tracing`` extra): one span per VM
operation (enable, disable, diagnose, each VM of a fleet run) with target, stage and
outcome attributes, the SDK's request spans below, and no secret in any of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("azure.core.tracing.ext.opentelemetry_span")

from azure.core.settings import settings
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import wac_azure
from wac_azure import AzureSession, RequirementsNotMetError
from wac_azure.testing import ArmEmulator

from tests.workflows._worlds import locked_vm

_EXPORTER = InMemorySpanExporter()


def _provider() -> None:
    # OpenTelemetry takes one global provider per process: set it once, keep it.
    current = trace.get_tracer_provider()
    if getattr(current, "_wac_azure_test", False):
        return
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    provider._wac_azure_test = True  # type: ignore[attr-defined]
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on (azure-core's OpenTelemetry plugin) for one test, spans kept in memory."""
    _provider()
    if not getattr(trace.get_tracer_provider(), "_wac_azure_test", False):
        pytest.skip("another OpenTelemetry provider is installed in this process")
    _EXPORTER.clear()
    settings.tracing_implementation.set_value("opentelemetry")
    try:
        yield _EXPORTER
    finally:
        settings.tracing_implementation.unset_value()
        _EXPORTER.clear()


def _ours(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _no_secrets(emu: ArmEmulator, exporter: InMemorySpanExporter) -> None:
    text = json.dumps(
        [
            {
                "name": s.name,
                "attributes": _attrs(s),
                "events": [dict(e.attributes or {}) for e in s.events],
            }
            for s in exporter.get_finished_spans()
        ],
        default=str,
    )
    assert emu.token not in text
    for word in ("protectedSettings", "Bearer", "salt", "authorization"):
        assert word not in text, word


async def test_enable_is_one_span_with_target_stage_and_outcome(
    emu: ArmEmulator, session: AzureSession, spans: InMemorySpanExporter
) -> None:
    target = locked_vm(emu, "vm1")
    events: list[wac_azure.ProgressEvent] = []
    await wac_azure.enable(session, target, progress=events.append)
    [span] = _ours(spans, "wac_azure.enable")
    attrs = _attrs(span)
    assert attrs["wac_azure.operation"] == "enable"
    assert attrs["wac_azure.target"] == target.resource_id
    assert attrs["wac_azure.vm"] == "vm1"
    assert attrs["wac_azure.stage"] == "done"
    assert attrs["wac_azure.outcome"] == "done"
    assert attrs["wac_azure.changed"] is True
    stages = str(attrs["wac_azure.stages"]).split(",")
    assert stages[0] == "reading"
    assert "rules applied" in stages
    assert stages[-1] == "done"
    assert [e.stage.value for e in events][-1] == "done"  # the caller's callback still runs
    # the SDK's request spans are its children
    assert span.context is not None
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == span.context.span_id
    ]
    assert children, [s.name for s in spans.get_finished_spans()]
    _no_secrets(emu, spans)


async def test_a_dry_run_and_a_refused_vm(
    emu: ArmEmulator, session: AzureSession, spans: InMemorySpanExporter
) -> None:
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target, dry_run=True)
    [span] = _ours(spans, "wac_azure.enable")
    assert _attrs(span)["wac_azure.outcome"] == "dry_run"
    spans.clear()
    old = emu.add_windows_vm("old", os="2012-R2", size="Standard_B1s")
    with pytest.raises(RequirementsNotMetError):
        await wac_azure.enable(session, old)
    [span] = _ours(spans, "wac_azure.enable")
    attrs = _attrs(span)
    assert attrs["wac_azure.outcome"] == "failed"
    assert attrs["wac_azure.stage"] == "failed"
    assert str(attrs["error.type"]).endswith("RequirementsNotMetError")
    assert attrs["wac_azure.target"] == old.resource_id
    _no_secrets(emu, spans)


async def test_disable_and_diagnose_have_their_spans(
    emu: ArmEmulator, session: AzureSession, spans: InMemorySpanExporter
) -> None:
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target)
    await wac_azure.diagnose(session, target)
    await wac_azure.disable(session, target)
    [diagnose] = _ours(spans, "wac_azure.diagnose")
    assert _attrs(diagnose)["wac_azure.outcome"] == "done"
    assert _attrs(diagnose)["wac_azure.problems"] == 0
    assert _attrs(diagnose)["wac_azure.target"] == target.resource_id
    [disable] = _ours(spans, "wac_azure.disable")
    attrs = _attrs(disable)
    assert attrs["wac_azure.stage"] == "done"
    assert attrs["wac_azure.outcome"] == "done"
    assert attrs["wac_azure.changed"] is True
    _no_secrets(emu, spans)


async def test_a_fleet_run_has_one_span_per_vm_below_its_own(
    emu: ArmEmulator, session: AzureSession, spans: InMemorySpanExporter
) -> None:
    targets = [locked_vm(emu, f"vm{i}") for i in range(3)]
    old = emu.add_windows_vm("old", os="2012-R2", size="Standard_B1s")
    result = await wac_azure.enable_many(session, [*targets, old], poll_interval=0.01)
    assert len(result.outcomes) == 4
    [run] = _ours(spans, "wac_azure.enable_many")
    assert _attrs(run)["wac_azure.vms"] == 4
    per_vm = _ours(spans, "wac_azure.enable_vm")
    assert len(per_vm) == 4
    assert run.context is not None
    for span in per_vm:
        assert span.parent is not None
        assert span.parent.span_id == run.context.span_id
    by_vm = {_attrs(s)["wac_azure.vm"]: _attrs(s) for s in per_vm}
    for t in targets:
        assert by_vm[t.name]["wac_azure.outcome"] == "done"
        assert by_vm[t.name]["wac_azure.target"] == t.resource_id
        assert "planned" in str(by_vm[t.name]["wac_azure.stages"])
    assert by_vm["old"]["wac_azure.outcome"] == "skipped"
    spans.clear()
    await wac_azure.disable_many(session, targets, poll_interval=0.01)
    assert len(_ours(spans, "wac_azure.disable_many")) == 1
    assert {_attrs(s)["wac_azure.outcome"] for s in _ours(spans, "wac_azure.disable_vm")} == {
        "done"
    }
    _no_secrets(emu, spans)


async def test_no_span_when_tracing_is_off(emu: ArmEmulator, session: AzureSession) -> None:
    _provider()
    _EXPORTER.clear()
    assert settings.tracing_implementation() is None
    target = emu.add_windows_vm("vm1")
    await wac_azure.enable(session, target)
    assert [s.name for s in _EXPORTER.get_finished_spans() if s.name.startswith("wac_")] == []
