"""Keep secrets out of azure-core's network trace.

With ``logging_enable=True`` (a client or per-call option), azure-core's
``NetworkTraceLoggingPolicy`` logs every request and response at DEBUG with
*all* headers and bodies: the bearer token in ``Authorization``, and whatever
secret a body carries (an extension's ``protectedSettings``, a Run Command's
``protectedParameters`` or a password parameter). :class:`AzureSession` gives
every client :class:`RedactingNetworkTraceLoggingPolicy` instead, which logs
the same trace with those values replaced by ``REDACTED``. What counts as a
secret is defined once, in the pure ``_core.redaction`` (the reprs of public
objects use it too).
"""

from __future__ import annotations

import logging
from typing import Any

from azure.core.pipeline.policies import NetworkTraceLoggingPolicy

from wac_azure._core.redaction import REDACTED, redact_json, redact_text

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "RedactingNetworkTraceLoggingPolicy",
    "redact_json",
    "redact_text",
]

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

_LOGGER = logging.getLogger("azure.core.pipeline.policies._universal")


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
