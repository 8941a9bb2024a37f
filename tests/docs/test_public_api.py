"""The public API is exactly what is exported, documented and cheap to import."""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from types import ModuleType

import pytest

import wac_azure

ROOT = Path(__file__).resolve().parents[2]
API_PAGES = [ROOT / "docs" / "api.md", *sorted((ROOT / "docs" / "api").glob("*.md"))]

# Public modules, each rendered on docs/api.md or docs/api/*.md with `::: module`.
PUBLIC_MODULES = ("wac_azure", "wac_azure.nsg", "wac_azure.testing")


def _isort_key(name: str) -> tuple[int, list[tuple[int, int | str]]]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest; natural sort."""
    if len(name) > 1 and any(c.isalpha() for c in name) and name.upper() == name:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    natural = [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]
    return kind, [p for p in natural if p != (1, "")]


def _importable(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None  # not written yet
        raise


def _modules() -> list[ModuleType]:
    return [m for name in PUBLIC_MODULES if (m := _importable(name)) is not None]


def test_isort_key_matches_ruffs_order() -> None:
    # The order `ruff check --select RUF022 --fix` produces for these names.
    expected = [
        *("C_X", "DEFAULT_SUBSCRIPTION", "V2"),
        *("A", "Ab1", "Ab2", "Ab10", "Access", "ArmEmulator", "X", "Zed"),
        *("__version__", "_private", "b", "enable", "evaluate", "v9", "v10"),
    ]
    shuffled = sorted(expected, key=lambda name: name[::-1])
    assert shuffled != expected
    assert sorted(shuffled, key=_isort_key) == expected


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_all_is_sorted_unique_and_importable(module: ModuleType) -> None:
    names = list(getattr(module, "__all__", []))
    assert names, f"{module.__name__} has no __all__"
    assert len(set(names)) == len(names), f"duplicates in {module.__name__}.__all__"
    assert names == sorted(names, key=_isort_key), f"{module.__name__}.__all__ is not sorted"
    for name in names:
        assert hasattr(module, name), f"{module.__name__}.__all__ lists {name!r}, not importable"


def _undocumented(module: ModuleType) -> list[str]:
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if name.startswith("__") or not (inspect.isclass(obj) or callable(obj)):
            continue  # __version__, constants: documented by the module's docstring
        if isinstance(obj, types.GenericAlias | typing._GenericAlias):  # type: ignore[attr-defined]
            continue  # a type alias (ProgressCallback): its `#:` comment is its documentation
        doc = obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)
        if inspect.isclass(obj) and issubclass(obj, enum.Enum) and doc == "An enumeration.":
            doc = None  # Python < 3.11 gives every enum this docstring
        if not (doc or "").strip():
            missing.append(name)
    return missing


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module: ModuleType) -> None:
    # mkdocstrings renders these docstrings on the API pages.
    assert (module.__doc__ or "").strip(), f"{module.__name__} has no module docstring"
    assert _undocumented(module) == []


def _api_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in API_PAGES)


def test_api_pages_render_every_public_module() -> None:
    page = _api_text()
    directives = set(re.findall(r"^:::\s*([\w.]+)\s*$", page, re.M))
    for module in _modules():
        assert module.__name__ in directives, f"no API page renders {module.__name__}"
    # Directives must not name modules that do not exist (the strict build would fail).
    for name in directives:
        assert _importable(name) is not None, f"an API page renders missing module {name}"


def test_api_pages_do_not_hide_public_names() -> None:
    # `members:` lists on the pages would silently drop names added later.
    page = _api_text()
    assert "members:" not in page


def test_version_is_a_string() -> None:
    assert isinstance(wac_azure.__version__, str)
    assert re.match(r"^\d+\.\d+", wac_azure.__version__)


def test_import_is_cheap() -> None:
    # Importing the package must not pull in the Azure SDK's management clients
    # (azure.mgmt.network.aio alone costs about a second and 70 MB).
    script = (
        "import sys, wac_azure\n"
        "heavy = sorted(m for m in sys.modules if m.startswith('azure.mgmt'))\n"
        "print('\\n'.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == [], "import wac_azure imported:\n" + done.stdout
