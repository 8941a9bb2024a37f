"""The network path of a VM in the store: its NICs, their subnets and the NSGs on the way out.

:func:`outbound_verdict` is how the emulator judges, with its own evaluator
(``backend.nsgeval``), whether a VM may reach a service tag.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from wac_azure.testing.backend.builders import SERVICE_TAGS
from wac_azure.testing.backend.nsgeval import Endpoint, Verdict, flow_allowed
from wac_azure.testing.backend.state import Store

__all__ = ["ip_availability", "outbound_verdict", "primary_nic", "subnet", "vm_nics"]


def vm_nics(store: Store, vm: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored NICs of the VM's network profile, in its order."""
    out = []
    profile = (vm.get("properties") or {}).get("networkProfile") or {}
    for ref in profile.get("networkInterfaces") or []:
        nic = store.get(str(ref.get("id", "")))
        if nic is not None:
            out.append(nic)
    return out


def primary_nic(store: Store, vm: dict[str, Any]) -> dict[str, Any] | None:
    """The VM's primary NIC: marked primary in the VM's network profile, else on the
    NIC itself, else the only/first one (as Azure treats a single-NIC VM)."""
    profile = (vm.get("properties") or {}).get("networkProfile") or {}
    refs = profile.get("networkInterfaces") or []
    for ref in refs:
        if (ref.get("properties") or {}).get("primary") is True:
            nic = store.get(str(ref.get("id", "")))
            if nic is not None:
                return nic
    nics = vm_nics(store, vm)
    for nic in nics:
        if (nic.get("properties") or {}).get("primary") is True:
            return nic
    return nics[0] if nics else None


def subnet(store: Store, subnet_id: str) -> dict[str, Any] | None:
    """The subnet (as its VNet embeds it) with this ID, or ``None``."""
    vnet_id, _, name = subnet_id.rpartition("/subnets/")
    vnet = store.get(vnet_id)
    if vnet is None:
        return None
    for sn in (vnet.get("properties") or {}).get("subnets") or []:
        if str(sn.get("name", "")).lower() == name.lower():
            return dict(sn)
    return None


def outbound_verdict(store: Store, vm: dict[str, Any], tag: str, port: int = 443) -> Verdict:
    """Whether the VM's primary NIC path lets TCP ``port`` out to service tag ``tag``."""
    nic = primary_nic(store, vm)
    if nic is None:
        return Verdict(True, None, None)
    nprops = nic.get("properties") or {}
    ipconfs = nprops.get("ipConfigurations") or []
    primary = next(
        (c for c in ipconfs if (c.get("properties") or {}).get("primary")),
        ipconfs[0] if ipconfs else {},
    )
    cprops = primary.get("properties") or {}
    subnet_id = str((cprops.get("subnet") or {}).get("id", ""))
    nsgs: list[dict[str, Any]] = []
    nic_nsg = (nprops.get("networkSecurityGroup") or {}).get("id")
    if nic_nsg and store.get(nic_nsg) is not None:
        nsgs.append(store.get(nic_nsg) or {})
    vnet_prefixes: list[str] = []
    if subnet_id:
        sn = subnet(store, subnet_id)
        sn_nsg = ((sn or {}).get("properties") or {}).get("networkSecurityGroup") or {}
        if sn_nsg.get("id") and store.get(sn_nsg["id"]) is not None:
            nsgs.append(store.get(sn_nsg["id"]) or {})
        vnet = store.get(subnet_id.rpartition("/subnets/")[0])
        vnet_prefixes = list(
            ((vnet or {}).get("properties") or {}).get("addressSpace", {}).get("addressPrefixes")
            or []
        )
    ip = str(cprops.get("privateIPAddress") or "10.0.0.4").split("/")[0]
    asgs = tuple(str(a.get("id", "")) for a in cprops.get("applicationSecurityGroups") or [])
    prefixes = tuple(SERVICE_TAGS.get(tag, ("", "", []))[2])
    return flow_allowed(
        nsgs,
        direction="Outbound",
        protocol="Tcp",
        src=Endpoint(ip=ip, asgs=asgs),
        dst=Endpoint(tag=tag, tag_prefixes=prefixes),
        dst_port=port,
        vnet=vnet_prefixes,
    )


_NIC_T = "Microsoft.Network/networkInterfaces"
#: How many free addresses Network suggests when the one asked about is taken (the spec
#: example VirtualNetworkCheckIPAddressAvailability.json lists five).
_SUGGESTED = 5


def _held_in(store: Store, vnet_id: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The private addresses of the ipConfigurations of every NIC in the VNet's subnets."""
    prefix = vnet_id.lower() + "/subnets/"
    out: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for nic in store.of_type(_NIC_T):
        for conf in (nic.get("properties") or {}).get("ipConfigurations") or []:
            cprops = conf.get("properties") or {}
            sid = str((cprops.get("subnet") or {}).get("id") or "").lower()
            address = cprops.get("privateIPAddress")
            if sid.startswith(prefix) and address:
                try:
                    out.add(ipaddress.ip_address(str(address).split("/")[0]))
                except ValueError:
                    continue
    return out


def ip_availability(store: Store, vnet: dict[str, Any], address: str) -> dict[str, Any] | None:
    """Network's ``CheckIPAddressAvailability`` answer for ``address`` in ``vnet``.

    Judged against the ipConfigurations of the NICs in the VNet's subnets and the five
    addresses Azure reserves in each subnet (the first four and the last, Virtual
    Network FAQ): taken or reserved -> ``available: false`` and up to five free
    addresses of its subnet from the next one on (spec example
    VirtualNetworkCheckIPAddressAvailability.json), reserved ones with
    ``isPlatformReserved: true``; free -> ``available: true``, ``isPlatformReserved:
    false`` and no list (the answers quoted in Azure/azure-cli#13259 and
    Azure/azure-rest-api-specs#10596). ``None`` when no subnet of the VNet contains
    the address (the caller answers an error).
    """
    ip = ipaddress.ip_address(address)
    net = None
    for sn in (vnet.get("properties") or {}).get("subnets") or []:
        prefixes = [(sn.get("properties") or {}).get("addressPrefix")]
        prefixes += (sn.get("properties") or {}).get("addressPrefixes") or []
        for prefix in prefixes:
            try:
                candidate = ipaddress.ip_network(str(prefix), strict=False)
            except ValueError:
                continue
            if candidate.version == ip.version and ip in candidate:
                net = candidate
    if net is None:
        return None
    first = int(net.network_address)
    last = int(net.broadcast_address)

    def reserved(value: int) -> bool:
        return value - first < 4 or value == last

    held = _held_in(store, str(vnet.get("id", "")))
    if not reserved(int(ip)) and ip not in held:
        return {"available": True, "isPlatformReserved": False}
    free: list[str] = []
    value = int(ip) + 1
    while value < last and len(free) < _SUGGESTED:
        candidate_ip = ipaddress.ip_address(value)
        if not reserved(value) and candidate_ip not in held:
            free.append(str(candidate_ip))
        value += 1
    return {
        "available": False,
        "availableIPAddresses": free,
        "isPlatformReserved": reserved(int(ip)),
    }
