"""Turn the Azure CLI's flattened JSON back into ARM's wire shape (for ``emu.seed``).

``az vm show -o json`` (and ``az vm show -d``, ``az vm get-instance-view``,
``az vm extension show``, ``az network nic|nsg|public-ip|vnet show``...) print
the SDK models flattened: no ``properties`` envelope (its members are hoisted
to the top level), ``null`` for every unset attribute, ``resourceGroup`` added
to every object with an ``id``, a few CLI-only keys (``powerState``,
``publicIps``, ``privateIps``, ``fqdns``, ``macAddresses``), an extension's
``properties.type`` renamed ``typePropertiesType``, SDK attribute names camel-cased
where the wire name differs (``diskSizeGb`` for ``diskSizeGB``, ``provisionVmAgent``,
``privateIpAddress`` from older CLIs), and nested sub-resources
(a VM's NIC references, a NIC's IP configurations, an NSG's rules, a VNet's
subnets) flattened the same way.

:func:`to_wire` undoes that: envelope keys stay at the top, everything else
goes under ``properties``, nulls and CLI-only keys are dropped, keys get their
wire names back, and the known
sub-resource collections are wrapped again. Objects that are flat in the wire
format too (``imageReference``, ``managedDisk``, ``hardwareProfile``, an
``instanceView``...) are left flat. A document already in wire shape (it has a
``properties`` object) is returned unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AZ_ONLY_KEYS", "is_flattened", "to_wire"]

#: Top-level keys of an ARM resource that are not under ``properties``.
ENVELOPE_KEYS = frozenset(
    {
        "id",
        "name",
        "type",
        "location",
        "tags",
        "zones",
        "identity",
        "plan",
        "etag",
        "extendedLocation",
        "managedBy",
        "sku",
        "kind",
        "systemData",
        "resources",
    }
)

#: Keys of a sub-resource (a NIC's IP configuration, an NSG rule, a subnet) outside ``properties``.
SUB_ENVELOPE_KEYS = frozenset({"id", "name", "type", "etag"})

#: Keys the Azure CLI adds at the top level that ARM never sends.
AZ_ONLY_KEYS = frozenset(
    {"resourceGroup", "powerState", "publicIps", "privateIps", "fqdns", "macAddresses"}
)

# The CLI prints SDK attribute names camel-cased (``disk_size_gb`` -> ``diskSizeGb``); where
# that differs from the wire name, the wire name. Generated from the azure-mgmt-compute 39 /
# azure-mgmt-network 33 models reachable from a VM, its extensions and instance view, a
# NIC, an NSG, a VNet, a subnet and a public IP (none of the left-hand names is a wire name).
_CLI_NAMES = {
    "alignRegionalDisksToVmZone": "alignRegionalDisksToVMZone",
    "applicationGatewayIpConfigurations": "applicationGatewayIPConfigurations",
    "backendIpConfiguration": "backendIPConfiguration",
    "backendIpConfigurations": "backendIPConfigurations",
    "destinationIpAddress": "destinationIPAddress",
    "destinationLoadBalancerFrontEndIpConfiguration": "destinationLoadBalancerFrontEndIPConfiguration",  # noqa: E501
    "destinationNetworkInterfaceIpConfiguration": "destinationNetworkInterfaceIPConfiguration",
    "diskIopsReadOnly": "diskIOPSReadOnly",
    "diskIopsReadWrite": "diskIOPSReadWrite",
    "diskSizeGb": "diskSizeGB",
    "enableFloatingIp": "enableFloatingIP",
    "enableIpForwarding": "enableIPForwarding",
    "enableVmAgentPlatformUpdates": "enableVMAgentPlatformUpdates",
    "frontendIpConfiguration": "frontendIPConfiguration",
    "inVmAccessControlProfileReferenceId": "inVMAccessControlProfileReferenceId",
    "isVmInStandbyPool": "isVMInStandbyPool",
    "linkedPublicIpAddress": "linkedPublicIPAddress",
    "loadBalancerFrontendIpConfiguration": "loadBalancerFrontendIPConfiguration",
    "networkInterfaceIpConfiguration": "networkInterfaceIPConfiguration",
    "preferredVmSize": "preferredVMSize",
    "privateIpAddress": "privateIPAddress",
    "privateIpAddressPrefixLength": "privateIPAddressPrefixLength",
    "privateIpAddressVersion": "privateIPAddressVersion",
    "privateIpAllocationMethod": "privateIPAllocationMethod",
    "provisionVmAgent": "provisionVMAgent",
    "publicIpAddress": "publicIPAddress",
    "publicIpAddressConfiguration": "publicIPAddressConfiguration",
    "publicIpAddressVersion": "publicIPAddressVersion",
    "publicIpAllocationMethod": "publicIPAllocationMethod",
    "publicIpPrefix": "publicIPPrefix",
    "servicePublicIpAddress": "servicePublicIPAddress",
    "ultraSsdEnabled": "ultraSSDEnabled",
    "vCpusAvailable": "vCPUsAvailable",
    "vCpusPerCore": "vCPUsPerCore",
    "winRm": "winRM",
}

# Members whose contents are the user's data: kept verbatim (nulls included).
_OPAQUE = frozenset({"settings", "protectedSettings", "tags", "parameters"})

# Sub-resources inside ``properties``, per resource type: a dotted path (plain objects on the
# way) to a sub-resource or a list of them, mapped to the sub-resources inside *their*
# ``properties``. Anything not listed is flat in the wire format.
_Spec = dict[str, "_Spec"]

_SUBRESOURCES: dict[str, _Spec] = {
    "microsoft.compute/virtualmachines": {
        "networkProfile.networkInterfaces": {},
        "networkProfile.networkInterfaceConfigurations": {
            "ipConfigurations": {"publicIPAddressConfiguration": {}}
        },
    },
    "microsoft.network/networkinterfaces": {
        "ipConfigurations": {"subnet": {}, "publicIPAddress": {}},
        "tapConfigurations": {},
        "networkSecurityGroup": {},
    },
    "microsoft.network/networkinterfaces/ipconfigurations": {
        "subnet": {},
        "publicIPAddress": {},
    },
    "microsoft.network/networksecuritygroups": {
        "securityRules": {},
        "defaultSecurityRules": {},
        "networkInterfaces": {},
        "subnets": {},
    },
    "microsoft.network/virtualnetworks": {
        "subnets": {"networkSecurityGroup": {}, "routeTable": {}, "ipConfigurations": {}},
        "virtualNetworkPeerings": {},
    },
    "microsoft.network/virtualnetworks/subnets": {
        "networkSecurityGroup": {},
        "routeTable": {},
        "ipConfigurations": {},
    },
    "microsoft.network/publicipaddresses": {"ipConfiguration": {}},
}


def _type_of(doc: dict[str, Any]) -> str:
    rtype = doc.get("type")
    if isinstance(rtype, str) and "/" in rtype:
        return rtype.lower()
    rid = doc.get("id")
    if not isinstance(rid, str):
        return ""
    parts = [p for p in rid.split("/") if p]
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    i = len(low) - 1 - low[::-1].index("providers")
    rest = parts[i + 1 :]
    if not rest:
        return ""
    return "/".join([rest[0], *rest[1::2]]).lower()


def is_flattened(document: dict[str, Any]) -> bool:
    """Whether ``document`` looks like the Azure CLI's flattened output (no ``properties``).

    A document with a ``properties`` object is in wire shape; one whose keys are
    all envelope keys has nothing to move.
    """
    if isinstance(document.get("properties"), dict):
        return False
    return any(k not in ENVELOPE_KEYS and k != "properties" for k in document)


def _clean(value: Any) -> Any:
    """Drop nulls, and ``resourceGroup`` beside an ``id``, and give keys their wire names,
    recursively (opaque members kept as they are)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        has_id = isinstance(value.get("id"), str)
        for key, item in value.items():
            if item is None:
                continue
            if key == "resourceGroup" and has_id:
                continue
            wire: str = _CLI_NAMES.get(str(key), str(key))
            if wire != key and wire in value:
                wire = key  # both spellings present: keep each as it is
            out[wire] = item if key in _OPAQUE else _clean(item)
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _wrap(item: Any, spec: _Spec) -> Any:
    """One flattened sub-resource (or a list of them) back into ``{id, name, ..., properties}``."""
    if isinstance(item, list):
        return [_wrap(v, spec) for v in item]
    if not isinstance(item, dict) or isinstance(item.get("properties"), dict):
        return item
    outside = {k: v for k, v in item.items() if k in SUB_ENVELOPE_KEYS}
    props = {k: v for k, v in item.items() if k not in SUB_ENVELOPE_KEYS and k != "properties"}
    if not props:
        return outside
    _apply(props, spec)
    return {**outside, "properties": props}


def _apply(props: dict[str, Any], spec: _Spec) -> None:
    """Wrap the sub-resources ``spec`` names inside ``props`` (in place)."""
    for path, inner in spec.items():
        *walk, last = path.split(".")
        node: Any = props
        for step in walk:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = _wrap(node[last], inner)


def _resource(doc: dict[str, Any]) -> dict[str, Any]:
    if not is_flattened(doc):
        return doc
    rtype = _type_of(doc)
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "properties":
            continue
        if key in ENVELOPE_KEYS:
            out[key] = value
        elif key == "typePropertiesType":
            props["type"] = value  # the CLI's name for an extension's properties.type
        elif key not in AZ_ONLY_KEYS:
            props[key] = value
    _apply(props, _SUBRESOURCES.get(rtype, {}))
    if isinstance(out.get("resources"), list):
        out["resources"] = [_resource(r) if isinstance(r, dict) else r for r in out["resources"]]
    out["properties"] = props
    return out


def to_wire(document: dict[str, Any]) -> dict[str, Any]:
    """ARM's wire shape of a resource document, flattened by the Azure CLI or not.

    Wire-shape documents (with a ``properties`` object) come back unchanged
    (the same object); flattened ones as a new document.
    """
    if not is_flattened(document):
        return document
    cleaned = _clean({k: v for k, v in document.items() if k not in AZ_ONLY_KEYS})
    return _resource(cleaned)
