"""Spans for the VM operations, through azure-core's tracing abstraction.

azure-core traces through whatever implementation its settings name
(``azure.core.settings.settings.tracing_implementation``; ``"opentelemetry"``
once the ``tracing`` extra, ``azure-core-tracing-opentelemetry``, is installed). The
library opens its spans through the same abstraction, so they join the SDK's own
HTTP spans in the caller's traces, and cost nothing when no implementation is set:

* ``wac_azure.enable``, ``wac_azure.disable``, ``wac_azure.diagnose``: one span per
  call, current while it runs (the SDK's request spans are its children);
* ``wac_azure.enable_many``, ``wac_azure.disable_many``: one span for the run and,
  below it, one ``wac_azure.enable_vm`` / ``wac_azure.disable_vm`` span per VM, from
  the VM's first progress event to its last.

Every VM span carries ``wac_azure.operation``, ``wac_azure.target`` (the VM's resource
ID), ``wac_azure.vm``, ``wac_azure.stage`` (the last stage reached: a
:class:`~wac_azure.ProgressStage` value), ``wac_azure.stages`` (every stage, in order)
and ``wac_azure.outcome`` (``done``, ``failed``, ``skipped``, ``dry_run``,
``cancelled``), and ``error.type`` (the exception's class) when it failed. Nothing
else: no token, no extension settings, no error message (a span's exception event,
recorded by the tracing implementation, has the message, which the library keeps free
of secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from azure.core.settings import settings
from azure.core.tracing import SpanKind

from wac_azure._core.ids import VmTarget
from wac_azure._core.progress import ProgressCallback, ProgressEvent, ProgressStage, guarded

PREFIX = "wac_azure"
P = ParamSpec("P")
R = TypeVar("R")


def _implementation() -> Any:
    return settings.tracing_implementation()


class VmSpan:
    """One VM operation's span (a stand-in that records nothing when tracing is off).

    Also a progress callback: each :class:`~wac_azure.ProgressEvent` moves its stage,
    then goes on to the caller's callback (``forward``).
    """

    def __init__(
        self,
        span: Any,
        operation: str,
        target: VmTarget,
        forward: ProgressCallback | None = None,
    ) -> None:
        self.span = span
        self.operation = operation
        self.target = target
        self.forward = forward
        self.stages: list[str] = []
        self.outcome: str | None = None
        self.finished = False
        if span is not None:
            span.add_attribute(f"{PREFIX}.operation", operation)
            span.add_attribute(f"{PREFIX}.target", target.resource_id)
            span.add_attribute(f"{PREFIX}.vm", target.name)

    def attribute(self, key: str, value: str | int | float | bool) -> None:
        """Set ``wac_azure.<key>`` (values are the library's own: never a secret)."""
        if self.span is not None:
            self.span.add_attribute(f"{PREFIX}.{key}", value)

    def stage(self, stage: ProgressStage) -> None:
        """Record that the VM reached ``stage``."""
        if not self.stages or self.stages[-1] != stage.value:
            self.stages.append(stage.value)
        if self.span is not None:
            self.span.add_attribute(f"{PREFIX}.stage", stage.value)
            self.span.add_attribute(f"{PREFIX}.stages", ",".join(self.stages))
        if stage.terminal and self.outcome is None:
            self.outcome = stage.value

    def __call__(self, event: ProgressEvent) -> None:
        self.stage(event.stage)
        if self.forward is not None:
            self.forward(event)

    def close(self, error: BaseException | None = None) -> None:
        """Set the outcome (from ``error`` when there is one) and end the span."""
        if self.finished:
            return
        self.finished = True
        if error is not None:
            cancelled = isinstance(error, asyncio.CancelledError)
            self.outcome = "cancelled" if cancelled else "failed"
            if self.span is not None:
                self.span.add_attribute("error.type", type(error).__name__)
        if self.span is not None:
            self.span.add_attribute(f"{PREFIX}.outcome", self.outcome or "unfinished")


@contextlib.contextmanager
def vm_span(
    operation: str, target: VmTarget, progress: ProgressCallback | None = None
) -> Iterator[VmSpan]:
    """A span ``wac_azure.<operation>`` around one VM operation, current while it runs.

    The :class:`VmSpan` it yields is a progress callback forwarding to ``progress``:
    pass it on as the operation's callback and the span follows its stages.
    """
    impl = _implementation()
    if impl is None:
        yield VmSpan(None, operation, target, progress)
        return
    span = impl(name=f"{PREFIX}.{operation}", kind=SpanKind.INTERNAL)
    with span:
        recorder = VmSpan(span, operation, target, progress)
        try:
            yield recorder
        except BaseException as exc:
            recorder.close(exc)
            raise
        recorder.close()


class FleetSpans:
    """The per-VM spans of a fleet run, opened and closed by the run's progress events.

    A progress callback itself (forwarding to the caller's): a VM's first event opens
    its ``wac_azure.<operation>_vm`` span (a child of the span current then, the run's),
    its terminal event closes it with the outcome.
    """

    def __init__(self, operation: str, forward: ProgressCallback | None) -> None:
        self.operation = operation
        self.forward = forward
        self.impl = _implementation()
        self.open: dict[str, VmSpan] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if self.impl is not None:
            key = event.target.resource_id.lower()
            vm = self.open.get(key)
            if vm is None:
                span = self.impl(name=f"{PREFIX}.{self.operation}_vm", kind=SpanKind.INTERNAL)
                span.start()
                vm = self.open[key] = VmSpan(span, self.operation, event.target)
            vm.stage(event.stage)
            if event.stage.terminal:
                vm.close()
                vm.span.finish()
                del self.open[key]
        if self.forward is not None:
            self.forward(event)

    def close(self, error: BaseException | None = None) -> None:
        """End the spans of VMs the run left unfinished (cancelled, or timed out)."""
        for vm in self.open.values():
            vm.close(error)
            vm.span.finish()
        self.open.clear()


@contextlib.contextmanager
def fleet_spans(
    operation: str, progress: ProgressCallback | None
) -> Iterator[tuple[Any, ProgressCallback | None]]:
    """A ``wac_azure.<operation>`` span around a fleet run (``None`` when tracing is off),
    and the progress callback that opens one span per VM below it (``progress`` itself
    when tracing is off)."""
    impl = _implementation()
    if impl is None:
        yield None, progress
        return
    spans = FleetSpans(operation.removesuffix("_many"), progress)
    span = impl(name=f"{PREFIX}.{operation}", kind=SpanKind.INTERNAL)
    span.start()
    span.add_attribute(f"{PREFIX}.operation", operation)
    try:
        # Current without azure-core's suppression of nested INTERNAL spans (entering
        # it would set that): the per-VM spans opened in the run are its children.
        with impl.change_context(span.span_instance):
            yield span, spans
    except BaseException as exc:
        spans.close(exc)
        span.add_attribute("error.type", type(exc).__name__)
        raise
    else:
        spans.close()
    finally:
        span.finish()


def _target_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> VmTarget | None:
    given = args[1] if len(args) > 1 else kwargs.get("target")
    if isinstance(given, VmTarget):
        return given
    if not isinstance(given, str):
        return None
    try:
        return VmTarget.parse(given)
    except Exception:
        return None  # the operation itself raises the typed error for it


def _describe(span: VmSpan, result: object) -> None:
    if getattr(result, "dry_run", False) is True:
        span.outcome = "dry_run"
    changed = getattr(result, "changed", None)
    if isinstance(changed, bool):
        span.attribute("changed", changed)
    problems = getattr(result, "problems", None)
    if isinstance(problems, (list, tuple)):
        span.attribute("problems", len(problems))
    if span.outcome is None:
        span.outcome = "done"


def traced_vm(
    operation: str, *, follows_progress: bool = True
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run an ``async def op(session, target, ...)`` inside :func:`vm_span`.

    With ``follows_progress`` the operation's ``progress`` keyword is replaced by the
    span (which forwards every event to the caller's callback, guarded once per run),
    so the span's stage follows the operation's progress events.
    """

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            target = _target_of(args, kwargs)
            if target is None or _implementation() is None:
                return await function(*args, **kwargs)
            caller: Any = kwargs.get("progress")
            with vm_span(operation, target, guarded(caller)) as span:
                if follows_progress:
                    kwargs["progress"] = span
                result = await function(*args, **kwargs)
                _describe(span, result)
                return result

        return run

    return decorate


def traced_fleet(
    operation: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run a fleet operation inside :func:`fleet_spans`: its ``progress`` keyword is
    replaced by the callback that opens and closes the per-VM spans."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if _implementation() is None:
                return await function(*args, **kwargs)
            caller: Any = kwargs.get("progress")
            with fleet_spans(operation, guarded(caller)) as (span, progress):
                kwargs["progress"] = progress
                result = await function(*args, **kwargs)
                outcomes = getattr(result, "outcomes", None)
                if span is not None and isinstance(outcomes, (list, tuple)):
                    span.add_attribute(f"{PREFIX}.vms", len(outcomes))
                return result

        return run

    return decorate
