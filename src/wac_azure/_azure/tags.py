"""Reading a region's service tags: once per session, shared by every reader.

The planner, the requirement checker, ``diagnose`` and the fleet all compare
NSG rules that name address ranges with service tags such as
``WindowsAdminCenter``. They all read the tag list through
:func:`read_service_tags`, which asks Azure once per subscription and location
per session (concurrent callers wait for the same request). A list that cannot
be read (403, network failure...) is ``None``: the checks then answer
*unknown* where a rule's CIDR meets a service tag, instead of failing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence

from azure.core.exceptions import AzureError

from wac_azure._azure.cache import CacheSlot
from wac_azure._azure.errors import translate
from wac_azure._azure.session import AzureSession
from wac_azure._core.facts import VmFacts, as_json
from wac_azure._core.nsg import ServiceTags
from wac_azure._core.servicetags import merge_service_tags

_log = logging.getLogger(__name__)


class _Miss(enum.Enum):
    """Cached for a tag list that could not be read (not retried within the session)."""

    MISS = "miss"


_MISS = _Miss.MISS
#: A region's service tags: the list, a miss, or the read in flight.
SERVICE_TAGS: CacheSlot[ServiceTags | _Miss | asyncio.Future[ServiceTags | None]] = CacheSlot(
    "service tags"
)


def _key(subscription_id: str, location: str) -> tuple[str, str]:
    return (subscription_id.lower(), location.replace(" ", "").lower())


async def _read(session: AzureSession, subscription_id: str, location: str) -> ServiceTags | None:
    try:
        result = await session.network(subscription_id).service_tags.list(location)
    except AzureError as exc:
        err = translate(exc, what=f"reading the service tags of {location}")
        _log.debug("service tags of %s unavailable: %s", location, err)
        return None
    body = as_json(result)
    return ServiceTags.from_arm(body if isinstance(body, Mapping) else {})


async def read_service_tags(
    session: AzureSession, subscription_id: str, location: str, *, timeout: float | None = None
) -> ServiceTags | None:
    """The service tags of ``location``, or ``None`` when they cannot be read.

    Read once per subscription and location per session (``session.cache``);
    concurrent callers share one request, and a failure is remembered as
    ``None`` for the rest of the session. ``timeout`` (seconds) bounds this
    caller's wait: past it the answer is ``None`` while the read goes on for
    the others.
    """
    key = _key(subscription_id, location)
    cache = session.cache
    entry = cache.get(SERVICE_TAGS, key)
    if isinstance(entry, ServiceTags):
        return entry
    if entry is _MISS:
        return None
    if not isinstance(entry, asyncio.Future) or entry.cancelled():
        entry = asyncio.ensure_future(_read(session, subscription_id, location))
        cache.set(SERVICE_TAGS, key, entry)

        def _settle(fut: asyncio.Future[ServiceTags | None], key: tuple[str, str] = key) -> None:
            if cache.get(SERVICE_TAGS, key) is not fut:
                return
            if fut.cancelled() or fut.exception() is not None:
                cache.pop(SERVICE_TAGS, key)  # not an Azure answer: the next caller tries again
                return
            found = fut.result()
            cache.set(SERVICE_TAGS, key, _MISS if found is None else found)

        entry.add_done_callback(_settle)
    try:
        # The shield keeps the shared read going for the other callers when this one
        # stops waiting (its deadline, or its cancellation, which propagates).
        async with asyncio.timeout(timeout):
            return await asyncio.shield(entry)
    except TimeoutError:
        _log.debug("service tags of %s not read within %s seconds", location, timeout)
        return None


async def service_tags_for(
    session: AzureSession, facts: Sequence[VmFacts], *, timeout: float | None = None
) -> tuple[ServiceTags, list[str]]:
    """The merged service tags of the VMs' locations, and a warning per unreadable list."""
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for f in facts:
        if f.location:
            sub = f.target.subscription_id
            wanted.setdefault(_key(sub, f.location), (sub, f.location))
    pairs = list(wanted.values())
    found = await asyncio.gather(
        *(read_service_tags(session, sub, loc, timeout=timeout) for sub, loc in pairs)
    )
    warnings = [
        f"the service tag list of {loc} could not be read: rules that name address "
        "ranges are compared with service tags as 'unknown'"
        for (_sub, loc), tags in zip(pairs, found, strict=True)
        if tags is None
    ]
    return merge_service_tags(t for t in found if t is not None), warnings
