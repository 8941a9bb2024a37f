"""Merging the service tag lists of several regions into one (pure)."""

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
