"""The in-process front: an azure-core ``AsyncHttpTransport`` that calls the emulator directly.

No sockets. ``sleep()`` follows the emulator's clock: virtual (instant) unless the
emulator times its operations in seconds (``lro_seconds``).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import case_insensitive_dict

from wac_azure.testing.backend.wire import ConnectionReset, EmuRequest
from wac_azure.testing.fronts.host import EmulatorHost

__all__ = ["EmulatorTransport", "StaticTokenCredential"]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class StaticTokenCredential:
    """An azure-core async ``TokenCredential`` that always gives one token: the
    emulator's, or the bearer token given to the CLI's ``--token`` (whose expiry it
    cannot know: an hour, as ARM's own tokens). It holds only the string, so it
    pickles into ``processes=N`` workers."""

    def __init__(self, token: str, *, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


class _Internal:
    """What azure-core calls the transport's own response object: nothing to close here."""

    async def close(self) -> None:
        return None


async def _no_stream(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - body is preloaded
    raise TypeError("the in-process emulator preloads every body")


class EmulatorTransport(AsyncHttpTransport[Any, Any]):
    """An ``AsyncHttpTransport`` answering from an :class:`ArmEmulator` in the same process."""

    def __init__(self, emulator: EmulatorHost, *, base_url: str = "") -> None:
        self._emu = emulator
        #: The base URL links in answers point at (empty: the request URL's host).
        self.base_url = base_url

    async def __aenter__(self) -> EmulatorTransport:
        return self

    async def __aexit__(self, *args: Any) -> None:
        return None

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def sleep(self, duration: float) -> None:
        await self._emu.clock_sleep(float(duration))

    def clock(self) -> float:
        """Monotonic seconds as this transport's ``sleep`` advances them (virtual time)."""
        return self._emu.real_clock()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        body = _body_bytes(request)
        emu_req = EmuRequest(
            request.method, request.url, dict(request.headers), body, base_url=self.base_url
        )
        try:
            answer = await self._emu.handle(emu_req)
        except ConnectionReset as exc:
            raise ServiceResponseError("Connection reset by peer (emulated)", error=exc) from exc
        headers = case_insensitive_dict(answer.headers)
        headers.setdefault("Content-Length", str(len(answer.body)))
        response = AsyncHttpResponseImpl(
            request=request,
            internal_response=_Internal(),
            block_size=4096,
            status_code=answer.status,
            reason=_REASONS.get(answer.status, "Unknown"),
            content_type=headers.get("Content-Type"),
            headers=headers,
            stream_download_generator=_no_stream,
        )
        response._content = answer.body
        return response


def _body_bytes(request: Any) -> bytes:
    content = getattr(request, "content", None)
    if content is None:
        content = getattr(request, "data", None)
    if content is None:
        return b""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    if hasattr(content, "read"):
        data = content.read()
        return data if isinstance(data, bytes) else str(data).encode()
    return str(content).encode()
