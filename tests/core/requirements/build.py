"""Hand-built VmFacts for the pure requirement tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from wac_azure import (
    ExtensionFacts,
    NicFacts,
    OsInfo,
    PublicIpFacts,
    VmFacts,
    VmTarget,
)
from wac_azure._core.nsg import NetworkSecurityGroup

SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "rg"
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
NET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network"
NIC_NSG = f"{NET}/networkSecurityGroups/vm-nsg"
SUBNET_NSG = f"{NET}/networkSecurityGroups/subnet-nsg"
SUBNET = f"{NET}/virtualNetworks/vnet/subnets/default"


def rule(
    name: str,
    priority: int,
    *,
    direction: str = "Inbound",
    access: str = "Allow",
    source: str = "*",
    destination: str = "*",
    port: str = "*",
    protocol: str = "Tcp",
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "protocol": protocol,
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": destination,
            "destinationPortRange": port,
            "access": access,
            "priority": priority,
            "direction": direction,
        },
    }


def nsg(nsg_id: str, *rules: dict[str, Any]) -> NetworkSecurityGroup:
    return NetworkSecurityGroup.from_arm(
        {
            "id": nsg_id,
            "name": nsg_id.rsplit("/", 1)[-1],
            "location": "westeurope",
            "properties": {"securityRules": list(rules)},
        }
    )


def os_2022() -> OsInfo:
    return OsInfo(
        family="windows",
        kind="server",
        name="Windows Server 2022 Datacenter",
        version="10.0.20348.1",
        build=20348,
        release="2022",
        source="instanceView",
        evidence=("instanceView.osName 'Windows Server 2022 Datacenter'",),
    )


def nic(
    *,
    nsg_id: str | None = NIC_NSG,
    subnet_nsg_id: str | None = None,
    public_ip: str | None = None,
    sku: str | None = "Standard",
    name: str = "vm-nic",
    ip: str = "10.0.0.4",
    primary: bool = True,
    pools: tuple[str, ...] = (),
) -> NicFacts:
    pips = ()
    if public_ip is not None:
        pips = (
            PublicIpFacts(
                id=f"{NET}/publicIPAddresses/vm-ip",
                name="vm-ip",
                address=public_ip,
                sku=sku,
                version="IPv4",
            ),
        )
    return NicFacts(
        id=f"{NET}/networkInterfaces/{name}",
        name=name,
        primary=primary,
        private_ips=(ip,),
        public_ips=pips,
        subnet_id=SUBNET,
        nsg_id=nsg_id,
        subnet_nsg_id=subnet_nsg_id,
        load_balancer_pool_ids=pools,
    )


def facts(**changes: Any) -> VmFacts:
    """A healthy VM (Windows Server 2022, 8 GiB, running for 2 h, NIC NSG with defaults)."""
    t = VmTarget.from_parts(SUB, RG, "vm")
    base = VmFacts(
        target=t,
        vm_resource_id=t.resource_id,
        location="westeurope",
        cloud="AzurePublicCloud",
        size="Standard_D2s_v3",
        memory_mib=8192,
        cores=2,
        os=os_2022(),
        power_state="running",
        started_at=NOW - dt.timedelta(hours=2),
        agent_status="Ready",
        agent_version="2.7.41491.1141",
        nics=(nic(),),
        nsgs={NIC_NSG: nsg(NIC_NSG)},
        vnet_prefixes=("10.0.0.0/16",),
        read_at=NOW,
    )
    return attrs.evolve(base, **changes)


def admin_center(**changes: Any) -> ExtensionFacts:
    base = ExtensionFacts(
        name="AdminCenter",
        publisher="Microsoft.AdminCenter",
        type="AdminCenter",
        provisioning_state="Succeeded",
        handler_version="0.31.0.0",
        auto_upgrade=True,
        port=6516,
        salt="s",
        settings={"port": "6516", "salt": "s"},
    )
    return attrs.evolve(base, **changes)
