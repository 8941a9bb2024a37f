"""The mkdocs hook that tidies Sphinx roles left in rendered docstrings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

HOOK = Path(__file__).resolve().parents[2] / "docs" / "_hooks" / "rest_roles.py"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rest_roles", HOOK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roles_become_inline_code() -> None:
    tidy = _hook().tidy
    html = (
        "<p>the :class:<code>~wac_azure.RequirementReport</code> of "
        ":func:<code>wac_azure.enable</code>, see :meth:<code>~ArmEmulator.seed</code> "
        "and :attr:<code>x.y</code></p>"
    )
    assert tidy(html) == (
        "<p>the <code>RequirementReport</code> of <code>wac_azure.enable()</code>, "
        "see <code>seed()</code> and <code>x.y</code></p>"
    )


def test_literal_block_markers() -> None:
    tidy = _hook().tidy
    assert tidy("<p>Use it like this::</p><pre>x</pre>") == "<p>Use it like this:</p><pre>x</pre>"
    assert tidy("<p>Intro.</p>\n<p>::</p>\n<div>code</div>") == "<p>Intro.</p>\n<div>code</div>"
    # ordinary text and code are left alone
    text = "<p>a <code>dict[str, str]</code> and C::D in prose</p>"
    assert tidy(text) == text
