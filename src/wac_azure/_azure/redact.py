"""Keep secrets out of azure-core's network trace.

With ``logging_enable=True`` (a client or per-call option), azure-core's
``NetworkTraceLoggingPolicy`` logs every request and response at DEBUG with
*all* headers and bodies: the bearer token in ``Authorization``, and whatever
secret a body carries (an extension's ``protectedSettings``, a Run Command's
``protectedParameters`` or a password parameter). :class:`AzureSession` gives
every client :class:`RedactingNetworkTraceLoggingPolicy` instead, which logs
the same trace with those values replaced by ``REDACTED``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from azure.core.pipeline.policies import NetworkTraceLoggingPolicy

REDACTED = "REDACTED"
#: Headers whose value is a credential.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-ms-authorization-auxiliary",
        "cookie",
        "set-cookie",
        "x-ms-token",
    }
)
#: JSON keys (any case) whose whole value is secret.
_SECRET_KEY = re.compile(
    r"^(protected(settings|parameters)|.*password.*|.*secret.*|.*token.*|.*credential.*"
    r"|.*apikey.*|.*accountkey.*|.*sastoken.*|authorization)$",
    re.IGNORECASE,
)
#: ``{"name": ..., "value": ...}`` parameters whose name says the value is secret.
_SECRET_NAME = re.compile(r"password|secret|token|credential|apikey|accountkey", re.IGNORECASE)
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s:@'\"]+:[^/\s@'\"]+@", re.IGNORECASE)

_LOGGER = logging.getLogger("azure.core.pipeline.policies._universal")


def redact_json(value: Any) -> Any:
    """A copy of JSON ``value`` with every secret value replaced by ``REDACTED``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        name = value.get("name")
        secret_param = isinstance(name, str) and bool(_SECRET_NAME.search(name))
        for key, item in value.items():
            if _SECRET_KEY.match(str(key)) or (secret_param and key == "value"):
                out[key] = REDACTED
            else:
                out[key] = redact_json(item)
        return out
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """``text`` with bearer tokens and credentials in URLs replaced; JSON bodies redacted."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(redact_json(json.loads(stripped)))
        except ValueError:
            pass
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)


def _body_text(body: Any) -> str:
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8", errors="replace")
    return str(body)


class RedactingNetworkTraceLoggingPolicy(NetworkTraceLoggingPolicy):
    """azure-core's network trace (``logging_enable=True``) without credentials or secrets."""

    def on_request(self, request: Any) -> None:
        http_request = request.http_request
        options = request.context.options
        logging_enable = options.pop("logging_enable", self.enable_http_logger)
        request.context["logging_enable"] = logging_enable
        if not logging_enable or not _LOGGER.isEnabledFor(logging.DEBUG):
            return
        try:
            lines = [
                f"Request URL: '{redact_text(str(http_request.url))}'",
                f"Request method: '{http_request.method}'",
                "Request headers:",
            ]
            for header, value in http_request.headers.items():
                shown = REDACTED if header.lower() in SECRET_HEADERS else redact_text(str(value))
                lines.append(f"    '{header}': '{shown}'")
            body = http_request.body
            if body is None or body == b"" or body == "":
                lines.append("This request has no body")
            elif isinstance(body, (str, bytes, bytearray)):
                lines.append("Request body:")
                lines.append(redact_text(_body_text(body)))
            else:
                lines.append("Request body:")
                lines.append("File upload or stream (not logged)")
            _LOGGER.debug("\n".join(lines))
        except Exception as err:  # pragma: no cover - logging must never break a request
            _LOGGER.debug("Failed to log request: %s", type(err).__name__)

    def on_response(self, request: Any, response: Any) -> None:
        try:
            if not response.context["logging_enable"] or not _LOGGER.isEnabledFor(logging.DEBUG):
                return
            http_response = response.http_response
            lines = [f"Response status: '{http_response.status_code}'", "Response headers:"]
            for header, value in http_response.headers.items():
                shown = REDACTED if header.lower() in SECRET_HEADERS else redact_text(str(value))
                lines.append(f"    '{header}': '{shown}'")
            lines.append("Response content:")
            ctype = str(http_response.headers.get("content-type", ""))
            if ctype.endswith("octet-stream") or ctype.startswith("image"):
                lines.append("Body contains binary data.")
            elif response.context.options.get("stream", False):
                lines.append("Body is streamable.")
            else:
                lines.append(redact_text(http_response.text()))
            _LOGGER.debug("\n".join(lines))
        except Exception as err:  # pragma: no cover - logging must never break a response
            _LOGGER.debug("Failed to log response: %s", type(err).__name__)
