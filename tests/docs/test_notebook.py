"""docs/notebooks/*.ipynb run from top to bottom in a fresh kernel (nbclient).

The stored notebook is not modified here: ``nox -s notebook`` refreshes its
outputs. A cell that raises fails the test, with the cell's source and error.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "docs" / "notebooks").glob("*.ipynb"))

# The views a reader of the quick-start notebook must see rendered as HTML,
# keyed by a line of the cell that shows each one.
QUICKSTART_HTML_VIEWS = {
    "report = await wac_azure.RequirementChecker(session).check(small)": "requirement report",
    "plan = await planner.plan(locked)": "network plan",
    "result = await wac_azure.enable(session, locked)": "enable result",
    "fleet = await wac_azure.enable_many(": "fleet result",
}


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nbformat.read(path, as_version=4))
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    return nb


def test_there_is_a_quickstart_notebook() -> None:
    assert [p.name for p in NOTEBOOKS if p.name == "quickstart.ipynb"] == ["quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nb = _execute(path)
    cells = _code_cells(nb)
    assert cells, f"{path.name} has no code cells"
    for cell in cells:
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"{path.name}: cell failed:\n{cell.source}\n{errors[0]}"
    if path.name == "quickstart.ipynb":
        for marker, view in QUICKSTART_HTML_VIEWS.items():
            (cell,) = [c for c in cells if marker in c.source]
            html = [out for out in cell.outputs if "text/html" in out.get("data", {})]
            assert html, f"the {view} is not shown as HTML"
            assert html[0]["data"]["text/html"].lstrip().startswith("<")
    for cell in cells:
        for out in cell.outputs:
            _assert_theme_neutral(out.get("data", {}).get("text/html", ""), cell.source)


_STYLE = re.compile(r"""style\s*=\s*["']([^"']*)["']""", re.I)


def _assert_theme_neutral(html: str, source: str) -> None:
    # Readable on light and dark notebook themes: a text colour only together
    # with a background (otherwise dark-on-dark or light-on-light).
    for style in _STYLE.findall(html):
        decls = {d.split(":", 1)[0].strip().lower() for d in style.split(";") if ":" in d}
        if "color" in decls:
            assert decls & {"background", "background-color"}, (
                f"text colour without a background ({style!r}) in the output of:\n{source}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_outputs_are_fresh(path: Path) -> None:
    # `nox -s notebook` stores the outputs readers see on GitHub and in the docs:
    # every code cell was executed, in order, without errors.
    nb = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in _code_cells(nb)]
    assert None not in counts, f"{path.name}: run `nox -s notebook` to store its outputs"
    assert counts == sorted(counts), f"{path.name}: cells were run out of order"
    for cell in _code_cells(nb):
        assert all(out.output_type != "error" for out in cell.outputs), cell.source
