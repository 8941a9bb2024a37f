"""``emu.seed(document)``: store ARM JSON as GET returns it (fixtures, ``az vm show`` output).

The Azure CLI's flattened output (``az vm show -o json``, ``az network nic show``...)
is turned back into the wire shape first (see ``backend.azcli.to_wire``).
"""

from __future__ import annotations

from typing import Any

from wac_azure.testing.backend.azcli import to_wire
from wac_azure.testing.backend.builders import default_security_rules, make_nsg, make_vnet
from wac_azure.testing.backend.runtime import VmRuntime, runtime_of
from wac_azure.testing.backend.state import Store, clone, new_etag, parse_id

__all__ = ["seed_document"]


def _canonical_type(doc: dict[str, Any]) -> str:
    info = parse_id(str(doc["id"]))
    return str(doc.get("type") or info.get("type") or "")


def seed_document(store: Store, vms: dict[str, VmRuntime], document: dict[str, Any]) -> None:
    """Store ``document`` in ``store`` as GET returns it; a VM gets a fresh record in ``vms``."""
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise ValueError("seed() needs an ARM resource document with an 'id'")
    doc: dict[str, Any] = clone(document)
    # ``az vm show -d`` prints the power state as "VM running" / "VM deallocated".
    power_hint = doc.get("powerState") if "properties" not in doc else None
    doc = to_wire(doc)  # the Azure CLI's flattened output back to the wire shape
    info = parse_id(doc["id"])
    sub, rg = info.get("subscription"), info.get("resource_group")
    if not sub or not rg or "type" not in info:
        raise ValueError(
            f"seed() needs a resource-group-scoped resource ID; got {document['id']!r}"
        )
    location = str(doc.get("location") or "westus")
    store.ensure_resource_group(sub, rg, location)
    rtype = _canonical_type(doc)
    doc.setdefault("type", rtype)
    low = rtype.lower()
    if low == "microsoft.compute/virtualmachines":
        _seed_vm(store, vms, doc, power_hint=power_hint if isinstance(power_hint, str) else None)
    elif low == "microsoft.network/networksecuritygroups/securityrules":
        nsg_id = doc["id"].rsplit("/securityRules/", 1)[0]
        nsg = _ensure_parent_nsg(store, nsg_id, location)
        rules = [
            r
            for r in nsg["properties"].setdefault("securityRules", [])
            if str(r.get("name", "")).lower() != str(doc.get("name", "")).lower()
        ]
        rules.append(doc)
        nsg["properties"]["securityRules"] = rules
    elif low == "microsoft.network/virtualnetworks/subnets":
        vnet_id = doc["id"].rsplit("/subnets/", 1)[0]
        vnet = store.get(vnet_id)
        if vnet is None:
            vinfo = parse_id(vnet_id)
            prefix = str((doc.get("properties") or {}).get("addressPrefix") or "10.0.0.0/16")
            vnet = store.put(make_vnet(sub, rg, vinfo.get("name", "vnet"), location, [prefix]))
        subnets = [
            s
            for s in vnet["properties"].setdefault("subnets", [])
            if str(s.get("name", "")).lower() != str(doc.get("name", "")).lower()
        ]
        subnets.append(doc)
        vnet["properties"]["subnets"] = subnets
    elif low == "microsoft.network/networksecuritygroups":
        props = doc.setdefault("properties", {})
        props.setdefault("securityRules", [])
        if not props.get("defaultSecurityRules"):
            props["defaultSecurityRules"] = default_security_rules(doc["id"])
        doc.setdefault("etag", new_etag())
        store.put(doc)
    else:
        store.put(doc)


def _ensure_parent_nsg(store: Store, nsg_id: str, location: str) -> dict[str, Any]:
    nsg = store.get(nsg_id)
    if nsg is None:
        info = parse_id(nsg_id)
        nsg = make_nsg(
            info["subscription"], info["resource_group"], info.get("name", "nsg"), location
        )
        nsg["id"] = nsg_id
        nsg["properties"]["defaultSecurityRules"] = default_security_rules(nsg_id)
        store.put(nsg)
    return nsg


def _seed_vm(
    store: Store, vms: dict[str, VmRuntime], doc: dict[str, Any], *, power_hint: str | None = None
) -> None:
    for ext in doc.pop("resources", None) or []:
        if isinstance(ext, dict) and isinstance(ext.get("id"), str):
            ext = clone(ext)
            ext.setdefault("type", "Microsoft.Compute/virtualMachines/extensions")
            store.put(ext)
    props = doc.setdefault("properties", {})
    view = props.pop("instanceView", None)
    store.put(doc)
    vms.pop(doc["id"].lower(), None)
    rt = runtime_of(vms, store, doc["id"])
    if power_hint and power_hint.lower().startswith("vm "):
        rt.power_state = power_hint[3:].strip().lower()
        if rt.power_state != "running":
            rt.started_at = None
    if isinstance(view, dict):
        rt.instance_view = view
        rt.os_name = view.get("osName") or rt.os_name
        rt.os_version = view.get("osVersion") or rt.os_version
        for status in view.get("statuses") or []:
            code = str(status.get("code", ""))
            if code.lower().startswith("powerstate/"):
                rt.power_state = code.split("/", 1)[1]
        agent = view.get("vmAgent") or {}
        rt.agent_version = agent.get("vmAgentVersion") if agent else None
