"""MkDocs hook: tidy the reStructuredText left in rendered docstrings.

The library's docstrings use Sphinx roles (:class:`~wac_azure.VmTarget`) and
``::`` before literal blocks. mkdocstrings renders them as Markdown, which
leaves ``:class:`` and ``::`` in the text; this hook turns a role into plain
inline code (``~a.b.C`` shows as ``C``, functions and methods get ``()``) and
``word::`` into ``word:`` (a lone ``::`` paragraph is dropped).
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(class|meth|func|attr|mod|exc|data|obj):<code>(~?)([^<]*)</code>")
_LONE = re.compile(r"<p>::</p>\s*")
_TRAIL = re.compile(r"::</p>")


def _role(match: re.Match[str]) -> str:
    kind, tilde, target = match.groups()
    text = target.rsplit(".", 1)[-1] if tilde else target
    if kind in ("meth", "func") and not text.endswith(")"):
        text += "()"
    return f"<code>{text}</code>"


def tidy(html: str) -> str:
    """Return ``html`` with Sphinx roles and ``::`` markers cleaned up."""
    html = _ROLE.sub(_role, html)
    html = _LONE.sub("", html)
    return _TRAIL.sub(":</p>", html)


def on_page_content(html: str, **kwargs: Any) -> str:
    return tidy(html)
