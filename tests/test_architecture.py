"""The layout holds: no import cycle, lazy imports only where they are heavy, no bare Any
in the public API (docs/architecture.md; `lint-imports` checks the layer contracts)."""

from __future__ import annotations

import ast
import collections
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import attrs

import wac_azure

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "wac_azure").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[ast.stmt, str]]:
    """Every import statement of a module (function-level ones too), with the
    wac_azure module it loads (the deepest module named, or its package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield node, target


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles(collections.defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}})) == [
        ["a", "b", "c"]
    ]
    assert _cycles(collections.defaultdict(set, {"a": {"b"}, "b": set()})) == []


def test_no_import_cycle_anywhere() -> None:
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for name, path in MODULES.items():
        graph[name]
        for _node, target in _imports(name, path):
            graph[name].add(target)
    assert _cycles(graph) == []


def test_function_level_imports_are_lazy_heavy_loads_with_a_reason() -> None:
    offenders = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        top = {id(n) for n in tree.body}
        for node in tree.body:  # TYPE_CHECKING blocks are module level too
            if isinstance(node, ast.If):
                top |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            around = " ".join(lines[max(0, node.lineno - 8) : node.end_lineno])
            if "lazy" not in around:
                offenders.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def _public_objects() -> Iterator[tuple[str, object]]:
    for name in wac_azure.__all__:
        yield name, getattr(wac_azure, name)


def _annotations(obj: object) -> Iterator[tuple[str, str]]:
    if inspect.isfunction(obj):
        for param, ann in obj.__annotations__.items():
            yield param, str(ann)
    elif inspect.isclass(obj):
        if attrs.has(obj):
            for field in attrs.fields(obj):
                yield field.name, str(field.type)
        for attr, member in vars(obj).items():
            if attr.startswith("_") and attr != "__init__":
                continue
            function = member.fget if isinstance(member, property) else member
            function = getattr(function, "__func__", function)
            for param, ann in getattr(function, "__annotations__", {}).items():
                yield f"{attr}({param})", str(ann)


# `Any` standing alone as a type (or alone in a union), not inside a container's
# parameters such as dict[str, Any] (JSON) or AsyncHttpTransport[Any, Any].
_BARE_ANY = re.compile(r"(^|\|\s*)(typing\.)?Any(\s*\||$)")


def test_the_public_api_has_no_bare_any() -> None:
    bare = [
        f"{name}.{where}: {ann}"
        for name, obj in _public_objects()
        for where, ann in _annotations(obj)
        if _BARE_ANY.search(ann.replace("typing.", ""))
    ]
    assert bare == []


def test_the_bare_any_pattern() -> None:
    assert _BARE_ANY.search("Any")
    assert _BARE_ANY.search("Any | None")
    assert _BARE_ANY.search("str | Any")
    assert not _BARE_ANY.search("dict[str, Any]")
    assert not _BARE_ANY.search("Mapping[str, Any] | None")
