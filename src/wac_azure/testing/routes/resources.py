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
#: What ``$expand`` may add to a generic resource. Wire shape: azure-rest-api-specs
#: specification/resources/resource-manager/Microsoft.Resources/stable/2021-04-01/resources.json,
#: ``Resources_ListByResourceGroup`` answers ``ResourceListResult`` of
#: ``GenericResourceExpanded``: ``createdTime``, ``changedTime`` and
#: ``provisioningState`` sit at the top level next to ``id, name, type, location,
#: tags`` (not under ``properties``), present only when named in ``$expand``.
_EXPANDABLE = ("createdTime", "changedTime", "provisioningState")


def _generic(doc: dict[str, Any], expand: frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: doc[k] for k in ("id", "name", "type", "location", "tags", "sku", "kind") if k in doc
    }
    props: dict[str, Any] = doc.get("properties") or {}
    stamps: dict[str, Any] = doc.get("systemData") or {}
    for field in _EXPANDABLE:
        if field.lower() not in expand:
            continue
        value: Any
        if field == "provisioningState":
            value = props.get("provisioningState") or "Succeeded"
        elif field == "createdTime":
            value = stamps.get("createdAt") or "2026-01-01T00:00:00.0000000Z"
        else:
            value = stamps.get("lastModifiedAt") or "2026-01-01T00:00:00.0000000Z"
        out[field] = value
    return clone(out)  # type: ignore[no-any-return]


def _listing(emu: RouteContext, req: EmuRequest, sub: str, rg: str | None) -> EmuResponse:
    wanted = None
    flt = req.query.get("$filter")
    if flt:
        m = _FILTER_TYPE.search(flt)
        if m:
            wanted = m.group(1).lower()
    expand = frozenset(
        part.strip().lower() for part in (req.query.get("$expand") or "").split(",") if part
    )
    if wanted is not None and wanted.count("/") >= 2:
        # A child type (VM extensions...): ARM lists these too; let the operations on
        # them advance as a GET of their parents would.
        # (At the subscription's scope, every resource group's parents count.)
        parent_type = wanted.rsplit("/", 1)[0]
        ns, _, kind = parent_type.partition("/")
        groups = [rg] if rg else [g for s, g in emu.store.resource_groups if s == sub.lower()]
        for group in groups:
            emu.touch(f"/subscriptions/{sub}/resourceGroups/{group}/providers/{ns}/{kind}")
        items = emu.store.of_type(wanted, subscription=sub, resource_group=rg)
    else:
        items = [
            doc
            for doc in emu.store.scoped(sub, rg)
            if wanted is None or str(doc.get("type", "")).lower() == wanted
        ]
    # ARM pages the generic list at up to 1,000 resources (docs/emulator.md, "Paging")
    return page(emu, req, items, lambda doc: _generic(doc, expand), size=emu.generic_page_size)


@ROUTES.route("GET", _SUB + "/resources")
async def _list_sub_resources(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return _listing(emu, req, p["sub"], None)


@ROUTES.route("GET", _SUB + "/resourceGroups/{rg}/resources")
async def _list_rg_resources(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    return _listing(emu, req, p["sub"], p["rg"])
