"""Developer sessions: ``nox -s lint typecheck tests docs bench notebook``.

Every session installs the project (editable) with the extras it needs into a
reused virtualenv under ``.nox/``. ``nox -s tests -- -k nsg`` passes the
arguments after ``--`` to pytest.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHON = "3.11"

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (the linter and the formatter's check) and the layer contracts (lint-imports)."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src/ (configured in pyproject.toml)."""
    session.install("-e", ".[lint]")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite; arguments after ``--`` go to pytest."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict`` (into site/)."""
    session.install("-e", ".[docs,lint]")  # ruff formats the API signatures
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run every benchmark script in benchmarks/ against the embedded emulator."""
    session.install("-e", ".")
    scripts = sorted(
        path for path in (ROOT / "benchmarks").glob("*.py") if not path.name.startswith("_")
    )
    if not scripts:
        session.skip("no benchmarks/*.py yet")
    for script in scripts:
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)


@nox.session(python=PYTHON)
def notebook(session: nox.Session) -> None:
    """Re-execute docs/notebooks/*.ipynb and store their fresh outputs."""
    session.install("-e", ".[test]")
    notebooks = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
    if not notebooks:
        session.skip("no docs/notebooks/*.ipynb yet")
    session.run(
        "python",
        "-c",
        _REFRESH,
        *(str(path.relative_to(ROOT)) for path in notebooks),
    )


# Run by the notebook session inside its virtualenv: execute each notebook from
# its own folder with nbclient and write it back with the new outputs.
_REFRESH = """
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

for name in sys.argv[1:]:
    path = Path(name)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    nbformat.write(nb, path)
    print(f"refreshed {path}")
"""
