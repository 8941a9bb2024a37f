"""The emulator's request and response values, shared by its fronts and its core.

Both fronts (the in-process azure-core transport and the HTTPS server) turn
what they receive into an :class:`EmuRequest`, hand it to
``ArmEmulator.handle`` and send back the :class:`EmuResponse` it returns.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import attrs

__all__ = ["ConnectionReset", "EmuRequest", "EmuResponse"]


def _lower_keys(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@attrs.frozen
class EmuRequest:
    """One HTTP request as the emulator sees it.

    ``path`` is the URL path without the query (percent-decoded), ``query``
    maps each query parameter (keys as sent) to its value, ``headers`` has
    lower-case keys. ``front`` says which front received it: ``"in-process"`` (the
    azure-core transport) or ``"https"`` (the server, where sockets and clocks are real).
    ``base_url`` is the URL the front is served on (``https://127.0.0.1:<port>``), which
    links in answers (``nextLink``, operation URLs) point at; empty, they fall back to the
    request URL's scheme and host.
    """

    method: str
    url: str
    headers: dict[str, str] = attrs.field(converter=_lower_keys, factory=dict)
    body: bytes = b""
    front: str = "in-process"
    base_url: str = ""
    path: str = attrs.field(init=False)
    query: dict[str, str] = attrs.field(init=False)

    @path.default
    def _path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)

    @query.default
    def _query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query))

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty)."""
        if not self.body:
            return None
        return json.loads(self.body)

    def link_base(self) -> str:
        """Scheme and host that links in answers use: the front's ``base_url``, else the URL's."""
        if self.base_url:
            return self.base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@attrs.define
class EmuResponse:
    """One HTTP response produced by the emulator."""

    status: int
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b""

    @classmethod
    def of_json(
        cls, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> EmuResponse:
        """A JSON response (``Content-Type: application/json; charset=utf-8``)."""
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, hdrs, json.dumps(payload).encode())

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


class ConnectionReset(Exception):
    """Raised by ``ArmEmulator.handle`` when a fault asks the front to drop the connection.

    The HTTPS front aborts the TCP connection; the in-process front raises
    azure-core's ``ServiceResponseError`` as a real transport would.
    """
