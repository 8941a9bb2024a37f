"""Shared hypothesis settings and strategies for the fuzzers.

``WAC_AZURE_FUZZ_EXAMPLES`` scales every fuzzer (default 200 examples; e.g. 5000 for a
long local run)::

    WAC_AZURE_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/fuzz -q
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests._shared import ARM_FIXTURES

EXAMPLES = int(os.environ.get("WAC_AZURE_FUZZ_EXAMPLES", "200"))
FIXTURES = ARM_FIXTURES


def fuzz_settings(scale: float = 1.0) -> Any:
    return settings(
        max_examples=max(10, int(EXAMPLES * scale)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=os.environ.get("WAC_AZURE_FUZZ_RANDOM") is None,
    )


def fixture_body(name: str, status: str = "200") -> Any:
    doc = json.loads((FIXTURES / name).read_text())
    return doc["responses"][status]["body"]


#: Values that replace a field: nulls, wrong types, odd strings, unknown enum values.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            " ",
            "*",
            "Bogus",
            "tcp",
            "TCP",
            "allow",
            "DENY",
            "inbound",
            "Outbound ",
            "65536",
            "0-70000",
            "10-5",
            "-1",
            "1.2.3.4/33",
            "::/129",
            "VirtualNetwork",
            "Internet",
            "0.0.0.0/0",
            "PowerState/running",
            "ProvisioningState/succeeded",
            "Windows Server 2022 Datacenter",
            "10.0.20348.1",
            "Standard_D2s_v3",
            "/subscriptions/x",
            "null",
            "\u0000",
            "é",
        ]
    ),
    st.text(max_size=12),
    st.just([]),
    st.just({}),
    st.lists(st.one_of(st.none(), st.text(max_size=6), st.integers()), max_size=3),
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and list indexes) to a value inside ``doc``."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def _plural(key: str) -> str | None:
    if key.endswith("Prefix") or key.endswith("Range"):
        return key + ("es" if key.endswith("Prefix") else "s")
    if key.endswith("Prefixes"):
        return key[:-2]
    if key.endswith("Ranges"):
        return key[:-1]
    return None


OPS = ["delete", "null", "odd", "key-case", "value-case", "plural", "duplicate", "wrap"]


@st.composite
def mutated(draw: Any, base: Any, max_edits: int = 4) -> Any:
    """``base`` (deep-copied) with 1..max_edits random edits at random paths."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_edits))):
        every = paths(doc)
        if not every:
            break
        path = every[draw(st.integers(0, len(every) - 1))]
        parent = _parent(doc, path)
        key = path[-1]
        op = draw(st.sampled_from(OPS))
        value = parent[key]
        if op == "delete":
            del parent[key]
        elif op == "null":
            parent[key] = None
        elif op == "odd":
            parent[key] = draw(ODD)
        elif op == "key-case" and isinstance(key, str):
            new = draw(st.sampled_from([key.upper(), key.lower(), key.capitalize()]))
            parent[new] = parent.pop(key)
        elif op == "value-case" and isinstance(value, str):
            parent[key] = draw(st.sampled_from([value.upper(), value.lower(), f" {value} "]))
        elif op == "plural" and isinstance(key, str) and _plural(key):
            other = _plural(key)
            moved = parent.pop(key)
            if isinstance(moved, list):
                parent[other] = moved[0] if moved else ""
            else:
                parent[other] = [moved, moved] if draw(st.booleans()) else [moved]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(value))
        elif op == "wrap":
            parent[key] = [value] if not isinstance(value, list) else {"value": value}
    return doc
