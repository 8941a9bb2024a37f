"""Helpers shared by the route modules: answers, paging, IDs, request bodies."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from wac_azure.testing.backend.state import ArmError
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.context import RouteContext

__all__ = ["base_url", "expand", "json_body", "ok", "page", "prov_id", "rg_id"]


def ok(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> EmuResponse:
    return EmuResponse.of_json(status, payload, headers)


def base_url(req: EmuRequest) -> str:
    """The base URL links point at: the front's configured one (never the ``Host`` header)."""
    return req.link_base()


def page(
    emu: RouteContext,
    req: EmuRequest,
    items: list[Any],
    render: Callable[[Any], Any] | None = None,
    *,
    size: int | None = None,
) -> EmuResponse:
    """A list answer: ``{"value": [...]}`` with ``nextLink`` when more pages follow.

    ``render`` turns each item of the page (only those) into its JSON; ``size`` is
    the page's length (the emulator's ``page_size`` unless given).
    """
    try:
        start = max(0, int(req.query.get("$skiptoken") or req.query.get("$skipToken") or 0))
    except ValueError:
        start = 0
    size = emu.page_size if size is None else size
    chunk = items[start : start + size]
    if render is not None:
        chunk = [render(item) for item in chunk]
    body: dict[str, Any] = {"value": chunk}
    if start + size < len(items):
        query = {k: v for k, v in req.query.items() if k.lower() != "$skiptoken"}
        query["$skiptoken"] = str(start + size)
        body["nextLink"] = (
            f"{base_url(req)}{urllib.parse.quote(req.path)}?{urllib.parse.urlencode(query)}"
        )
    return ok(body)


def rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def prov_id(p: dict[str, str], provider_type: str, name: str) -> str:
    """``/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}``."""
    return f"{rg_id(p['sub'], p['rg'])}/providers/{provider_type}/{name}"


def expand(req: EmuRequest) -> str:
    """The ``$expand`` query value, lower-cased ('' when absent)."""
    for k, v in req.query.items():
        if k.lower() in ("$expand", "expand"):
            return v.lower()
    return ""


#: Keys whose values must be JSON objects (or null) wherever they appear in a request body.
_OBJECT_KEYS = frozenset(
    {
        "properties",
        "tags",
        "settings",
        "sku",
        "hardwareProfile",
        "storageProfile",
        "osProfile",
        "networkProfile",
        "imageReference",
        "osDisk",
        "source",
        "networkSecurityGroup",
        "subnet",
        "publicIPAddress",
        "addressSpace",
        "dhcpOptions",
        "virtualMachine",
        "instanceView",
        "proxy",
    }
)
#: Keys whose values must be JSON arrays (or null) wherever they appear.
_ARRAY_KEYS = frozenset(
    {
        "securityRules",
        "defaultSecurityRules",
        "subnets",
        "ipConfigurations",
        "networkInterfaces",
        "addressPrefixes",
        "sourceAddressPrefixes",
        "destinationAddressPrefixes",
        "sourcePortRanges",
        "destinationPortRanges",
        "sourceApplicationSecurityGroups",
        "destinationApplicationSecurityGroups",
        "parameters",
        "protectedParameters",
        "dataDisks",
        "resources",
    }
)
#: Keys whose values must be JSON strings (or null).
_STRING_KEYS = frozenset(
    {"location", "name", "publisher", "type", "typeHandlerVersion", "commandId", "vmSize"}
)
#: Arrays whose items must be JSON objects.
_ARRAYS_OF_OBJECTS = frozenset(
    {
        "securityRules",
        "defaultSecurityRules",
        "subnets",
        "ipConfigurations",
        "networkInterfaces",
        "sourceApplicationSecurityGroups",
        "destinationApplicationSecurityGroups",
        "parameters",
        "protectedParameters",
        "dataDisks",
        "resources",
    }
)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array (e.g. [1,2,3])"
    if isinstance(value, dict):
        return 'object (e.g. {"name":"value"})'
    if isinstance(value, str):
        return f'value "{value[:40]}"'
    return f"value {json.dumps(value)}"


def _not_deserializable(path: str, value: Any, wanted: str) -> ArmError:
    # ARM's wording (Azure/acs-engine#2938): 400 InvalidRequestContent, "The request content
    # was invalid and could not be deserialized: 'Cannot deserialize ... Path '...'.'."
    return ArmError(
        400,
        "InvalidRequestContent",
        "The request content was invalid and could not be deserialized: 'Cannot deserialize "
        f"the current JSON {_json_kind(value)} into type '{wanted}' because the type requires "
        f"a JSON {wanted.lower()} to deserialize correctly. Path '{path}'.'.",
    )


def _check_shape(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if item is None:
                continue
            if key in _OBJECT_KEYS and not isinstance(item, dict):
                raise _not_deserializable(sub, item, "Object")
            if key in _ARRAY_KEYS and not isinstance(item, list):
                raise _not_deserializable(sub, item, "Array")
            if key in _STRING_KEYS and not isinstance(item, str):
                raise _not_deserializable(sub, item, "String")
            if key in _ARRAYS_OF_OBJECTS:
                for i, element in enumerate(item):
                    if not isinstance(element, dict):
                        raise _not_deserializable(f"{sub}[{i}]", element, "Object")
            _check_shape(item, sub)
    elif isinstance(value, list):
        for i, element in enumerate(value):
            _check_shape(element, f"{path}[{i}]")


def json_body(req: EmuRequest) -> dict[str, Any]:
    """The request body as a JSON object of the right shape, or 400 ``InvalidRequestContent``.

    Invalid JSON, a body that is not an object, and known fields of the wrong JSON type (a
    string for ``properties``, an object for ``securityRules``...) are all refused as ARM
    refuses them, before any route reads the body.
    """
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{exc}'.",
        ) from None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _not_deserializable("", body, "Object")
    _check_shape(body, "")
    return body
