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

from collections.abc import Iterable

from wac_azure._core.nsg import ServiceTags


def merge_service_tags(lists: Iterable[ServiceTags]) -> ServiceTags:
    """One :class:`~wac_azure.nsg.ServiceTags` holding every prefix of every list."""
    merged: dict[str, list[str]] = {}
    for tags in lists:
        for name in tags.names():
            nets = tags.networks(name) or ()
            merged.setdefault(name, []).extend(str(n) for n in nets)
    return ServiceTags(merged)
