"""What a front needs of the emulator it serves: the :class:`EmulatorHost` protocol.

``ArmEmulator`` implements it and passes itself to the fronts, which therefore never
import the emulator.
"""

from __future__ import annotations

from typing import Protocol

from wac_azure.testing.backend.wire import EmuRequest, EmuResponse

__all__ = ["EmulatorHost"]


class EmulatorHost(Protocol):
    """An emulator as its fronts see it: a token, one request entry point and a clock."""

    @property
    def token(self) -> str:
        """The bearer token requests must carry."""
        ...

    async def handle(self, req: EmuRequest) -> EmuResponse:
        """Answer one request (raises ``ConnectionReset`` to drop the connection)."""
        ...

    async def clock_sleep(self, seconds: float) -> None:
        """Sleep as a client would (virtual time in process, unless operations are timed)."""
        ...

    def real_clock(self) -> float:
        """Monotonic real seconds, plus every virtual sleep so far."""
        ...
