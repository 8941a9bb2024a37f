"""Fleet reads: whole resource groups listed page by page, shared by a run.

A fleet run reads network resources per resource group, not per VM: one list
of network interfaces, virtual networks, NSGs and public IPs each, following
``nextLink``; each VM is one GET with its instance view (a VM *list* may not
expand it: AZURE_FACTS §7), through the SDK clients' pipelines (auth, retries, pacing) but
without their model deserialization. :class:`Inventory` keeps what a run has
read and reads each resource at most once; :func:`pages` is the raw paged GET.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest

from wac_azure._azure.errors import HttpResponseError
from wac_azure._azure.session import AzureSession
from wac_azure._core.facts import as_json as _json
from wac_azure._core.facts import parse_resource_skus, parse_vm_sizes, split_resource_id

# ============================================================================ inventory


class Inventory:
    """ARM JSON read for one run, keyed by lower-cased resource id.

    References are read by listing their resource group when the group holds
    targets of the run or several references, else one GET each; every list
    and GET happens once per run, whoever asks.
    """

    def __init__(self, session: AzureSession, run_groups: set[tuple[str, str]]) -> None:
        self.session = session
        self.run_groups = run_groups  # (subscription lower, rg lower) holding targets
        self.docs: dict[str, Any] = {}
        self.listed: set[tuple[str, str, str]] = set()  # (kind, sub lower, rg lower)
        self._once: dict[Any, asyncio.Future[Any]] = {}
        self.parsed_nsgs: dict[str, Any] = {}

    async def once(self, key: Hashable, factory: Callable[[], Awaitable[Any]]) -> Any:
        """``factory()``'s result, run once per ``key`` for the whole run (concurrent
        callers share it; a failure is shared too: the run does not read it again)."""
        fut = self._once.get(key)
        if fut is None:
            fut = self._once[key] = asyncio.ensure_future(factory())
        return await asyncio.shield(fut)

    def _net_op(self, kind: str, sub: str) -> Any:
        net = self.session.network(sub)
        return {
            "nic": net.network_interfaces,
            "pip": net.public_ip_addresses,
            "vnet": net.virtual_networks,
            "nsg": net.network_security_groups,
        }[kind]

    async def list(self, kind: str, sub: str, rg: str) -> None:
        """List every ``kind`` of a resource group into :attr:`docs` (once)."""

        path = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{_NET[kind]}"

        async def go() -> None:
            async for doc in pages(self.session, "network", sub, path, {}):
                rid = str(doc.get("id") or "")
                if rid:
                    self.docs[rid.lower()] = doc
            self.listed.add((kind, sub.lower(), rg.lower()))

        await self.once(("list", kind, sub.lower(), rg.lower()), go)

    async def get(self, kind: str, resource_id: str) -> None:
        """GET one resource into :attr:`docs` (absent when it does not exist)."""

        parts = split_resource_id(resource_id)
        if parts is None:
            return
        sub, rg, pairs = parts
        name = pairs[0][1]

        async def go() -> None:
            try:
                doc = await self._net_op(kind, sub).get(rg, name)
            except HttpResponseError as exc:
                if getattr(exc, "status_code", None) == 404:
                    return
                raise
            self.docs[resource_id.lower()] = _json(doc)

        await self.once(("get", resource_id.lower()), go)

    async def ensure(self, kind: str, ids: Iterable[str]) -> None:
        """Make sure every id of ``kind`` has been read (listed or got)."""

        groups: dict[tuple[str, str], tuple[str, str, list[str]]] = {}
        for rid in ids:
            if rid.lower() in self.docs:
                continue
            parts = split_resource_id(rid)
            if parts is None:
                continue
            key = (parts[0].lower(), parts[1].lower())
            groups.setdefault(key, (parts[0], parts[1], []))[2].append(rid)
        calls: list[Awaitable[None]] = []
        for key, (sub, rg, members) in groups.items():
            if (kind, key[0], key[1]) in self.listed:
                continue  # listed: what it did not have does not exist
            if key in self.run_groups or len(members) > 1:
                calls.append(self.list(kind, sub, rg))
            else:
                calls.extend(self.get(kind, rid) for rid in members)
        await gather_all(calls)


#: api-versions of the raw list requests (any recent one answers the same shape).
_API = {"compute": "2024-07-01", "network": "2024-05-01", "resources": "2021-04-01"}
_NET = {
    "nic": "networkInterfaces",
    "pip": "publicIPAddresses",
    "vnet": "virtualNetworks",
    "nsg": "networkSecurityGroups",
}


async def pages(
    session: AzureSession,
    kind: str,
    sub: str,
    path: str,
    params: dict[str, str],
    *,
    on_page: Callable[[], object] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The items of an ARM list, page by page following ``nextLink``, as wire JSON.

    Goes through the SDK client's pipeline (``send_request``: auth, retries,
    pacing) but skips its model deserialization, which costs milliseconds per
    VM: at ten thousand VMs that is the difference between keeping pace with
    ARM and falling behind it.
    ``on_page`` is called once per page read (a
    caller that weighs one list against others counts them).
    """
    client = _client(session, kind, sub)
    query = {"api-version": _API[kind], **params}
    url: str | None = f"{session.base_url}{path}?{urllib.parse.urlencode(query)}"
    while url:
        response = await client.send_request(HttpRequest("GET", url))
        if response.status_code != 200:
            # lazy: azure.mgmt.* stays out of `import wac_azure` (tests/docs/test_public_api.py)
            _raise_for(response)
        body = response.json()
        if on_page is not None:
            on_page()
        for item in body.get("value") or []:
            if isinstance(item, dict):
                yield item
        url = body.get("nextLink") or None


def _client(session: AzureSession, kind: str, sub: str) -> Any:
    if kind == "compute":
        return session.compute(sub)
    if kind == "network":
        return session.network(sub)
    return session.resources(sub)


def _raise_for(response: Any) -> None:
    cls = ResourceNotFoundError if response.status_code == 404 else HttpResponseError
    from azure.mgmt.core.exceptions import ARMErrorFormat  # lazy, as in pages()

    raise cls(response=response, error_format=ARMErrorFormat)


def _group_missing(response: Any) -> bool:
    try:
        code = str(((response.json() or {}).get("error") or {}).get("code") or "")
    except (ValueError, AttributeError):
        return False
    return code.lower() == "resourcegroupnotfound"


async def get_json(
    session: AzureSession, kind: str, sub: str, path: str, params: dict[str, str]
) -> dict[str, Any] | None:
    """One raw GET through the SDK client's pipeline: wire JSON, ``None`` on 404
    (a missing resource group raises, as any other error answer)."""
    client = _client(session, kind, sub)
    query = {"api-version": _API[kind], **params}
    url = f"{session.base_url}{path}?{urllib.parse.urlencode(query)}"
    response = await client.send_request(HttpRequest("GET", url))
    if response.status_code == 404 and not _group_missing(response):
        return None
    if response.status_code != 200:
        _raise_for(response)
    body = response.json()
    return body if isinstance(body, dict) else None


async def put_json(
    session: AzureSession,
    kind: str,
    sub: str,
    path: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
) -> Any:
    """One raw PUT through the SDK client's pipeline, at the api-version :func:`get_json`
    and :func:`pages` read with, so that a document read is written back whole (a PUT
    at a newer api-version than the read could reset what the older one does not show).
    Returns azure-core's response (its headers carry the operation to wait for); an
    error answer raises ``HttpResponseError`` (412, 409... keep their status and code)."""
    client = _client(session, kind, sub)
    url = f"{session.base_url}{path}?{urllib.parse.urlencode({'api-version': _API[kind]})}"
    response = await client.send_request(HttpRequest("PUT", url, json=body, headers=dict(headers)))
    if response.status_code not in (200, 201, 202):
        _raise_for(response)
    return response


def vm_path(sub: str, rg: str, name: str) -> str:
    """The ARM path of a VM."""
    return (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute"
        f"/virtualMachines/{name}"
    )


async def get_vm(session: AzureSession, sub: str, rg: str, name: str) -> dict[str, Any] | None:
    """One VM with its instance view (``GET ...?$expand=instanceView``), ``None`` on 404.

    A *list* of VMs with ``$expand=instanceView`` is not a valid request without a
    ``$filter`` (AZURE_FACTS §7), so a fleet reads each VM's instance view by its own
    GET: Compute's "Low Cost Get" (8,000 a minute per subscription), one ARM read.
    """
    return await get_json(
        session, "compute", sub, vm_path(sub, rg, name), {"$expand": "instanceView"}
    )


async def get_extension(
    session: AzureSession, sub: str, rg: str, vm: str, name: str
) -> dict[str, Any] | None:
    """A VM extension with its instance view, ``None`` when it (or its VM) does not exist."""
    path = vm_path(sub, rg, vm) + f"/extensions/{name}"
    return await get_json(session, "compute", sub, path, {"$expand": "instanceView"})


#: The generic resources list's filter and expand for VM extensions (AZURE_FACTS §7).
EXTENSION_FILTER = "resourceType eq 'Microsoft.Compute/virtualMachines/extensions'"
EXTENSION_EXPAND = "provisioningState,changedTime"


def list_extensions(
    session: AzureSession,
    sub: str,
    rg: str | None,
    *,
    on_page: Callable[[], object] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every VM extension of a resource group (or, with ``rg=None``, of the whole
    subscription) as ARM's generic resources list shows it.

    ``GET /subscriptions/{s}[/resourceGroups/{rg}]/resources?$filter=resourceType eq
    'Microsoft.Compute/virtualMachines/extensions'&$expand=provisioningState,changedTime``
    (azure-mgmt-resource ``resources.list_by_resource_group`` / ``resources.list``: the
    same ``$filter`` and ``$expand`` at both scopes): ``id, name, type, location,
    provisioningState, changedTime`` per extension, up to a thousand a page. ARM's view
    may lag the extension's own state: act only on the extension's GET.
    """
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg is not None else "")
    path = f"{scope}/resources"
    return pages(
        session,
        "resources",
        sub,
        path,
        {"$filter": EXTENSION_FILTER, "$expand": EXTENSION_EXPAND},
        on_page=on_page,
    )


#: api-version of Compute's resource SKUs list (its newest; the VM api-versions do not apply).
SKUS_API = "2021-07-01"


async def read_vm_sizes(
    session: AzureSession, sub: str, location: str
) -> Mapping[str, tuple[int | None, int | None]]:
    """Memory (MiB) and cores of every VM size offered in ``location``.

    From Compute's resource SKUs (``GET /subscriptions/{s}/providers/Microsoft.Compute/
    skus?$filter=location eq '{loc}'``, capabilities ``MemoryGB`` / ``vCPUs``): the
    supported way, the VM sizes list being deprecated. Falls back to that list only
    when the SKUs list answers 404 (an endpoint that lacks it). Errors raise.
    """
    path = f"/subscriptions/{sub}/providers/Microsoft.Compute/skus"
    params = {"api-version": SKUS_API, "$filter": f"location eq '{location}'"}
    try:
        items = [item async for item in pages(session, "compute", sub, path, params)]
    except ResourceNotFoundError:
        pager = session.compute(sub).virtual_machine_sizes.list(location)
        return parse_vm_sizes([_json(item) async for item in pager])
    return parse_resource_skus(items, location)


async def gather_all(aws: Iterable[Awaitable[Any]]) -> None:
    """Run concurrently; on a failure or cancellation cancel the rest, wait, re-raise."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
