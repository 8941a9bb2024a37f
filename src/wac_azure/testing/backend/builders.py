"""Realistic ARM documents for emulated resources (modelled on shared/fixtures/arm)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import attrs

from wac_azure.testing.backend.state import new_etag

__all__ = [
    "OS_CATALOG",
    "SERVICE_TAGS",
    "VM_SIZES",
    "OsSpec",
    "default_security_rules",
    "guess_os",
    "make_nic",
    "make_nsg",
    "make_public_ip",
    "make_subnet",
    "make_vm",
    "make_vnet",
    "service_tags_document",
    "vm_memory_mib",
    "vm_sizes_document",
    "vm_skus_document",
]

Doc = dict[str, Any]


@attrs.frozen
class OsSpec:
    """What an OS choice of :meth:`ArmEmulator.add_windows_vm` puts into the VM."""

    os_type: str  # Windows | Linux
    publisher: str
    offer: str
    sku: str
    os_name: str
    os_version: str

    @property
    def exact_version(self) -> str:
        """``imageReference.exactVersion``: the image build, consistent with ``os_version``."""
        if self.os_type != "Windows":
            return "22.04.202410020"
        _, _, build, revision = self.os_version.split(".")
        return f"{build}.{revision}.241006"


OS_CATALOG: dict[str, OsSpec] = {
    "2012-R2": OsSpec(
        "Windows",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2012-R2-Datacenter",
        "Windows Server 2012 R2 Datacenter",
        "6.3.9600.21620",
    ),
    "2016": OsSpec(
        "Windows",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2016-Datacenter",
        "Windows Server 2016 Datacenter",
        "10.0.14393.7428",
    ),
    "2019": OsSpec(
        "Windows",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2019-Datacenter-gensecond",
        "Windows Server 2019 Datacenter",
        "10.0.17763.6414",
    ),
    "2022": OsSpec(
        "Windows",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-azure-edition",
        "Windows Server 2022 Datacenter Azure Edition",
        "10.0.20348.2762",
    ),
    "2025": OsSpec(
        "Windows",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2025-datacenter-azure-edition",
        "Windows Server 2025 Datacenter Azure Edition",
        "10.0.26100.2314",
    ),
    "windows-11": OsSpec(
        "Windows",
        "MicrosoftWindowsDesktop",
        "windows-11",
        "win11-23h2-pro",
        "Windows 11 Pro",
        "10.0.22631.4317",
    ),
    "ubuntu-22.04": OsSpec(
        "Linux",
        "Canonical",
        "0001-com-ubuntu-server-jammy",
        "22_04-lts-gen2",
        "ubuntu",
        "22.04",
    ),
}


def guess_os(vm: Doc) -> OsSpec | None:
    """The catalogue OS a VM's marketplace image reference names (``None`` if none does)."""
    props = vm.get("properties") or {}
    ref = (props.get("storageProfile") or {}).get("imageReference") or {}
    sku = str(ref.get("sku", "")).lower()
    offer = str(ref.get("offer", "")).lower()
    if (
        "windowsserver" in offer
        or str(ref.get("publisher", "")).lower() == "microsoftwindowsserver"
    ):
        for key in ("2012-R2", "2016", "2019", "2022", "2025"):
            if sku.startswith(key.lower()):
                return OS_CATALOG[key]
    if "windows-11" in offer or "win11" in sku:
        return OS_CATALOG["windows-11"]
    if "ubuntu" in offer:
        return OS_CATALOG["ubuntu-22.04"]
    return None


# (name, cores, memoryInMB, maxDataDiskCount, resourceDiskSizeInMB)
_SIZES: list[tuple[str, int, int, int, int]] = [
    ("Standard_B1s", 1, 1024, 2, 4096),
    ("Standard_B1ms", 1, 2048, 2, 4096),
    ("Standard_B2s", 2, 4096, 4, 8192),
    ("Standard_B2ms", 2, 8192, 4, 16384),
    ("Standard_A1_v2", 1, 2048, 2, 10240),
    ("Standard_A2_v2", 2, 4096, 4, 20480),
    ("Standard_DS1_v2", 1, 3584, 4, 7168),
    ("Standard_DS2_v2", 2, 7168, 8, 14336),
    ("Standard_DS3_v2", 4, 14336, 16, 28672),
    ("Standard_D2s_v3", 2, 8192, 4, 16384),
    ("Standard_D4s_v3", 4, 16384, 8, 32768),
    ("Standard_D2s_v5", 2, 8192, 4, 0),
    ("Standard_D4s_v5", 4, 16384, 8, 0),
    ("Standard_D2as_v5", 2, 8192, 4, 0),
    ("Standard_E2s_v5", 2, 16384, 4, 0),
    ("Standard_F2s_v2", 2, 4096, 4, 16384),
]

#: VM sizes every emulated location offers (``memoryInMB`` as ARM reports it).
VM_SIZES: dict[str, Doc] = {
    name.lower(): {
        "name": name,
        "numberOfCores": cores,
        "osDiskSizeInMB": 1047552,
        "resourceDiskSizeInMB": disk,
        "memoryInMB": mem,
        "maxDataDiskCount": disks,
    }
    for name, cores, mem, disks, disk in _SIZES
}


def vm_memory_mib(vm: Doc) -> int | None:
    """The memory of the VM's size in MiB (``None`` for a size the emulator does not know)."""
    size = str(((vm.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize", ""))
    found = VM_SIZES.get(size.lower())
    return int(found["memoryInMB"]) if found else None


def vm_sizes_document() -> Doc:
    return {"value": [dict(v) for v in VM_SIZES.values()]}


def _sku_family(name: str) -> str:
    # Standard_D2s_v3 -> standardDSv3Family (Azure's naming, close enough for tests)
    core = name.split("_", 1)[1] if "_" in name else name
    letters = "".join(c for c in core.split("_")[0] if c.isalpha())
    version = core.split("_")[1] if "_" in core else ""
    return f"standard{letters.upper()}{version}Family"


def vm_skus_document(location: str) -> Doc:
    """Resource SKUs of the known VM sizes in ``location`` (``Microsoft.Compute/skus``).

    Shape of the spec example ``ListAvailableResourceSkusForARegion.json``: capabilities
    are ``{name, value}`` pairs whose values are all strings (``MemoryGB`` ``"0.75"``).
    """
    value = []
    for name, cores, mem, disks, disk in _SIZES:
        caps = [
            ("MaxResourceVolumeMB", str(disk)),
            ("OSVhdSizeMB", "1047552"),
            ("vCPUs", str(cores)),
            ("HyperVGenerations", "V1,V2"),
            ("MemoryGB", f"{mem / 1024:g}"),
            ("MaxDataDiskCount", str(disks)),
            ("LowPriorityCapable", "True"),
            ("PremiumIO", "True" if "s" in name.split("_")[1].lower()[1:] else "False"),
            ("vCPUsAvailable", str(cores)),
            ("vCPUsPerCore", "1"),
            ("EphemeralOSDiskSupported", "False"),
            ("AcceleratedNetworkingEnabled", "True"),
            ("RdmaEnabled", "False"),
            ("MaxNetworkInterfaces", "2"),
        ]
        value.append(
            {
                "resourceType": "virtualMachines",
                "locations": [location],
                "capabilities": [{"name": k, "value": v} for k, v in caps],
                "locationInfo": [{"location": location, "zones": ["1", "2", "3"]}],
                "name": name,
                "tier": "Standard",
                "size": name.split("_", 1)[1],
                "family": _sku_family(name),
                "restrictions": [],
            }
        )
    return {"value": value}


#: Service tags (global entries and a few regional ones), as ``serviceTags`` lists them.
SERVICE_TAGS: dict[str, tuple[str, str, list[str]]] = {
    # name: (region, systemService, addressPrefixes)
    "WindowsAdminCenter": (
        "",
        "WindowsAdminCenter",
        ["13.66.201.96/28", "20.21.34.136/29", "40.65.108.112/28", "52.247.205.208/28"],
    ),
    "AzureActiveDirectory": (
        "",
        "AzureAD",
        ["20.190.128.0/18", "40.126.0.0/18", "2603:1006:2000::/48"],
    ),
    "AzureCloud": ("", "", ["13.64.0.0/11", "20.0.0.0/8", "40.64.0.0/10", "52.224.0.0/11"]),
    "AzureCloud.westeurope": (
        "westeurope",
        "",
        ["13.69.0.0/17", "20.50.0.0/18", "40.68.0.0/14", "52.232.0.0/17"],
    ),
    "AzureLoadBalancer": ("", "", ["168.63.129.16/32"]),
    "AzureMonitor": ("", "AzureMonitor", ["13.65.96.175/32", "20.37.227.112/28"]),
    "Storage": ("", "AzureStorage", ["13.65.107.32/28", "20.38.96.0/19", "52.239.128.0/18"]),
    "Storage.WestEurope": ("westeurope", "AzureStorage", ["20.38.108.0/23", "52.239.140.0/22"]),
    "GuestAndHybridManagement": ("", "Automation", ["13.65.24.129/32", "20.36.117.32/29"]),
    "AzureResourceManager": ("", "AzureResourceManager", ["13.66.141.176/28", "20.37.76.0/23"]),
}


def service_tags_document(subscription: str, location: str) -> Doc:
    values = [
        {
            "name": name,
            "id": name,
            "properties": {
                "changeNumber": "42",
                "region": region,
                "state": "GA",
                "systemService": service,
                "addressPrefixes": list(prefixes),
                "networkFeatures": ["API", "NSG", "UDR", "FW"],
            },
        }
        for name, (region, service, prefixes) in SERVICE_TAGS.items()
    ]
    return {
        "name": "Public",
        "id": f"/subscriptions/{subscription}/providers/Microsoft.Network/serviceTags/Public",
        "type": "Microsoft.Network/serviceTags",
        "changeNumber": "142",
        "cloud": "Public",
        "values": values,
    }


_DEFAULT_RULES = [
    (
        "AllowVnetInBound",
        "Allow inbound traffic from all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Inbound",
    ),
    (
        "AllowAzureLoadBalancerInBound",
        "Allow inbound traffic from azure load balancer",
        "AzureLoadBalancer",
        "*",
        "Allow",
        65001,
        "Inbound",
    ),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    (
        "AllowVnetOutBound",
        "Allow outbound traffic from all VMs to all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Outbound",
    ),
    (
        "AllowInternetOutBound",
        "Allow outbound traffic from all VMs to Internet",
        "*",
        "Internet",
        "Allow",
        65001,
        "Outbound",
    ),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
]


def default_security_rules(nsg_id: str) -> list[Doc]:
    """The six default rules every NSG has."""
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": new_etag(),
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "provisioningState": "Succeeded",
                "description": desc,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "sourceAddressPrefixes": [],
                "destinationAddressPrefix": dst,
                "destinationAddressPrefixes": [],
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "access": access,
                "priority": priority,
                "direction": direction,
            },
        }
        for name, desc, src, dst, access, priority, direction in _DEFAULT_RULES
    ]


def _rid(sub: str, rg: str, provider_type: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}"


def make_nsg(sub: str, rg: str, name: str, location: str) -> Doc:
    nsg_id = _rid(sub, rg, "Microsoft.Network/networkSecurityGroups", name)
    return {
        "name": name,
        "id": nsg_id,
        "etag": new_etag(),
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "securityRules": [],
            "defaultSecurityRules": default_security_rules(nsg_id),
        },
    }


def make_subnet(vnet_id: str, name: str, prefix: str, nsg_id: str | None = None) -> Doc:
    props: Doc = {
        "provisioningState": "Succeeded",
        "addressPrefix": prefix,
        "ipConfigurations": [],
        "privateEndpointNetworkPolicies": "Disabled",
        "privateLinkServiceNetworkPolicies": "Enabled",
    }
    if nsg_id:
        props["networkSecurityGroup"] = {"id": nsg_id}
    return {
        "name": name,
        "id": f"{vnet_id}/subnets/{name}",
        "etag": new_etag(),
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": props,
    }


def make_vnet(sub: str, rg: str, name: str, location: str, prefixes: list[str]) -> Doc:
    return {
        "name": name,
        "id": _rid(sub, rg, "Microsoft.Network/virtualNetworks", name),
        "etag": new_etag(),
        "type": "Microsoft.Network/virtualNetworks",
        "location": location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "addressSpace": {"addressPrefixes": list(prefixes)},
            "subnets": [],
            "virtualNetworkPeerings": [],
            "enableDdosProtection": False,
        },
    }


def make_public_ip(sub: str, rg: str, name: str, location: str, address: str) -> Doc:
    return {
        "name": name,
        "id": _rid(sub, rg, "Microsoft.Network/publicIPAddresses", name),
        "etag": new_etag(),
        "type": "Microsoft.Network/publicIPAddresses",
        "location": location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "ipAddress": address,
            "publicIPAddressVersion": "IPv4",
            "publicIPAllocationMethod": "Static",
            "idleTimeoutInMinutes": 4,
            "ipTags": [],
        },
    }


def _mac(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest().upper()
    return "00-0D-3A-" + "-".join(h[i : i + 2] for i in range(0, 6, 2))


def make_nic(
    sub: str,
    rg: str,
    name: str,
    location: str,
    *,
    subnet_id: str,
    private_ip: str,
    vm_id: str,
    nsg_id: str | None,
    public_ip_id: str | None,
) -> Doc:
    nic_id = _rid(sub, rg, "Microsoft.Network/networkInterfaces", name)
    ipconf: Doc = {
        "provisioningState": "Succeeded",
        "privateIPAddress": private_ip,
        "privateIPAllocationMethod": "Dynamic",
        "subnet": {"id": subnet_id},
        "primary": True,
        "privateIPAddressVersion": "IPv4",
    }
    if public_ip_id:
        ipconf["publicIPAddress"] = {"id": public_ip_id}
    props: Doc = {
        "provisioningState": "Succeeded",
        "resourceGuid": str(uuid.uuid4()),
        "ipConfigurations": [
            {
                "name": "ipconfig1",
                "id": f"{nic_id}/ipConfigurations/ipconfig1",
                "etag": new_etag(),
                "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                "properties": ipconf,
            }
        ],
        "dnsSettings": {
            "dnsServers": [],
            "appliedDnsServers": [],
            "internalDomainNameSuffix": "emulator.ax.internal.cloudapp.net",
        },
        "macAddress": _mac(nic_id),
        "enableAcceleratedNetworking": False,
        "enableIPForwarding": False,
        "primary": True,
        "virtualMachine": {"id": vm_id},
        "nicType": "Standard",
        "vnetEncryptionSupported": False,
    }
    if nsg_id:
        props["networkSecurityGroup"] = {"id": nsg_id}
    return {
        "name": name,
        "id": nic_id,
        "etag": new_etag(),
        "type": "Microsoft.Network/networkInterfaces",
        "location": location,
        "properties": props,
    }


def make_vm(
    sub: str,
    rg: str,
    name: str,
    location: str,
    *,
    size: str,
    os: OsSpec,
    nic_ids: list[str],
    created: dt.datetime,
) -> Doc:
    vm_id = _rid(sub, rg, "Microsoft.Compute/virtualMachines", name)
    os_profile: Doc = {
        "computerName": name[:15],
        "adminUsername": "azureuser",
        "secrets": [],
        "allowExtensionOperations": True,
        "requireGuestProvisionSignal": True,
    }
    if os.os_type == "Windows":
        os_profile["windowsConfiguration"] = {
            "provisionVMAgent": True,
            "enableAutomaticUpdates": True,
            "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"},
        }
    else:
        os_profile["linuxConfiguration"] = {
            "disablePasswordAuthentication": True,
            "provisionVMAgent": True,
        }
    disk = f"{name}_OsDisk_1_{hashlib.sha256(vm_id.lower().encode()).hexdigest()[:32]}"
    return {
        "name": name,
        "id": vm_id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "etag": '"1"',
        "properties": {
            "vmId": str(uuid.uuid5(uuid.NAMESPACE_URL, vm_id.lower())),
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": {
                    "publisher": os.publisher,
                    "offer": os.offer,
                    "sku": os.sku,
                    "version": "latest",
                    "exactVersion": os.exact_version,
                },
                "osDisk": {
                    "osType": os.os_type,
                    "name": disk,
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {
                        "storageAccountType": "Premium_LRS",
                        "id": _rid(sub, rg.upper(), "Microsoft.Compute/disks", disk),
                    },
                    "deleteOption": "Delete",
                    "diskSizeGB": 127 if os.os_type == "Windows" else 30,
                },
                "dataDisks": [],
            },
            "osProfile": os_profile,
            "networkProfile": {
                "networkInterfaces": [
                    {"id": nid, "properties": {"primary": i == 0}} for i, nid in enumerate(nic_ids)
                ]
            },
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            "provisioningState": "Succeeded",
            "timeCreated": created.isoformat(),
        },
    }
