"""Compare an answer with a recorded Azure answer: status, the headers that matter, body shape.

``compare(recorded, status, headers, body)`` returns :class:`Difference` values, each with
a ``where`` (``status``, ``header:location``, ``body:properties.provisioningState``; list
indexes written ``[*]``) that a table of known deviations can match with globs, and a
readable ``detail``. :func:`reconcile` splits them against such a table.
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_ETAG = re.compile(r'^(W/)?"[^"]*"$')
_COUNT = re.compile(r";\d+")

#: Headers compared by shape (URLs: host and ids ignored) or by presence.
URL_HEADERS = ("azure-asyncoperation", "location")
PRESENCE_HEADERS = ("retry-after",)
RATELIMIT_PREFIX = "x-ms-ratelimit-remaining-"


@attrs.frozen
class Difference:
    """One way an answer differs from the recording."""

    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


def _any_glob(text: str, globs: str) -> bool:
    """``fnmatch`` with ``*`` and ``?`` only: ``[`` is literal (paths hold ``[*]``)."""
    return any(fnmatch.fnmatchcase(text, g.strip().replace("[", "[[]")) for g in globs.split("|"))


@attrs.frozen
class Deviation:
    """A known, accepted difference: ``exchange``, ``where`` and ``detail`` are globs (``|``
    between alternatives), ``reason`` says why it is accepted or who is fixing it."""

    exchange: str
    where: str
    reason: str
    detail: str = "*"

    def matches(self, exchange: str, difference: Difference) -> bool:
        return (
            _any_glob(exchange, self.exchange)
            and _any_glob(difference.where, self.where)
            and _any_glob(difference.detail, self.detail)
        )

    def names(self, exchange: str) -> bool:
        """Whether this entry is about ``exchange``."""
        return _any_glob(exchange, self.exchange)


def shape_of_string(value: str) -> str:
    """A string as compared: times, GUIDs and ETags by shape, URLs without their host."""
    if _TIME.match(value):
        return "<time>"
    if _ETAG.match(value) and _GUID.search(value):
        return _GUID.sub("<guid>", value)
    if value.startswith(("https://", "http://")):
        return url_shape(value)
    return _GUID.sub("<guid>", value)


def url_shape(url: str) -> str:
    """``<host>/path-with-<guid>s?sorted&query&keys`` (``monitor=true`` keeps its value)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    keys = sorted(k if k != "monitor" else f"{k}={v}" for k, v in query)
    path = _GUID.sub("<guid>", parts.path)
    return f"<host>{path}" + ("?" + "&".join(keys) if keys else "")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _named(items: Sequence[Any]) -> dict[str, Any] | None:
    """A list of objects with distinct names, keyed by lower-cased name (else ``None``)."""
    if not items or not all(
        isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items
    ):
        return None
    keyed = {str(i["name"]).lower(): i for i in items}
    return keyed if len(keyed) == len(items) else None


def compare_json(
    recorded: Any, actual: Any, path: str = "body", *, exact: bool = False
) -> list[Difference]:
    """Differences in keys, nesting, value types and values (ids, GUIDs, times by shape,
    unless ``exact``: then every string must be equal too)."""
    out: list[Difference] = []
    rtype, atype = _type_name(recorded), _type_name(actual)
    if rtype != atype:
        out.append(
            Difference(path, f"recorded {rtype} {_short(recorded)}, got {atype} {_short(actual)}")
        )
        return out
    if isinstance(recorded, Mapping):
        for key in recorded:
            if key not in actual:
                out.append(
                    Difference(f"{path}.{key}", f"missing (recorded {_short(recorded[key])})")
                )
        for key in actual:
            if key not in recorded:
                out.append(
                    Difference(f"{path}.{key}", f"not in the recording (got {_short(actual[key])})")
                )
        for key in recorded:
            if key in actual:
                out.extend(compare_json(recorded[key], actual[key], f"{path}.{key}", exact=exact))
        return out
    if isinstance(recorded, list):
        rnamed, anamed = _named(recorded), _named(actual)
        if rnamed is not None and anamed is not None:
            missing = [
                recorded_item["name"] for k, recorded_item in rnamed.items() if k not in anamed
            ]
            extra = [item["name"] for k, item in anamed.items() if k not in rnamed]
            if missing:
                out.append(Difference(f"{path}[*]", f"items missing: {missing}"))
            if extra:
                out.append(Difference(f"{path}[*]", f"items not in the recording: {extra}"))
            for k, item in rnamed.items():
                if k in anamed:
                    out.extend(compare_json(item, anamed[k], f"{path}[*]", exact=exact))
            return out
        if len(recorded) != len(actual):
            out.append(
                Difference(f"{path}[*]", f"recorded {len(recorded)} items, got {len(actual)}")
            )
        for r_item, a_item in zip(recorded, actual, strict=False):
            out.extend(compare_json(r_item, a_item, f"{path}[*]", exact=exact))
        return out
    if isinstance(recorded, str):
        differ = (
            recorded != actual if exact else shape_of_string(recorded) != shape_of_string(actual)
        )
        if differ:
            out.append(Difference(path, f"recorded {_short(recorded)}, got {_short(actual)}"))
        return out
    if recorded != actual:
        out.append(Difference(path, f"recorded {_short(recorded)}, got {_short(actual)}"))
    return out


def _ratelimit_shape(value: str) -> str:
    """``1199`` -> ``N``; ``Microsoft.Compute/PutVM3Min;239,...`` -> ``...PutVM3Min;N,...``."""
    return "N" if value.strip().isdigit() else _COUNT.sub(";N", value)


def compare_headers(recorded: Mapping[str, str], actual: Mapping[str, str]) -> list[Difference]:
    """``Azure-AsyncOperation``/``Location`` by URL shape, ``x-ms-ratelimit-remaining-*``
    by value shape (digits as ``N``), ``ETag`` by shape, ``Retry-After`` by presence."""
    rec = {k.lower(): v for k, v in recorded.items()}
    act = {k.lower(): v for k, v in actual.items()}
    out: list[Difference] = []
    names = [*URL_HEADERS, *PRESENCE_HEADERS, "etag"]
    names += sorted({k for k in (*rec, *act) if k.startswith(RATELIMIT_PREFIX)})
    for name in names:
        where = f"header:{name}"
        if name in rec and name not in act:
            out.append(Difference(where, f"missing (recorded {_short(rec[name])})"))
            continue
        if name in act and name not in rec:
            out.append(Difference(where, f"not in the recording (got {_short(act[name])})"))
            continue
        if name not in rec:
            continue
        if name in URL_HEADERS:
            want, got = url_shape(rec[name]), url_shape(act[name])
        elif name.startswith(RATELIMIT_PREFIX):
            want, got = _ratelimit_shape(rec[name]), _ratelimit_shape(act[name])
        elif name == "etag":
            want, got = shape_of_string(rec[name]), shape_of_string(act[name])
        else:
            continue
        if want != got:
            out.append(Difference(where, f"recorded shape {want!r}, got {got!r}"))
    return out


def compare(
    recorded_status: int,
    recorded_headers: Mapping[str, str],
    recorded_body: Any,
    status: int,
    headers: Mapping[str, str],
    body: Any,
) -> list[Difference]:
    """Every difference between a recorded answer and another one (bodies as parsed JSON)."""
    out: list[Difference] = []
    if recorded_status != status:
        out.append(Difference("status", f"recorded {recorded_status}, got {status}"))
    out.extend(compare_headers(recorded_headers, headers))
    out.extend(compare_json(recorded_body, body))
    return out


@attrs.frozen
class Reconciled:
    """Differences split against a table of known deviations.

    ``stale`` lists the entries that explain nothing any more; ``stale_parts`` the entries
    some of whose ``|`` alternatives (exchanges or wheres) explain nothing any more.
    """

    unexpected: list[tuple[str, Difference]]
    explained: list[tuple[str, Difference, Deviation]]
    stale: list[Deviation]
    stale_parts: list[tuple[Deviation, list[str]]] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.stale and not self.stale_parts

    def report(self) -> str:
        """A readable diff: what is new, and which table entries no longer happen."""
        lines: list[str] = []
        if self.unexpected:
            lines.append("Differences from the recording that the deviation table does not list:")
            lines += [f"  {exchange}: {diff}" for exchange, diff in self.unexpected]
        if self.stale:
            lines.append("Deviation table entries that no longer occur (remove them):")
            lines += [f"  {d.exchange} / {d.where}: {d.reason}" for d in self.stale]
        if self.stale_parts:
            lines.append("Deviation table alternatives that no longer occur (narrow the entries):")
            lines += [
                f"  {d.exchange} / {d.where}: {', '.join(parts)}" for d, parts in self.stale_parts
            ]
        return "\n".join(lines)


def _alternatives(globs: str) -> list[str]:
    return [g.strip() for g in globs.split("|")]


def reconcile(
    found: Iterable[tuple[str, Difference]], deviations: Iterable[Deviation]
) -> Reconciled:
    """Match each ``(exchange, difference)`` against the table (first entry that matches);
    unused entries, and unused ``|`` alternatives of used ones, are stale."""
    table = list(deviations)
    found = list(dict.fromkeys(found))  # one report per repeated difference
    hits: dict[int, list[tuple[str, Difference]]] = {}
    unexpected: list[tuple[str, Difference]] = []
    explained: list[tuple[str, Difference, Deviation]] = []
    for exchange, diff in found:
        hit = next((i for i, d in enumerate(table) if d.matches(exchange, diff)), None)
        if hit is None:
            unexpected.append((exchange, diff))
        else:
            hits.setdefault(hit, []).append((exchange, diff))
            explained.append((exchange, diff, table[hit]))
    stale = [d for i, d in enumerate(table) if i not in hits]
    stale_parts: list[tuple[Deviation, list[str]]] = []
    for i, matched in sorted(hits.items()):
        d = table[i]
        unused = [
            f"exchange {alt}"
            for alt in _alternatives(d.exchange)
            if not any(_any_glob(exchange, alt) for exchange, _ in matched)
        ] + [
            f"where {alt}"
            for alt in _alternatives(d.where)
            if not any(_any_glob(diff.where, alt) for _, diff in matched)
        ]
        if unused:
            stale_parts.append((d, unused))
    return Reconciled(unexpected, explained, stale, stale_parts)
