"""CHANGELOG.md is also the docs site's changelog page (docs/changelog.md includes it), so
a relative link in it would point somewhere else on the site: links must be absolute."""

from __future__ import annotations

import re
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"


def test_changelog_has_only_absolute_links() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [
        t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")
    ]
    assert relative == [], (
        f"relative links in CHANGELOG.md (they break on the docs site): {relative}"
    )


def test_changelog_keeps_a_changelog_sections() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    sections = re.findall(r"(?m)^### (.+)$", unreleased)
    allowed = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert sections
    assert set(sections) <= allowed, sections
    assert len(sections) == len(set(sections)), f"a section twice under [Unreleased]: {sections}"
