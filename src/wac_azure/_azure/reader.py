"""Reading one VM's facts: :func:`read_vm_facts`.

Everything the requirement checks, the network planner and the extension
manager need to know about a VM is read here, once, concurrently where
possible (VM with instance view, sizes, NICs, public IPs, subnets, VNets,
NSGs), and turned into an immutable :class:`~wac_azure.VmFacts` by the pure
parsers of ``_core.facts``. Reads that VMs share (an NSG, a VNet, a location's
sizes) go through the session cache. A resource that cannot be read becomes a
note on the facts, not an exception, unless it is the VM itself.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from wac_azure._azure.cache import CacheSlot
from wac_azure._azure.deadline import within
from wac_azure._azure.errors import SDK_ERRORS, translate
from wac_azure._azure.inventory import read_vm_sizes
from wac_azure._azure.session import AzureSession
from wac_azure._core.facts import (
    NicFacts,
    VmFacts,
    as_json,
    dig,
    facts_from_arm,
    id_of,
    mappings,
    normalize_location,
    parse_nic,
    split_resource_id,
    subnet_id_of,
    vnet_id_of_subnet,
)
from wac_azure._core.ids import VmTarget
from wac_azure._core.validate import check_timeout

# --------------------------------------------------------------------------- the reader

_log = logging.getLogger(__name__)
#: The VM sizes of a subscription and location: name -> (memory MiB, vCPUs).
VM_SIZES: CacheSlot[Mapping[str, tuple[int | None, int | None]]] = CacheSlot("vm sizes")
#: A network resource read in flight (shared by VMs that share an NSG or a VNet).
_IN_FLIGHT: CacheSlot[object] = CacheSlot("network read in flight")
_NIC_READ = "Microsoft.Network/networkInterfaces/read"
_PIP_READ = "Microsoft.Network/publicIPAddresses/read"
_VNET_READ = "Microsoft.Network/virtualNetworks/read"
_SUBNET_READ = "Microsoft.Network/virtualNetworks/subnets/read"
_NSG_READ = "Microsoft.Network/networkSecurityGroups/read"


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


class _Reader:
    """One :func:`read_vm_facts` call: its reads, its notes."""

    def __init__(self, session: AzureSession, target: VmTarget) -> None:
        self.session = session
        self.target = target
        self.notes: list[str] = []

    async def get(self, what: str, action: str, resource_id: str, call: Any) -> Any:
        """Await ``call()``; wire JSON, or ``None`` (noted) when the resource is missing."""
        errors = SDK_ERRORS
        try:
            return as_json(await call())
        except errors as exc:
            if _status_code(exc) == 404:
                _log.info("%s %s not found while reading %s", what, resource_id, self.target)
                return None

            raise translate(exc, what=f"reading the {what} {resource_id}", action=action) from exc

    async def vm(self) -> Any:

        t = self.target
        try:
            vm = await self.session.compute(t.subscription_id).virtual_machines.get(
                t.resource_group, t.name, expand="instanceView"
            )
        except SDK_ERRORS as exc:
            raise translate(
                exc,
                what=f"reading the virtual machine {t.name}",
                vm_id=t.resource_id,
                resource_group=t.resource_group,
                action="Microsoft.Compute/virtualMachines/read",
            ) from exc
        return as_json(vm)

    async def sizes(self, location: str) -> Mapping[str, tuple[int | None, int | None]] | None:
        sub = self.target.subscription_id

        async def _list() -> Mapping[str, tuple[int | None, int | None]]:
            # Compute's resource SKUs (vmSizes is deprecated; used only where skus 404s)
            return await read_vm_sizes(self.session, sub, location)

        try:
            result = await self.session.cache.once(
                VM_SIZES, (sub.lower(), location), _list, keep=True
            )
        except SDK_ERRORS as exc:
            _log.info("the VM size list of %s could not be read: %s", location, exc)
            return None
        return result

    def network_get(self, kind: str, resource_id: str) -> Any:
        """A coroutine factory that GETs a network resource by id (``None`` if the id is odd)."""
        parts = split_resource_id(resource_id)
        if parts is None:
            return None
        sub, rg, pairs = parts
        client = self.session.network(sub)
        name = pairs[0][1]
        if kind == "nic":
            return lambda: client.network_interfaces.get(rg, name)
        if kind == "pip":
            return lambda: client.public_ip_addresses.get(rg, name)
        if kind == "vnet":
            return lambda: client.virtual_networks.get(rg, name)
        if kind == "subnet" and len(pairs) == 2:
            return lambda: client.subnets.get(rg, name, pairs[1][1])
        if kind == "nsg":
            return lambda: client.network_security_groups.get(rg, name)
        return None

    async def read(self, kind: str, what: str, action: str, resource_id: str) -> Any:
        call = self.network_get(kind, resource_id)
        if call is None:
            self.notes.append(f"{what} id {resource_id!r} is not a valid resource id")
            return None
        if kind in ("vnet", "nsg"):
            # Share the in-flight read with concurrent readers (VMs sharing an NSG).
            result = await self.session.cache.once(
                _IN_FLIGHT,
                (kind, resource_id.lower()),
                lambda: self.get(what, action, resource_id, call),
                keep=False,
            )
        else:
            result = await self.get(what, action, resource_id, call)
        return result


async def _gather(*aws: Any) -> list[Any]:
    """Run concurrently; when one fails, wait for the rest, then raise the first failure."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def read_vm_facts(
    session: AzureSession, target: VmTarget | str, *, timeout: float | None = None
) -> VmFacts:
    """Read one VM and what surrounds it into a :class:`VmFacts` snapshot.

    ``timeout`` (seconds) bounds every read together: past it,
    :class:`~wac_azure.OperationTimeoutError`.

    Reads, concurrently where they do not depend on each other: the VM
    (``$expand=instanceView``, which also carries its extensions), the VM
    size list of its location (once per subscription and location for the
    session; concurrent callers share one read), each NIC, each public IP,
    each distinct virtual network of the NICs' subnets (its address space
    and its subnets' NSG ids — one VNet read serves every subnet in it), and
    each distinct NSG. That is at most ``1 + NICs + public IPs + distinct
    subnets + distinct NSGs`` reads (a subnet its VNet does not list is read
    on its own, which still fits the budget).

    Raises :class:`~wac_azure.VmNotFoundError` /
    :class:`~wac_azure.ResourceGroupNotFoundError` when the VM or its
    resource group is missing and :class:`~wac_azure.AuthorizationError`
    when a read is refused. A referenced NIC, IP, VNet or NSG that does not
    exist is recorded in ``facts.notes`` and ``facts.unreadable``.
    """
    if timeout is not None:
        limit = check_timeout(timeout)
        name = target if isinstance(target, str) else target.name
        return await within(read_vm_facts(session, target), limit, f"reading VM {name}")
    if isinstance(target, str):
        target = VmTarget.parse(target)
    reader = _Reader(session, target)
    vm_json = await reader.vm()
    location = normalize_location(dig(vm_json, "location"))
    resources: dict[str, Any] = {}

    def keep(ids: list[str], docs: list[Any]) -> None:
        for rid, doc in zip(ids, docs, strict=True):
            if doc is not None:
                resources[rid.lower()] = doc

    def unique(ids: Any) -> list[str]:
        return list({i.lower(): i for i in ids if i}.values())

    nic_refs = mappings(dig(vm_json, "properties", "networkProfile", "networkInterfaces"))
    nic_ids = unique(id_of(r) for r in nic_refs)
    sizes_task = asyncio.ensure_future(reader.sizes(location)) if location else None
    pending: list[asyncio.Future[Any]] = [sizes_task] if sizes_task is not None else []
    try:
        keep(
            nic_ids,
            await _gather(
                *(reader.read("nic", "network interface", _NIC_READ, i) for i in nic_ids)
            ),
        )
        nics_raw = [parse_nic(resources[i.lower()], i) for i in nic_ids if i.lower() in resources]
        pip_ids = unique(p for n in nics_raw for p in n.public_ip_ids)
        subnet_ids = unique(n.subnet_id for n in nics_raw)
        vnet_ids = unique(vnet_id_of_subnet(s) for s in subnet_ids)
        nsg_ids = unique(n.nsg_id for n in nics_raw)

        async def read_nsgs(ids: list[str]) -> None:
            keep(
                ids,
                await _gather(
                    *(reader.read("nsg", "network security group", _NSG_READ, i) for i in ids)
                ),
            )

        nic_nsgs = asyncio.ensure_future(read_nsgs(nsg_ids))
        pending.append(nic_nsgs)
        # one flat gather: every read is a task at once, so a cancellation cancels them all
        # (a nested gather could be cancelled before it wrapped its reads, leaving them
        # never awaited)
        docs = await _gather(
            *(reader.read("pip", "public IP address", _PIP_READ, p) for p in pip_ids),
            *(reader.read("vnet", "virtual network", _VNET_READ, v) for v in vnet_ids),
        )
        pip_docs, vnet_docs = docs[: len(pip_ids)], docs[len(pip_ids) :]
        keep(pip_ids, pip_docs)
        keep(vnet_ids, vnet_docs)

        # A subnet its (read) VNet does not list: read it on its own and add it to a copy.
        listed = {
            (subnet_id_of(s, v) or "").lower()
            for v in vnet_ids
            for s in mappings(dig(resources.get(v.lower()), "properties", "subnets"))
        }
        missing = [
            s
            for s in subnet_ids
            if s.lower() not in listed and (vnet_id_of_subnet(s) or "").lower() in resources
        ]
        subnet_docs = await _gather(
            *(reader.read("subnet", "subnet", _SUBNET_READ, s) for s in missing)
        )
        for sid, sdoc in zip(missing, subnet_docs, strict=True):
            if isinstance(sdoc, Mapping):
                vkey = (vnet_id_of_subnet(sid) or "").lower()
                vnet_doc: dict[str, Any] = copy.deepcopy(dict(resources[vkey]))
                props = vnet_doc.get("properties")
                props = dict(props) if isinstance(props, Mapping) else {}
                subnets = props.get("subnets")
                props["subnets"] = [*(subnets if isinstance(subnets, list) else []), sdoc]
                vnet_doc["properties"] = props
                resources[vkey] = vnet_doc

        subnet_nsgs = []
        for sid in subnet_ids:
            vid = vnet_id_of_subnet(sid) or ""
            for sub in mappings(dig(resources.get(vid.lower()), "properties", "subnets")):
                if (subnet_id_of(sub, vid) or "").lower() == sid.lower():
                    subnet_nsgs.append(id_of(dig(sub, "properties", "networkSecurityGroup")))
        more = [i for i in unique(subnet_nsgs) if i.lower() not in {n.lower() for n in nsg_ids}]
        await _gather(nic_nsgs, read_nsgs(more))
        sizes = await sizes_task if sizes_task is not None else None
    except BaseException:
        for task in pending:
            task.cancel()
        raise
    facts = facts_from_arm(
        target,
        vm_json,
        resources=resources,
        sizes=sizes,
        session_cloud=getattr(session, "cloud", None),
    )
    if reader.notes:
        facts = attrs.evolve(facts, notes=tuple(dict.fromkeys((*reader.notes, *facts.notes))))
    return (await check_recorded_addresses(session, [facts]))[0]


#: What an address recorded on a NIC that its VM no longer holds turned out to be.
_FREE, _HELD, _UNCHECKED = "free", "held", "unchecked"


async def check_recorded_addresses(
    session: AzureSession, facts: Sequence[VmFacts]
) -> list[VmFacts]:
    """Ask Network about each address wac_azure's rules were recorded naming for a NIC
    (:attr:`~wac_azure.NicFacts.recorded_addresses`) that no VM of ``facts`` holds now.

    One ``GET …/virtualNetworks/{vnet}/CheckIPAddressAvailability?ipAddress=…`` per
    such address (none at all when there is none, the common case): ``available:
    true`` (or a platform-reserved address) means no NIC holds it, and the planners
    take it out of the rules as stale; ``available: false`` means another NIC holds
    it (:attr:`~wac_azure.NicFacts.held_elsewhere`) and it stays in the rules; a read
    that fails leaves it in the rules too (:attr:`~wac_azure.NicFacts.unchecked_addresses`).
    Each kept address is logged at WARNING. Never raises for a refused or failed read.
    """
    held = {ip for f in facts for nic in f.nics for ip in nic.private_ips}
    asks: dict[tuple[str, str], str | None] = {}
    for f in facts:
        for nic in f.nics:
            vnet = vnet_id_of_subnet(nic.subnet_id) if nic.subnet_id else None
            for address in nic.recorded_addresses:
                if address not in held:
                    asks.setdefault(((vnet or "").lower(), address), vnet)
    if not asks:
        return list(facts)
    keys = list(asks)
    answers = await _gather(*(_availability(session, asks[k], k[1]) for k in keys))
    found = dict(zip(keys, answers, strict=True))

    def checked(f: VmFacts, nic: NicFacts) -> NicFacts:
        vnet = vnet_id_of_subnet(nic.subnet_id) if nic.subnet_id else None
        gone = [a for a in nic.recorded_addresses if a not in held]
        kinds = {a: found[((vnet or "").lower(), a)] for a in gone}
        for a, kind in kinds.items():
            if kind != _FREE:
                _log.warning(
                    "VM %s: %s is no longer its address %s; left in wac_azure's rules",
                    f.target.name,
                    a,
                    "but another NIC holds it"
                    if kind == _HELD
                    else "and whether another NIC holds it could not be read",
                )
        return attrs.evolve(
            nic,
            held_elsewhere=tuple(a for a, k in kinds.items() if k == _HELD),
            unchecked_addresses=tuple(a for a, k in kinds.items() if k == _UNCHECKED),
        )

    return [
        attrs.evolve(f, nics=tuple(checked(f, n) for n in f.nics))
        if any(a not in held for n in f.nics for a in n.recorded_addresses)
        else f
        for f in facts
    ]


async def _availability(session: AzureSession, vnet_id: str | None, address: str) -> str:
    parts = split_resource_id(vnet_id) if vnet_id else None
    if parts is None:
        _log.info("the virtual network of %s is not known: it cannot be checked", address)
        return _UNCHECKED
    sub, rg, pairs = parts
    try:
        answer = await session.network(sub).virtual_networks.check_ip_address_availability(
            rg, pairs[0][1], ip_address=address
        )
    except SDK_ERRORS as exc:
        _log.info("CheckIPAddressAvailability of %s in %s failed: %s", address, vnet_id, exc)
        return _UNCHECKED
    if answer.available is True or answer.is_platform_reserved is True:
        return _FREE
    return _HELD if answer.available is False else _UNCHECKED
