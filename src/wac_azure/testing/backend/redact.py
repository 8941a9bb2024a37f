"""The emulator's own redaction of recorded requests and answers (``RequestRecord``).

The emulator does not borrow the library's redaction (``wac_azure._azure.redact``): a
test that checks the library keeps secrets out of its logs must not rely on the same
code to keep them out of the emulator's records. What counts as a secret follows ARM:

* headers that carry a credential: ``Authorization`` (the bearer token; the scheme
  is kept, ``Bearer REDACTED``), ``Proxy-Authorization``,
  ``x-ms-authorization-auxiliary`` (cross-tenant tokens), cookies, and any header
  whose name says ``token`` or ``secret``;
* JSON values under an extension's ``protectedSettings`` (and
  ``protectedSettingsFromKeyVault``: the settings the extension API keeps for the
  handler, which the emulator's own routes never echo back, ``routes/compute.py``), a
  Run Command's ``protectedParameters``, and keys naming a password, secret, token or
  credential;
* every ``value`` of a Run Command's ``parameters`` (``POST .../runCommand``: they are
  handed to the script as they are, so they may carry anything) and of any
  ``{"name", "value"}`` parameter whose name says password, secret or token.

This is an inspection aid, not ARM behaviour. The header list follows azure-core's
``HttpLoggingPolicy``, which logs ``Authorization`` and the other headers outside its
allow-list as ``REDACTED`` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "REDACTED"

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-ms-authorization-auxiliary",
        "cookie",
        "set-cookie",
    }
)
_SECRET_HEADER_NAME = re.compile(r"token|secret", re.IGNORECASE)
_SECRET_KEY = re.compile(
    r"^(protectedsettings|protectedsettingsfromkeyvault|protectedparameters"
    r"|.*password.*|.*secret.*|.*token.*|.*credential.*|authorization)$",
    re.IGNORECASE,
)
_SECRET_PARAMETER = re.compile(r"password|secret|token|credential", re.IGNORECASE)
_BEARER = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)
_RUN_COMMAND = re.compile(r"/runcommand$", re.IGNORECASE)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` (names as given) with every credential replaced."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in _SECRET_HEADERS or _SECRET_HEADER_NAME.search(low):
            scheme, sep, _ = str(value).partition(" ")
            keep = low in ("authorization", "proxy-authorization") and sep
            out[name] = f"{scheme} {REDACTED}" if keep else REDACTED
        else:
            out[name] = str(value)
    return out


def redact_json(value: Any, *, run_command: bool = False) -> Any:
    """A copy of JSON ``value`` with every secret value replaced by ``REDACTED``."""
    if isinstance(value, Mapping):
        name = value.get("name")
        secret_parameter = isinstance(name, str) and bool(_SECRET_PARAMETER.search(name))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _SECRET_KEY.match(str(key)) or (secret_parameter and key == "value"):
                out[key] = REDACTED
            elif run_command and key == "parameters" and isinstance(item, list):
                out[key] = [
                    {**p, "value": REDACTED} if isinstance(p, Mapping) and "value" in p else p
                    for p in item
                ]
            else:
                out[key] = redact_json(item)
        return out
    if isinstance(value, list):
        return [redact_json(v, run_command=run_command) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, value)
    return value


def redact_body(body: bytes, *, path: str = "") -> str:
    """``body`` as text with its secrets replaced (JSON re-serialized compactly)."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(stripped)
        except ValueError:
            pass
        else:
            redacted = redact_json(doc, run_command=bool(_RUN_COMMAND.search(path)))
            return json.dumps(redacted, separators=(",", ":"))
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
