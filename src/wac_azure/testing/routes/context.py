"""What a route handler may use of the emulator: the :class:`RouteContext` protocol.

The emulator passes itself to every handler; handlers see it only through this
protocol (``ArmEmulator`` implements it), so the route modules never import the
emulator. Lookups that need nothing but the store (``Store.require``,
``backend.netpath``, ``backend.builders.vm_memory_mib``) are called directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from wac_azure.testing.backend.operations import Operation, OperationTable, Outcome
from wac_azure.testing.backend.runtime import VmRuntime
from wac_azure.testing.backend.state import Store
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse

__all__ = ["RouteContext"]


class RouteContext(Protocol):
    """The emulator as its routes see it: state, settings, VM runtimes and operations."""

    @property
    def store(self) -> Store:
        """The resource store."""
        ...

    @property
    def ops(self) -> OperationTable:
        """Every operation started so far."""
        ...

    @property
    def page_size(self) -> int:
        """Items per page of list answers."""
        ...

    @property
    def generic_page_size(self) -> int:
        """Items per page of ARM's generic resources list."""
        ...

    @property
    def extension_seconds(self) -> float | None:
        """How long extension installs and removals take (emulated seconds), if timed."""
        ...

    def extension_duration(self) -> float | None:
        """How long the next extension operation takes (``extension_seconds``, jittered)."""
        ...

    def nsg_conflict(self, resource_id: str) -> str:
        """The answer to an overlapping NSG write: ``"409"``, ``"429"`` or ``"supersede"``."""
        ...

    def vm_conflict(self, resource_id: str) -> str:
        """How to answer a VM write overlapping a running one: ``"409"`` or ``"preempt"``."""
        ...

    def runtime(self, vm_id: str) -> VmRuntime:
        """The VM's runtime record (made on first use)."""
        ...

    def touch(self, path: str) -> None:
        """Count a GET of ``path`` as a poll of the operations on resources under it."""
        ...

    def busy(self, resource_id: str) -> Operation | None:
        """A pending operation on ``resource_id`` or anything under it."""
        ...

    def restorer(self, resource_id: str, before: dict[str, Any] | None) -> Callable[[], None]:
        """An ``on_abort`` callback that puts ``before`` back (or deletes what was new)."""
        ...

    def start_operation(
        self,
        req: EmuRequest,
        *,
        namespace: str,
        location: str,
        resource_id: str,
        kind: str,
        on_success: Callable[[], Outcome] | None = None,
        on_abort: Callable[[], None] | None = None,
        duration: float | None = None,
        on_fail: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Operation, dict[str, str]]:
        """Start a long-running operation; returns it and the headers announcing it."""
        ...

    def operation_status(self, req: EmuRequest, op_id: str) -> EmuResponse:
        """The answer to a poll of an operation's ``Azure-AsyncOperation`` URL."""
        ...

    def operation_result(self, req: EmuRequest, op_id: str) -> EmuResponse:
        """The answer to a poll of an operation's ``Location`` URL."""
        ...
