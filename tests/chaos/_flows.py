"""Which flows a VM's NSGs let through, judged by the emulator's own evaluator.

``flows(state, vm)`` answers a fixed set of questions about one VM from the NSGs, NICs
and VNets as read through the SDK (``_world.State``), with
``wac_azure.testing.backend.nsgeval`` (independent of the library's ``wac_azure.nsg``):
the flows an ``enable`` with ``ONPREM`` asks for, and flows it must never open.
A run that is cancelled, faulted or raced by another writer must leave each VM's
answers either as they were before it or as a complete run leaves them.
"""

from __future__ import annotations

from typing import Any

from wac_azure.testing.backend.builders import SERVICE_TAGS
from wac_azure.testing.backend.nsgeval import Endpoint, flow_allowed

from ._world import ONPREM_HOST, PORT, State

_WAC = Endpoint(tag="WindowsAdminCenter", tag_prefixes=tuple(SERVICE_TAGS["WindowsAdminCenter"][2]))

#: name -> (direction, protocol, source, destination, port); "vm" is the VM's private IP.
QUESTIONS: dict[str, tuple[str, str, Endpoint | str, Endpoint | str, int]] = {
    # asked for: the port from the access range, and outbound 443 to the service
    "in_from_access": ("Inbound", "Tcp", ONPREM_HOST, "vm", PORT),
    "out_to_wac": ("Outbound", "Tcp", "vm", _WAC, 443),
    # never asked for: the port from elsewhere, other ports, outbound elsewhere
    "in_from_next_range": ("Inbound", "Tcp", "10.11.7.7", "vm", PORT),
    "in_from_internet": ("Inbound", "Tcp", "198.51.100.99", "vm", PORT),
    "in_other_port": ("Inbound", "Tcp", ONPREM_HOST, "vm", 3389),
    "in_port_udp": ("Inbound", "Udp", ONPREM_HOST, "vm", PORT),
    "out_to_internet": ("Outbound", "Tcp", "vm", "198.51.100.99", 443),
}
ASKED = ("in_from_access", "out_to_wac")


def path(
    state: State, vm: str
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The VM's private IP, its inbound and outbound NSG path, and its VNet's prefixes."""
    doc = state.vms[vm.lower()]
    nic = state.nics[doc["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower()]
    ipc = nic["properties"]["ipConfigurations"][0]["properties"]
    vnet_id, _, subnet_name = ipc["subnet"]["id"].lower().rpartition("/subnets/")
    vnet = state.vnets[vnet_id]
    subnet = next(s for s in vnet["properties"]["subnets"] if s["name"].lower() == subnet_name)
    nic_nsg = (nic["properties"].get("networkSecurityGroup") or {}).get("id")
    sub_nsg = ((subnet.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
    nic_doc = [state.nsgs[nic_nsg.lower()]] if nic_nsg else []
    sub_doc = [state.nsgs[sub_nsg.lower()]] if sub_nsg else []
    prefixes = list(vnet["properties"]["addressSpace"]["addressPrefixes"])
    return ipc["privateIPAddress"], sub_doc + nic_doc, nic_doc + sub_doc, prefixes


def flows(state: State, vm: str) -> dict[str, bool]:
    """The answer to each of :data:`QUESTIONS` for ``vm``."""
    ip, inbound, outbound, vnet = path(state, vm)

    def end(e: Endpoint | str) -> Endpoint:
        return e if isinstance(e, Endpoint) else Endpoint(ip=ip if e == "vm" else e)

    out = {}
    for name, (direction, proto, src, dst, port) in QUESTIONS.items():
        verdict = flow_allowed(
            inbound if direction == "Inbound" else outbound,
            direction=direction,
            protocol=proto,
            src=end(src),
            dst=end(dst),
            dst_port=port,
            vnet=vnet,
        )
        out[name] = verdict.allowed
    return out


def all_flows(state: State, vms: list[str]) -> dict[str, dict[str, bool]]:
    return {vm: flows(state, vm) for vm in vms}


def half_written(
    before: dict[str, dict[str, bool]],
    after: dict[str, dict[str, bool]],
    now: dict[str, dict[str, bool]],
) -> dict[str, dict[str, bool]]:
    """The VMs whose answers are neither all as ``before`` nor all as ``after``."""
    return {vm: now[vm] for vm in now if now[vm] not in (before[vm], after[vm])}


def opened_beyond(
    before: dict[str, dict[str, bool]], now: dict[str, dict[str, bool]]
) -> dict[str, list[str]]:
    """Flows allowed now that were not asked for and not allowed before."""
    out: dict[str, list[str]] = {}
    for vm, answers in now.items():
        extra = [q for q, ok in answers.items() if ok and q not in ASKED and not before[vm][q]]
        if extra:
            out[vm] = extra
    return out
