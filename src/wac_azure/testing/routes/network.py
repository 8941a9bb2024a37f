"""Routes: Microsoft.Network (NICs, NSGs and rules, public IPs, VNets/subnets, service tags)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from wac_azure.testing.backend import netpath
from wac_azure.testing.backend.builders import (
    SERVICE_TAGS,
    default_security_rules,
    service_tags_document,
)
from wac_azure.testing.backend.operations import Operation, Outcome
from wac_azure.testing.backend.state import ArmError, clone, new_etag, not_found
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.common import json_body, ok, page, prov_id
from wac_azure.testing.routes.context import RouteContext
from wac_azure.testing.routes.router import Router

__all__ = ["ROUTES", "validate_rule"]

ROUTES = Router()
_RG = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"
_SUBP = "/subscriptions/{sub}/providers/Microsoft.Network"
_NSG_T = "Microsoft.Network/networkSecurityGroups"
_NIC_T = "Microsoft.Network/networkInterfaces"
_PIP_T = "Microsoft.Network/publicIPAddresses"
_VNET_T = "Microsoft.Network/virtualNetworks"
_RULE_T = "Microsoft.Network/networkSecurityGroups/securityRules"

_PROTOCOLS = {"tcp": "Tcp", "udp": "Udp", "icmp": "Icmp", "esp": "Esp", "ah": "Ah", "*": "*"}
_ACCESS = {"allow": "Allow", "deny": "Deny"}
_DIRECTIONS = {"inbound": "Inbound", "outbound": "Outbound"}
_KNOWN_TAGS = {
    t.lower()
    for t in (
        "VirtualNetwork",
        "Internet",
        "AzureLoadBalancer",
        "AzureCloud",
        "AzureActiveDirectory",
        "WindowsAdminCenter",
        "Storage",
        "Sql",
        "AzureMonitor",
        "AzureKeyVault",
        "EventHub",
        "ServiceBus",
        "AzureResourceManager",
        "GuestAndHybridManagement",
        "AzureBackup",
        "AzureFrontDoor.Backend",
        "AzureFrontDoor.Frontend",
        "AzureBastion",
        "AzureTrafficManager",
        "ApiManagement",
        "AppService",
        "AzureContainerRegistry",
        "AzureCosmosDB",
        "AzureUpdateDelivery",
        "PowerPlatformInfra",
        "*",
        *SERVICE_TAGS,
    )
}
_TAG_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?$")


def _nsg_id(p: dict[str, str]) -> str:
    return prov_id(p, _NSG_T, p["nsg"])


def _nsg(emu: RouteContext, p: dict[str, str]) -> dict[str, Any]:
    return emu.store.require(_nsg_id(p))


def _op_name(op: Operation) -> str:
    """Network's name for an operation (``PutSecurityRuleOperation``...)."""
    verb = "Delete" if op.kind == "delete" else "Put"
    if "/securityrules/" in op.resource_id.lower():
        return f"{verb}SecurityRuleOperation"
    return f"{verb}NetworkSecurityGroupOperation"


def _busy_nsg(
    emu: RouteContext, req: EmuRequest, nsg: dict[str, Any], what: str
) -> list[Operation]:
    """Answer a write to an NSG that another running write holds, per ``emu.nsg_conflict``.

    ``"429"`` and ``"409"`` raise Network's answers (errors.json
    ``net-429-retryable-anotherop-*``, ``net-409-anotheroperationinprogress-subnet``);
    ``"supersede"`` cancels the running operations (their writes are undone) and returns
    them, so that the caller names the superseding operation in their error
    (:func:`_superseded_by`).
    """
    running = emu.ops.under(nsg["id"])
    if not running:
        return []
    op = running[0]
    outcome = emu.nsg_conflict(nsg["id"])
    if outcome == "supersede" and all(o.kind in ("put", "delete") for o in running):
        if not any(
            o.kind == "delete" and o.resource_id.lower() == nsg["id"].lower() for o in running
        ):
            for other in running:
                other.cancel(
                    {
                        "code": "Canceled",
                        "message": "Operation was canceled.",
                        "details": [
                            {
                                "code": "CanceledAndSupersededDueToAnotherOperation",
                                "message": f"Operation {_op_name(other)} ({other.id}) was "
                                f"canceled and superseded by operation {what} (pending).",
                            }
                        ],
                    }
                )
            return running
        outcome = "429"
    if outcome == "409":
        raise ArmError(
            409,
            "AnotherOperationInProgress",
            "Another operation on this or dependent resource is in progress. To retrieve "
            f"status of the operation use uri: {req.link_base()}{op.status_path()}"
            f"?api-version={req.query.get('api-version', '')}.",
            details=[],
        )
    wait = 10
    raise ArmError(
        429,
        "RetryableError",
        "A retryable error occurred.",
        details=[
            {
                "code": "RetryableErrorDueToAnotherOperation",
                "message": f"Operation {_op_name(op)} ({op.id}) is updating resource "
                f"{nsg['id']}. The call can be retried in {wait} seconds.",
            }
        ],
        headers={"Retry-After": "1"},
    )


def _superseded_by(canceled: list[Operation], what: str, new_op: Operation) -> None:
    for op in canceled:
        err = (op.outcome.error if op.outcome is not None else None) or {}
        for detail in err.get("details") or []:
            detail["message"] = (
                f"Operation {_op_name(op)} ({op.id}) was canceled and superseded by "
                f"operation {what} ({new_op.id})."
            )


# -- validation ----------------------------------------------------------------------------


def _bad(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def _check_port(value: Any, rule: str) -> None:
    text = str(value).strip()
    if text == "*":
        return
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if m is not None:
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if 0 <= lo <= 65535 and 0 <= hi <= 65535 and lo <= hi:
            return
    raise _bad(
        "SecurityRuleInvalidPortRange",
        f"Security rule {rule} has invalid Port range. Value provided: {value}. Value should be "
        "an integer OR integer range with '-' delimiter. Valid range 0-65535.",
    )


def _check_prefix(value: Any, rule: str) -> None:
    text = str(value).strip()
    if text.lower() in _KNOWN_TAGS:
        return
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
        return
    except ValueError:
        pass
    if "/" not in text and _TAG_SHAPE.match(text) and "." in text:
        base = text.split(".", 1)[0].lower()
        if base in _KNOWN_TAGS:
            return
    raise _bad(
        "SecurityRuleInvalidAddressPrefix",
        f"Security rule {rule} has invalid Address prefix. Value provided: {value}",
    )


def _pair(props: dict[str, Any], single: str, plural: str) -> list[Any]:
    values = list(props.get(plural) or [])
    if props.get(single) not in (None, ""):
        values.append(props[single])
    return values


def validate_rule(name: str, props: dict[str, Any]) -> dict[str, Any]:
    """Validate one rule's properties as Network RP does; returns normalised properties."""
    out = dict(props)
    for key, allowed, label in (
        ("protocol", _PROTOCOLS, "protocol"),
        ("access", _ACCESS, "access"),
        ("direction", _DIRECTIONS, "direction"),
    ):
        value = out.get(key)
        if value is None:
            raise _bad(
                "InvalidRequestFormat",
                f"Cannot parse the request. Security rule {name}: '{label}' is required.",
            )
        canon = allowed.get(str(value).lower())
        if canon is None:
            raise _bad(
                "InvalidRequestFormat",
                f"Cannot parse the request. Security rule {name}: value '{value}' is not valid "
                f"for '{label}'; allowed: {', '.join(sorted(set(allowed.values())))}.",
            )
        out[key] = canon
    priority = out.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        try:
            priority = int(str(priority))
        except ValueError:
            raise _bad(
                "SecurityRuleInvalidPriority",
                f"Security rule {name} has invalid Priority. Value provided: {out.get('priority')}."
                " Allowed values are from 100 to 4096.",
            ) from None
    if not 100 <= priority <= 4096:
        raise _bad(
            "SecurityRuleInvalidPriority",
            f"Security rule {name} has invalid Priority. Value provided: {priority}. Allowed "
            "values are from 100 to 4096.",
        )
    out["priority"] = priority
    for single, plural in (
        ("sourcePortRange", "sourcePortRanges"),
        ("destinationPortRange", "destinationPortRanges"),
    ):
        values = _pair(out, single, plural)
        if not values:
            raise _bad(
                "SecurityRuleInvalidPortRange",
                f"Security rule {name} has invalid Port range. Value provided: null. Value "
                "should be an integer OR integer range with '-' delimiter. Valid range 0-65535.",
            )
        for v in values:
            _check_port(v, name)
    for single, plural, asg in (
        ("sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups"),
        (
            "destinationAddressPrefix",
            "destinationAddressPrefixes",
            "destinationApplicationSecurityGroups",
        ),
    ):
        values = _pair(out, single, plural)
        if not values and not out.get(asg):
            raise _bad(
                "SecurityRuleInvalidAddressPrefix",
                f"Security rule {name} has invalid Address prefix. Value provided: null",
            )
        if values and out.get(asg):
            raise _bad(
                "SecurityRuleInvalidParameterCombination",
                f"Security rule {name} specifies both address prefixes and application security "
                "groups for the same end.",
            )
        for v in values:
            _check_prefix(v, name)
    description = out.get("description")
    if description is not None and len(str(description)) > 140:
        raise _bad(
            "SecurityRuleDescriptionTooLong",
            f"Security rule {name} has a description longer than 140 characters.",
        )
    return out


def _check_conflicts(rules: list[dict[str, Any]]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for rule in rules:
        props = rule["properties"]
        key = (int(props["priority"]), str(props["direction"]))
        other = seen.get(key)
        if other is not None:
            raise _bad(
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {other}. Rules cannot have "
                "the same Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = rule["name"]


#: The plural rule fields a Network RP GET always returns (``[]`` when the singular is used).
RULE_PLURALS = (
    "sourcePortRanges",
    "destinationPortRanges",
    "sourceAddressPrefixes",
    "destinationAddressPrefixes",
)


def normalise_rule_props(props: dict[str, Any]) -> dict[str, Any]:
    """Rule properties as a GET returns them: singulars as sent, missing plurals ``[]``."""
    out = dict(props)
    for plural in RULE_PLURALS:
        if out.get(plural) is None:
            out[plural] = []
    return out


def _rule_doc(nsg_id: str, name: str, props: dict[str, Any], state: str) -> dict[str, Any]:
    props = normalise_rule_props(props)
    props["provisioningState"] = state
    return {
        "name": name,
        "id": f"{nsg_id}/securityRules/{name}",
        "etag": new_etag(),
        "type": _RULE_T,
        "properties": props,
    }


# -- NSGs ---------------------------------------------------------------------------------


def _start_put(
    emu: RouteContext,
    req: EmuRequest,
    rid: str,
    doc: dict[str, Any],
    *,
    existing: dict[str, Any] | None,
    before: dict[str, Any] | None,
    location: object,
    success: Callable[[], Outcome],
) -> EmuResponse:
    """Start a network PUT operation and answer 201 (new) or 200 (replaced), as ARM does.

    Aborting the operation puts ``before`` back (or deletes what was new).
    """
    return _start_put_op(
        emu,
        req,
        rid,
        doc,
        existing=existing,
        before=before,
        location=location,
        success=success,
    )[0]


def _start_put_op(
    emu: RouteContext,
    req: EmuRequest,
    rid: str,
    doc: dict[str, Any],
    *,
    existing: dict[str, Any] | None,
    before: dict[str, Any] | None,
    location: object,
    success: Callable[[], Outcome],
) -> tuple[EmuResponse, Operation]:
    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(location),
        resource_id=rid,
        kind="put",
        on_success=success,
        on_abort=emu.restorer(rid, before),
    )
    answer = ok(clone(emu.store.get(rid) or doc), 200 if existing is not None else 201, headers)
    return answer, op


@ROUTES.route("GET", _RG + "/networkSecurityGroups/{nsg}")
async def _get_nsg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.touch(_nsg_id(p))
    return ok(clone(_nsg(emu, p)))


@ROUTES.route("GET", _RG + "/networkSecurityGroups")
async def _list_rg_nsg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    emu.touch(req.path)
    docs = emu.store.of_type(_NSG_T, subscription=p["sub"], resource_group=p["rg"])
    return page(emu, req, docs, clone)


@ROUTES.route("GET", _SUBP + "/networkSecurityGroups")
async def _list_sub_nsg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    docs = emu.store.of_type(_NSG_T, subscription=p["sub"])
    return page(emu, req, docs, clone)


@ROUTES.route("PUT", _RG + "/networkSecurityGroups/{nsg}")
async def _put_nsg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    body = json_body(req)
    nid = _nsg_id(p)
    existing = emu.store.get(nid)
    canceled: list[Operation] = []
    if existing is not None:
        canceled = _busy_nsg(emu, req, existing, "PutNetworkSecurityGroupOperation")
        existing = emu.store.get(nid)
    location = body.get("location") or (existing or {}).get("location")
    if not location:
        raise _bad("LocationRequired", "The location property is required for this definition.")
    props_in = dict(body.get("properties") or {})
    rules = []
    for r in props_in.get("securityRules") or []:
        rname = str(r.get("name") or "")
        if not rname:
            raise _bad(
                "InvalidRequestFormat", "Cannot parse the request: a security rule has no name."
            )
        rules.append(
            _rule_doc(nid, rname, validate_rule(rname, r.get("properties") or {}), "Updating")
        )
    _check_conflicts(rules)
    before = clone(existing) if existing is not None else None
    doc: dict[str, Any] = (
        clone(existing)
        if existing is not None
        else {
            "name": p["nsg"],
            "id": nid,
            "type": _NSG_T,
            "properties": {"defaultSecurityRules": default_security_rules(nid)},
        }
    )
    doc["location"] = location
    doc["etag"] = new_etag()
    if body.get("tags") is not None:
        doc["tags"] = dict(body["tags"])
    props = doc["properties"]
    props["securityRules"] = rules
    props["provisioningState"] = "Updating"
    props.setdefault("resourceGuid", new_etag()[3:-1])
    for key in ("flushConnection",):
        if key in props_in:
            props[key] = props_in[key]
    emu.store.put(doc)

    def success() -> Outcome:
        current = emu.store.get(nid)
        if current is not None:
            current["properties"]["provisioningState"] = "Succeeded"
            for r in current["properties"].get("securityRules") or []:
                r["properties"]["provisioningState"] = "Succeeded"
        return Outcome()

    resp, op = _start_put_op(
        emu, req, nid, doc, existing=existing, before=before, location=location, success=success
    )
    _superseded_by(canceled, "PutNetworkSecurityGroupOperation", op)
    return resp


@ROUTES.route("DELETE", _RG + "/networkSecurityGroups/{nsg}")
async def _delete_nsg(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    nid = _nsg_id(p)
    nsg = emu.store.get(nid)
    if nsg is None:
        return EmuResponse(204)
    canceled = _busy_nsg(emu, req, nsg, "DeleteNetworkSecurityGroupOperation")
    nsg = emu.store.get(nid) or nsg

    def success() -> Outcome:
        emu.store.delete(nid)
        return Outcome()

    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(nsg.get("location", "")),
        resource_id=nid,
        kind="delete",
        on_success=success,
    )
    _superseded_by(canceled, "DeleteNetworkSecurityGroupOperation", op)
    return EmuResponse(202, headers)


# -- security rules ------------------------------------------------------------------------


def _find_rule(nsg: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
    for r in (nsg.get("properties") or {}).get(key) or []:
        if str(r.get("name", "")).lower() == name.lower():
            found: dict[str, Any] = r
            return found
    return None


def _etags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _check_preconditions(req: EmuRequest, current: dict[str, Any] | None, rid: str) -> None:
    """Answer 412 ``PreconditionFailed`` as Network does when a conditional header fails.

    RFC 9110 §13.1.1-2: ``If-Match: *`` fails when no current representation exists, a
    listed etag fails when none equals the current one; ``If-None-Match: *`` fails when
    one exists, a listed etag fails when it equals the current one. Network compares its
    weak ``W/"guid"`` etags as strings and names the mismatch in a detail
    (``PreconditionFailedEtagMismatch``; errors.json ``net-412-preconditionfailed-*``).
    """
    etag = str(current.get("etag", "")) if current is not None else None
    if_match = req.headers.get("if-match")
    if if_match is not None:
        wanted = _etags(if_match)
        ok_match = etag is not None and ("*" in wanted or etag in wanted)
        if not ok_match:
            shown = etag if etag is not None else "(none: the resource does not exist)"
            _precondition_failed(
                f"Etag provided in if-match header {if_match} does not match etag {shown} "
                f"of resource {rid} in NRP data store."
            )
    if_none = req.headers.get("if-none-match")
    if if_none is not None and etag is not None:
        wanted = _etags(if_none)
        if "*" in wanted or etag in wanted:
            _precondition_failed(
                f"Etag provided in if-none-match header {if_none} matches etag {etag} "
                f"of resource {rid} in NRP data store."
            )


def _precondition_failed(message: str) -> None:
    raise ArmError(
        412,
        "PreconditionFailed",
        "Precondition failed.",
        details=[{"code": "PreconditionFailedEtagMismatch", "message": message}],
    )


@ROUTES.route("GET", _RG + "/networkSecurityGroups/{nsg}/securityRules/{rule}")
async def _get_rule(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    # The read counts as a poll of the rule's operation first, so a read that ends it
    # answers with the state after it (a rule rolled back is gone), as the NSG's GET does.
    emu.touch(f"{_nsg_id(p)}/securityRules/{p['rule']}")
    nsg = _nsg(emu, p)
    rid = f"{nsg['id']}/securityRules/{p['rule']}"
    rule = _find_rule(nsg, "securityRules", p["rule"])
    if rule is None:
        raise not_found(rid)
    return ok(clone(rule))


@ROUTES.route("GET", _RG + "/networkSecurityGroups/{nsg}/securityRules")
async def _list_rules(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.touch(_nsg_id(p))  # first, as in _get_rule
    nsg = _nsg(emu, p)
    return page(emu, req, [clone(r) for r in nsg["properties"].get("securityRules") or []])


@ROUTES.route("GET", _RG + "/networkSecurityGroups/{nsg}/defaultSecurityRules/{rule}")
async def _get_default_rule(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    nsg = _nsg(emu, p)
    rule = _find_rule(nsg, "defaultSecurityRules", p["rule"])
    if rule is None:
        raise not_found(f"{nsg['id']}/defaultSecurityRules/{p['rule']}")
    return ok(clone(rule))


@ROUTES.route("GET", _RG + "/networkSecurityGroups/{nsg}/defaultSecurityRules")
async def _list_default_rules(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    nsg = _nsg(emu, p)
    return page(emu, req, [clone(r) for r in nsg["properties"].get("defaultSecurityRules") or []])


@ROUTES.route("PUT", _RG + "/networkSecurityGroups/{nsg}/securityRules/{rule}")
async def _put_rule(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    nsg = _nsg(emu, p)
    body = json_body(req)
    name = p["rule"]
    props = validate_rule(name, dict(body.get("properties") or {}))
    # conditional headers are judged against the rule as stored, before the write is taken
    _check_preconditions(
        req, _find_rule(nsg, "securityRules", name), f"{nsg['id']}/securityRules/{name}"
    )
    # an overlapping write is answered first; a superseded one is undone before we look
    canceled = _busy_nsg(emu, req, nsg, "PutSecurityRuleOperation")
    nsg = _nsg(emu, p)
    rules = nsg["properties"].setdefault("securityRules", [])
    existing = _find_rule(nsg, "securityRules", name)
    rule_name = existing["name"] if existing is not None else name
    for other in rules:
        if other is existing:
            continue
        op = other["properties"]
        if (
            int(op.get("priority", -1)) == props["priority"]
            and str(op.get("direction", "")).lower() == props["direction"].lower()
        ):
            raise _bad(
                "SecurityRuleConflict",
                f"Security rule {rule_name} conflicts with rule {other['name']}. Rules cannot "
                "have the same Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
    before = clone(nsg)
    rule = _rule_doc(nsg["id"], rule_name, props, "Updating")
    if existing is not None:
        rules[rules.index(existing)] = rule
    else:
        rules.append(rule)
    nsg["etag"] = new_etag()
    nid, rid = nsg["id"], rule["id"]

    def success() -> Outcome:
        current = emu.store.get(nid)
        if current is not None:
            found = _find_rule(current, "securityRules", rule_name)
            if found is not None:
                found["properties"]["provisioningState"] = "Succeeded"
            current["etag"] = new_etag()
        return Outcome()

    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(nsg.get("location", "")),
        resource_id=rid,
        kind="put",
        on_success=success,
        on_abort=emu.restorer(nid, before),
    )
    _superseded_by(canceled, "PutSecurityRuleOperation", op)
    current_nsg = emu.store.get(nid) or nsg
    out = _find_rule(current_nsg, "securityRules", rule_name) or rule
    return ok(clone(out), 200 if existing is not None else 201, headers)


@ROUTES.route("DELETE", _RG + "/networkSecurityGroups/{nsg}/securityRules/{rule}")
async def _delete_rule(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    nsg = _nsg(emu, p)
    _check_preconditions(
        req, _find_rule(nsg, "securityRules", p["rule"]), f"{nsg['id']}/securityRules/{p['rule']}"
    )
    canceled: list[Operation] = []
    if _find_rule(nsg, "securityRules", p["rule"]) is not None:
        canceled = _busy_nsg(emu, req, nsg, "DeleteSecurityRuleOperation")
        nsg = _nsg(emu, p)
    existing = _find_rule(nsg, "securityRules", p["rule"])
    if existing is None:
        return EmuResponse(204)
    before = clone(nsg)
    existing["properties"]["provisioningState"] = "Deleting"
    nid, name = nsg["id"], existing["name"]

    def success() -> Outcome:
        current = emu.store.get(nid)
        if current is not None:
            current["properties"]["securityRules"] = [
                r
                for r in current["properties"].get("securityRules") or []
                if str(r.get("name", "")).lower() != name.lower()
            ]
            current["etag"] = new_etag()
        return Outcome()

    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(nsg.get("location", "")),
        resource_id=existing["id"],
        kind="delete",
        on_success=success,
        on_abort=emu.restorer(nid, before),
    )
    _superseded_by(canceled, "DeleteSecurityRuleOperation", op)
    return EmuResponse(202, headers)


# -- NICs ----------------------------------------------------------------------------------


def _simple_get(provider_type: str, key: str) -> Any:
    async def handler(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
        rid = prov_id(p, provider_type, p[key])
        doc = emu.store.require(rid)
        emu.touch(rid)
        return ok(clone(doc))

    return handler


def _simple_list_rg(provider_type: str) -> Any:
    async def handler(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
        emu.store.require_rg(p["sub"], p["rg"])
        docs = emu.store.of_type(provider_type, subscription=p["sub"], resource_group=p["rg"])
        return page(emu, req, docs, clone)

    return handler


def _simple_list_sub(provider_type: str) -> Any:
    async def handler(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
        docs = emu.store.of_type(provider_type, subscription=p["sub"])
        return page(emu, req, docs, clone)

    return handler


for _coll, _type, _key in (
    ("networkInterfaces", _NIC_T, "nic"),
    ("publicIPAddresses", _PIP_T, "pip"),
    ("virtualNetworks", _VNET_T, "vnet"),
    ("bastionHosts", "Microsoft.Network/bastionHosts", "bh"),
    ("applicationSecurityGroups", "Microsoft.Network/applicationSecurityGroups", "asg"),
    ("loadBalancers", "Microsoft.Network/loadBalancers", "lb"),
):
    ROUTES.add("GET", _RG + f"/{_coll}/{{{_key}}}", _simple_get(_type, _key))
    ROUTES.add("GET", _RG + f"/{_coll}", _simple_list_rg(_type))
    ROUTES.add("GET", _SUBP + f"/{_coll}", _simple_list_sub(_type))


def _put_passthrough(provider_type: str, key: str) -> Any:
    """PUT of a resource stored as sent (NICs, public IPs, VNets): an LRO like ARM's.

    ``If-Match`` / ``If-None-Match`` are judged as on security rules (412
    ``PreconditionFailed``): Network's answer recorded on public IPs (errors.json
    ``net-412-preconditionfailed-etagmismatch-pip``), the same etag scheme on its other
    top-level resources (docs/emulator.md, "Conditional writes")."""

    async def handler(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
        emu.store.require_rg(p["sub"], p["rg"])
        body = json_body(req)
        rid = prov_id(p, provider_type, p[key])
        existing = emu.store.get(rid)
        _check_preconditions(req, existing, rid)
        running = emu.busy(rid) if existing is not None else None
        if running is not None:
            # errors.json net-409-anotheroperationinprogress-subnet
            raise ArmError(
                409,
                "AnotherOperationInProgress",
                "Another operation on this or dependent resource is in progress. To retrieve "
                f"status of the operation use uri: {req.link_base()}{running.status_path()}"
                f"?api-version={req.query.get('api-version', '')}.",
                details=[],
            )
        location = body.get("location") or (existing or {}).get("location")
        if not location:
            raise _bad("LocationRequired", "The location property is required for this definition.")
        doc = clone(body)
        doc.update({"name": (existing or {}).get("name", p[key]), "id": rid, "type": provider_type})
        doc["location"] = location
        doc["etag"] = new_etag()
        props = doc.setdefault("properties", {})
        props["provisioningState"] = "Updating"
        if provider_type == _VNET_T:
            for sn in props.get("subnets") or []:
                sn.setdefault("id", f"{rid}/subnets/{sn.get('name')}")
                sn.setdefault("properties", {})["provisioningState"] = "Updating"
        if provider_type == _NIC_T:
            for i, conf in enumerate(props.get("ipConfigurations") or []):
                conf.setdefault(
                    "id", f"{rid}/ipConfigurations/{conf.get('name', f'ipconfig{i + 1}')}"
                )
        before = clone(existing) if existing is not None else None
        emu.store.put(doc)

        def success() -> Outcome:
            current = emu.store.get(rid)
            if current is not None:
                cprops = current.setdefault("properties", {})
                cprops["provisioningState"] = "Succeeded"
                for sn in cprops.get("subnets") or [] if provider_type == _VNET_T else []:
                    sn.setdefault("properties", {})["provisioningState"] = "Succeeded"
            return Outcome()

        return _start_put(
            emu, req, rid, doc, existing=existing, before=before, location=location, success=success
        )

    return handler


ROUTES.add("PUT", _RG + "/networkInterfaces/{nic}", _put_passthrough(_NIC_T, "nic"))
ROUTES.add("PUT", _RG + "/publicIPAddresses/{pip}", _put_passthrough(_PIP_T, "pip"))
ROUTES.add("PUT", _RG + "/virtualNetworks/{vnet}", _put_passthrough(_VNET_T, "vnet"))


def _effective_rules(nsg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    props = nsg.get("properties") or {}
    for key in ("securityRules", "defaultSecurityRules"):
        for r in props.get(key) or []:
            rp = r.get("properties") or {}

            def ports(single: str, plural: str, rp: dict[str, Any] = rp) -> list[str]:
                vals = [str(v) for v in _pair(rp, single, plural)]
                return ["0-65535" if v == "*" else (v if "-" in v else f"{v}-{v}") for v in vals]

            def prefixes(single: str, plural: str, rp: dict[str, Any] = rp) -> list[str]:
                vals = [str(v) for v in _pair(rp, single, plural)]
                return ["0.0.0.0/0" if v == "*" else v for v in vals]

            sp, dp = (
                ports("sourcePortRange", "sourcePortRanges"),
                ports("destinationPortRange", "destinationPortRanges"),
            )
            sa, da = (
                prefixes("sourceAddressPrefix", "sourceAddressPrefixes"),
                prefixes("destinationAddressPrefix", "destinationAddressPrefixes"),
            )
            entry: dict[str, Any] = {
                "name": f"{key}/{r.get('name')}",
                "protocol": "All" if rp.get("protocol") == "*" else rp.get("protocol"),
                "access": rp.get("access"),
                "priority": rp.get("priority"),
                "direction": rp.get("direction"),
            }
            for single, plural, vals in (
                ("sourcePortRange", "sourcePortRanges", sp),
                ("destinationPortRange", "destinationPortRanges", dp),
                ("sourceAddressPrefix", "sourceAddressPrefixes", sa),
                ("destinationAddressPrefix", "destinationAddressPrefixes", da),
            ):
                if len(vals) == 1:
                    entry[single] = vals[0]
                else:
                    entry[plural] = vals
            for single, vals in (("sourceAddressPrefix", sa), ("destinationAddressPrefix", da)):
                tag = vals[0] if len(vals) == 1 else ""
                if tag in SERVICE_TAGS:
                    expanded = "expanded" + single[0].upper() + single[1:]
                    entry[expanded] = list(SERVICE_TAGS[tag][2])
            out.append(entry)
    return out


@ROUTES.route("POST", _RG + "/networkInterfaces/{nic}/effectiveNetworkSecurityGroups")
async def _effective_nsgs(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    nic = emu.store.require(prov_id(p, _NIC_T, p["nic"]))
    nprops = nic.get("properties") or {}
    vm_ref = (nprops.get("virtualMachine") or {}).get("id")
    if vm_ref:
        vm = emu.store.get(vm_ref)
        if vm is not None and emu.runtime(vm["id"]).power_state != "running":
            raise _bad(
                "VMNotRunning",
                f"The virtual machine {vm['name']} attached to network interface "
                f"{nic['name']} is not running.",
            )
    result: list[dict[str, Any]] = []
    nsg_ref = (nprops.get("networkSecurityGroup") or {}).get("id")
    if nsg_ref and emu.store.get(nsg_ref) is not None:
        result.append(
            {
                "networkSecurityGroup": {"id": nsg_ref},
                "association": {"networkInterface": {"id": nic["id"]}},
                "effectiveSecurityRules": _effective_rules(emu.store.get(nsg_ref) or {}),
            }
        )
    for conf in nprops.get("ipConfigurations") or []:
        sid = ((conf.get("properties") or {}).get("subnet") or {}).get("id")
        if not sid:
            continue
        sn = netpath.subnet(emu.store, sid)
        sn_nsg = (((sn or {}).get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
        if sn_nsg and emu.store.get(sn_nsg) is not None:
            result.append(
                {
                    "networkSecurityGroup": {"id": sn_nsg},
                    "association": {"subnet": {"id": sid}},
                    "effectiveSecurityRules": _effective_rules(emu.store.get(sn_nsg) or {}),
                }
            )
        break

    def success() -> Outcome:
        return Outcome(result={"value": result})

    _, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(nic.get("location", "")),
        resource_id=nic["id"] + "/effectiveNetworkSecurityGroups",
        kind="action",
        on_success=success,
    )
    return EmuResponse(202, headers)


# -- IP address availability ---------------------------------------------------------------


@ROUTES.route("GET", _RG + "/virtualNetworks/{vnet}/CheckIPAddressAvailability")
async def _check_ip(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    """Spec VirtualNetworks_CheckIPAddressAvailability (example
    VirtualNetworkCheckIPAddressAvailability.json); the answer is
    :func:`netpath.ip_availability`. The 400s for a missing, malformed or out-of-subnet
    ``ipAddress`` carry codes and messages of ours (no recorded answer shows Network's)."""
    vnet = emu.store.require(prov_id(p, _VNET_T, p["vnet"]))
    address = req.query.get("ipAddress")
    if not address:
        raise _bad("MissingIpAddress", "The ipAddress query parameter is required.")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise _bad(
            "InvalidIpAddress", f"The ipAddress {address!r} is not a valid IP address."
        ) from None
    answer = netpath.ip_availability(emu.store, vnet, address)
    if answer is None:
        raise _bad(
            "PrivateIPAddressNotInAnySubnet",
            f"The IP address {address} does not belong to any subnet of virtual network "
            f"{vnet['id']}.",
        )
    return ok(answer)


# -- subnets ---------------------------------------------------------------------------------


@ROUTES.route("GET", _RG + "/virtualNetworks/{vnet}/subnets/{subnet}")
async def _get_subnet(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vnet = emu.store.require(prov_id(p, _VNET_T, p["vnet"]))
    sid = f"{vnet['id']}/subnets/{p['subnet']}"
    emu.touch(sid)
    sn = netpath.subnet(emu.store, sid)
    if sn is None:
        raise not_found(sid)
    return ok(clone(sn))


@ROUTES.route("GET", _RG + "/virtualNetworks/{vnet}/subnets")
async def _list_subnets(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vnet = emu.store.require(prov_id(p, _VNET_T, p["vnet"]))
    return page(emu, req, [clone(s) for s in vnet["properties"].get("subnets") or []])


@ROUTES.route("PUT", _RG + "/virtualNetworks/{vnet}/subnets/{subnet}")
async def _put_subnet(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vnet = emu.store.require(prov_id(p, _VNET_T, p["vnet"]))
    body = json_body(req)
    props = dict(body.get("properties") or {})
    if not props.get("addressPrefix") and not props.get("addressPrefixes"):
        raise _bad("InvalidRequestFormat", "Cannot parse the request: addressPrefix is required.")
    subnets = vnet["properties"].setdefault("subnets", [])
    existing = next(
        (s for s in subnets if str(s.get("name", "")).lower() == p["subnet"].lower()), None
    )
    props["provisioningState"] = "Updating"
    if existing is not None and "ipConfigurations" in (existing.get("properties") or {}):
        props.setdefault("ipConfigurations", existing["properties"]["ipConfigurations"])
    doc: dict[str, Any] = {
        "name": existing["name"] if existing is not None else p["subnet"],
        "id": f"{vnet['id']}/subnets/{existing['name'] if existing is not None else p['subnet']}",
        "etag": new_etag(),
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": props,
    }
    before = clone(vnet)
    if existing is not None:
        subnets[subnets.index(existing)] = doc
    else:
        subnets.append(doc)
    vnet["etag"] = new_etag()
    sid = doc["id"]

    def success() -> Outcome:
        current = netpath.subnet(emu.store, sid)
        if current is not None:
            current.setdefault("properties", {})["provisioningState"] = "Succeeded"
        return Outcome()

    _, headers = emu.start_operation(
        req,
        namespace="Microsoft.Network",
        location=str(vnet.get("location", "")),
        resource_id=sid,
        kind="put",
        on_success=success,
        on_abort=emu.restorer(vnet["id"], before),
    )
    current = netpath.subnet(emu.store, sid) or doc
    return ok(clone(current), 200 if existing is not None else 201, headers)


# -- service tags ------------------------------------------------------------------------------


@ROUTES.route("GET", _SUBP + "/locations/{loc}/serviceTags")
async def _service_tags(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return ok(service_tags_document(p["sub"], p["loc"]))
