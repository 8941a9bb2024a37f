"""Record an AzureSession's traffic as a sanitized vcrpy YAML cassette (``pytest --record DIR``).

``RecordingTransport(inner)`` is an azure-core ``AsyncHttpTransport`` wrapper: hand it to
``AzureSession(credential, transport=...)``; every request and response passing through
it is kept, sanitized by a :class:`Sanitizer`, and :meth:`RecordingTransport.save` writes
them in the format of the shared recordings (``tests/conformance/recordings``), which
``tests.conformance.cassette`` reads back.

What the sanitizer removes: the ``Authorization`` header (and cookies), bearer tokens and
JWTs anywhere, SAS signatures, subscription and tenant IDs (the known ones and any
``/subscriptions/<guid>`` or ``"tenantId": "<guid>"``), e-mail addresses, and public IP
addresses (each mapped to a stable address in 203.0.113.0/24, TEST-NET-3; IPv6 to
2001:db8::/32). Private (RFC 1918), loopback and link-local addresses stay: they say
nothing outside the virtual network and the rules are judged on them. Values given as
``secrets=`` are replaced wherever they appear.

What it keeps on purpose: ``Retry-After``, ``ETag`` and every ``x-ms-ratelimit-remaining-*``
header (the shared recordings lack some of them because their recorders dropped them).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from azure.core.pipeline.transport import AsyncHttpTransport

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: Request and response headers never written.
DROPPED_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-ms-authorization-auxiliary", "proxy-authorization"}
)

_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 404: "Not Found"}

_SUBSCRIPTION = re.compile(rf"(/subscriptions/)({_GUID})", re.IGNORECASE)
_TENANT_KEY = re.compile(rf'("(?:tenantId|homeTenantId|tid)"\s*:\s*")({_GUID})(")', re.IGNORECASE)
_LOGIN_TENANT = re.compile(rf"(login\.microsoftonline\.[a-z.]+/)({_GUID})", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_TOKEN_KEY = re.compile(
    r'("(?:access_token|refresh_token|id_token|accessToken|refreshToken)"\s*:\s*")[^"]*(")'
)
_SAS_SIG = re.compile(r"([?&]sig=)[^&\s\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
_VERSION_KEY = re.compile(r'[Vv]ersion\\?"\s*:\s*\\?"$')
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:])((?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4})*)(?![0-9A-Fa-f:])"
)


class Sanitizer:
    """Replaces identifying values in URLs, headers and bodies (stable within one run)."""

    def __init__(
        self,
        *,
        subscription_ids: Iterable[str] = (),
        tenant_ids: Iterable[str] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        self._known: dict[str, str] = {}
        for value in (*subscription_ids, *tenant_ids):
            if value:
                self._known[value] = ZERO_GUID
        for value in secrets:
            if value:
                self._known[value] = "sanitized"
        self._ips: dict[str, str] = {}

    def learn_from_token(self, token: str) -> None:
        """Add the tenant, object and user IDs that a bearer token (a JWT) names."""
        parts = token.split(".")
        if len(parts) < 2:
            return
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except ValueError:
            return
        if not isinstance(claims, dict):
            return
        for claim in ("tid", "oid", "appid", "azp"):
            value = claims.get(claim)
            if isinstance(value, str) and re.fullmatch(_GUID, value):
                self._known.setdefault(value, ZERO_GUID)
        for claim in ("upn", "unique_name", "email", "preferred_username", "name"):
            value = claims.get(claim)
            if isinstance(value, str) and len(value) > 3:
                self._known.setdefault(value, "sanitized")

    def _public_ip(self, text: str) -> str:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return text
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified:
            return text
        if ip.is_multicast or ip.is_reserved:
            return text
        if text not in self._ips:
            n = len(self._ips) + 1
            self._ips[text] = f"203.0.113.{n % 254 + 1}" if ip.version == 4 else f"2001:db8::{n:x}"
        return self._ips[text]

    def text(self, value: str) -> str:
        """``value`` with every identifying part replaced."""
        for known, replacement in sorted(self._known.items(), key=lambda kv: -len(kv[0])):
            value = re.sub(re.escape(known), replacement, value, flags=re.IGNORECASE)
        value = _BEARER.sub(r"\1sanitized", value)
        value = _JWT.sub("sanitized.jwt.token", value)
        value = _TOKEN_KEY.sub(r"\1sanitized\2", value)
        value = _SAS_SIG.sub(r"\1sanitized", value)
        value = _SUBSCRIPTION.sub(rf"\g<1>{ZERO_GUID}", value)
        value = _TENANT_KEY.sub(rf"\g<1>{ZERO_GUID}\3", value)
        value = _LOGIN_TENANT.sub(rf"\g<1>{ZERO_GUID}", value)
        value = _EMAIL.sub("user@example.com", value)
        value = _IPV4.sub(lambda m: self._ipv4(value, m), value)
        return _IPV6.sub(lambda m: self._public_ip(m.group(1)), value)

    def _ipv4(self, text: str, match: re.Match[str]) -> str:
        # "vmAgentVersion": "2.2.49.2" looks like an address; versions are kept.
        if _VERSION_KEY.search(text[max(0, match.start() - 40) : match.start()]):
            return match.group(1)
        return self._public_ip(match.group(1))

    def headers(self, headers: Mapping[str, str]) -> dict[str, list[str]]:
        """vcrpy's header form (name -> [value]), without the dropped headers."""
        return {
            str(name): [self.text(str(value))]
            for name, value in headers.items()
            if str(name).lower() not in DROPPED_HEADERS
        }


def _request_body(request: Any) -> str | None:
    content = getattr(request, "content", None)
    if content is None:
        content = getattr(request, "data", None)
    if content is None or content == b"":
        return None
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    if isinstance(content, str):
        return content
    if isinstance(content, (dict, list)):
        return json.dumps(content)
    return None  # a stream: not recorded


def _response_body(response: Any) -> str:
    """The loaded body (azure-core's rest responses: ``content``; legacy ones: ``body()``)."""
    data: Any = None
    try:
        data = response.content  # raises ResponseNotReadError for an unread stream
    except Exception:
        data = None
    if data is None and callable(getattr(response, "body", None)):
        try:
            data = response.body()
        except Exception:
            data = None
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


class RecordingTransport(AsyncHttpTransport[Any, Any]):
    """Wraps another async transport and keeps every exchange, sanitized."""

    def __init__(self, inner: Any, sanitizer: Sanitizer | None = None) -> None:
        self._inner = inner
        self.sanitizer = sanitizer or Sanitizer()
        self.interactions: list[dict[str, Any]] = []
        clock = getattr(inner, "clock", None)
        if callable(clock):
            self.clock = clock  # the emulator's virtual time, for AzureSession's pacer

    async def __aenter__(self) -> RecordingTransport:
        await self.open()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    async def sleep(self, duration: float) -> None:
        await self._inner.sleep(duration)

    async def send(self, request: Any, **kwargs: Any) -> Any:
        response = await self._inner.send(request, **kwargs)
        s = self.sanitizer
        auth = str(request.headers.get("Authorization") or "")
        if auth.lower().startswith("bearer "):
            s.learn_from_token(auth[7:].strip())
        body = _request_body(request)
        status = int(response.status_code)
        self.interactions.append(
            {
                "request": {
                    "body": None if body is None else s.text(body),
                    "headers": s.headers(dict(request.headers)),
                    "method": str(request.method).upper(),
                    "uri": s.text(str(request.url)),
                },
                "response": {
                    "body": {"string": s.text(_response_body(response))},
                    "headers": s.headers(dict(response.headers)),
                    "status": {
                        "code": status,
                        "message": str(getattr(response, "reason", "") or _REASONS.get(status, "")),
                    },
                },
            }
        )
        return response

    def dumps(self) -> str:
        """The cassette as vcrpy YAML (``interactions``, ``version: 1``)."""
        return yaml.safe_dump(
            {"interactions": self.interactions, "version": 1},
            default_flow_style=False,
            allow_unicode=False,
            width=120,
        )

    def save(self, path: str | Path) -> Path:
        """Write the cassette (folders made as needed); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.dumps(), encoding="utf-8")
        return target
