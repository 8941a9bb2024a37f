"""Routes: resource groups, generic resource listing, operation-status resources."""

from __future__ import annotations

import re
from typing import Any

from wac_azure.testing.backend.state import ArmError, clone
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.common import json_body, ok, page
from wac_azure.testing.routes.context import RouteContext
from wac_azure.testing.routes.router import Router

__all__ = ["ROUTES"]

ROUTES = Router()
_SUB = "/subscriptions/{sub}"


@ROUTES.route("GET", _SUB + "/providers/{ns}/locations/{loc}/operations/{op}")
async def _op_status(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return emu.operation_status(req, p["op"])


@ROUTES.route("GET", _SUB + "/providers/{ns}/locations/{loc}/operationResults/{op}")
async def _op_result(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return emu.operation_result(req, p["op"])


@ROUTES.route("GET", _SUB + "/resourcegroups")
async def _list_rgs(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    rgs = [
        clone(rg) for (sub, _), rg in emu.store.resource_groups.items() if sub == p["sub"].lower()
    ]
    return page(emu, req, rgs)


@ROUTES.route("GET", _SUB + "/resourcegroups/{rg}")
async def _get_rg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return ok(clone(emu.store.require_rg(p["sub"], p["rg"])))


@ROUTES.route("HEAD", _SUB + "/resourcegroups/{rg}")
async def _head_rg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    found = emu.store.resource_group(p["sub"], p["rg"]) is not None
    return EmuResponse(204 if found else 404)


@ROUTES.route("PUT", _SUB + "/resourcegroups/{rg}")
async def _put_rg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    body = json_body(req)
    location = str(body.get("location") or "")
    if not location:
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    existed = emu.store.resource_group(p["sub"], p["rg"]) is not None
    rg = emu.store.ensure_resource_group(p["sub"], p["rg"], location)
    if body.get("tags") is not None:
        rg["tags"] = dict(body["tags"])
    return ok(clone(rg), 200 if existed else 201)


_FILTER_TYPE = re.compile(r"resourceType\s+eq\s+'([^']+)'", re.IGNORECASE)


def _generic(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in ("id", "name", "type", "location", "tags", "sku", "kind") if k in doc}
    return clone(out)  # type: ignore[no-any-return]


def _listing(emu: RouteContext, req: EmuRequest, sub: str, rg: str | None) -> EmuResponse:
    wanted = None
    flt = req.query.get("$filter")
    if flt:
        m = _FILTER_TYPE.search(flt)
        if m:
            wanted = m.group(1).lower()
    items = [
        doc
        for doc in emu.store.scoped(sub, rg)
        if wanted is None or str(doc.get("type", "")).lower() == wanted
    ]
    return page(emu, req, items, _generic)


@ROUTES.route("GET", _SUB + "/resources")
async def _list_sub_resources(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return _listing(emu, req, p["sub"], None)


@ROUTES.route("GET", _SUB + "/resourceGroups/{rg}/resources")
async def _list_rg_resources(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    return _listing(emu, req, p["sub"], p["rg"])
