"""Redaction of secrets in text and JSON (pure).

The one definition of what counts as a secret, shared by azure-core's network
trace (``_azure.redact``) and the reprs of public objects that hold what ARM
returned (:class:`~wac_azure.ExtensionFacts` settings): bearer tokens,
credentials in URLs (``http://user:password@proxy``), and the values of JSON
keys or ``{"name": ..., "value": ...}`` parameters whose name says they are
secret (``protectedSettings``, ``protectedParameters``, ``*password*``,
``*secret*``, ``*token*``, ``*credential*``...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact_json", "redact_repr", "redact_text"]

REDACTED = "REDACTED"
#: JSON keys (any case) whose whole value is secret.
_SECRET_KEY = re.compile(
    r"^(protected(settings|parameters)|.*password.*|.*secret.*|.*token.*|.*credential.*"
    r"|.*apikey.*|.*accountkey.*|.*sastoken.*|authorization)$",
    re.IGNORECASE,
)
#: ``{"name": ..., "value": ...}`` parameters whose name says the value is secret.
_SECRET_NAME = re.compile(r"password|secret|token|credential|apikey|accountkey", re.IGNORECASE)
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
#: ``scheme://userinfo@``: a user name and password, or a token alone.
_URL_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@", re.IGNORECASE)


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
    if isinstance(value, (list, tuple)):
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


def redact_repr(value: Any) -> str:
    """``repr`` of ``value`` (JSON-like data) with its secrets redacted: for attrs fields."""
    return repr(redact_json(value))
