"""Helpers shared by the route modules: answers, paging, IDs, request bodies."""

from __future__ import annotations

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
) -> EmuResponse:
    """A list answer: ``{"value": [...]}`` with ``nextLink`` when more pages follow.

    ``render`` turns each item of the page (only those) into its JSON.
    """
    try:
        start = max(0, int(req.query.get("$skiptoken") or req.query.get("$skipToken") or 0))
    except ValueError:
        start = 0
    size = emu.page_size
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


def json_body(req: EmuRequest) -> dict[str, Any]:
    """The request body as a JSON object, or 400 ``InvalidRequestContent``."""
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: {exc}",
        ) from None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body
