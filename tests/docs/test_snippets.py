"""Every code block marked runnable in the docs runs, against the embedded emulator.

A block opened with ```` ```python title="runnable" ```` (in ``docs/*.md`` or
``README.md``) is compiled with top-level ``await`` allowed, run in a fresh
namespace, and fails its test if it raises. Blocks may ``assert`` what they
show. Plain ```` ```python ```` blocks are illustrations (real credentials) and
are not run.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# An opening fence: indentation, three or more backticks (or tildes), the
# language and the attributes. Blocks may sit inside admonitions or tabs.
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_RUNNABLE = re.compile(r"""^python\b.*\btitle\s*=\s*["']runnable["']""")


@attrs.frozen
class Block:
    """One fenced code block: where it is and its dedented source."""

    path: Path
    line: int  # 1-based line of the first code line
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def runnable_blocks(path: Path, text: str | None = None) -> Iterator[Block]:
    """Yield the runnable python blocks of one markdown file, in order."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    i = 0
    while i < len(lines):
        opened = _OPEN.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, fence, info = opened["indent"], opened["fence"], opened["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        if _RUNNABLE.match(info):
            yield Block(path=path, line=i + 2, code="\n".join(body) + "\n")
        i = j + 1


def _doc_files() -> list[Path]:
    files = sorted(DOCS.rglob("*.md"))
    readme = ROOT / "README.md"
    return [*files, readme] if readme.exists() else files


def _all_blocks() -> list[Block]:
    return [block for path in _doc_files() for block in runnable_blocks(path)]


def run_block(block: Block) -> dict[str, Any]:
    """Run one block as a notebook cell would (top-level await allowed)."""
    # Pad with blank lines so tracebacks point at the line in the markdown file.
    source = "\n" * (block.line - 1) + block.code
    code = compile(
        source, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)
    return namespace


BLOCKS = _all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_runnable_block(block: Block) -> None:
    run_block(block)


def test_the_docs_have_runnable_blocks() -> None:
    # The collector must find the examples of the pages that promise them.
    for name in ("index.md", "concepts.md", "embedding.md", "errors.md"):
        found = list(runnable_blocks(DOCS / name))
        assert found, f"docs/{name} has no runnable block (or the collector missed it)"


# -- the collector and runner themselves ---------------------------------------------------

_SAMPLE = """\
# Title

```python title="runnable"
x = 1
```

```python
raise SystemExit("illustrative, never run")
```

!!! note
    ```python title="runnable"
    async def f():
        return 2

    y = await f()
    ```

````markdown
```python title="runnable"
nested = "inside a four-backtick fence: only an example"
```
````

~~~python title='runnable'
z = 3
~~~
"""


def test_collector_finds_runnable_blocks_only() -> None:
    blocks = list(runnable_blocks(DOCS / "sample.md", _SAMPLE))
    assert [b.line for b in blocks] == [4, 13, 26]
    assert blocks[0].code == "x = 1\n"
    # the indented block inside the admonition is dedented
    assert blocks[1].code.startswith("async def f():\n    return 2\n")
    assert blocks[2].code == "z = 3\n"
    assert all("nested" not in b.code and "SystemExit" not in b.code for b in blocks)


def test_runner_supports_top_level_await_and_fresh_namespaces() -> None:
    blocks = list(runnable_blocks(DOCS / "sample.md", _SAMPLE))
    first = run_block(blocks[1])
    assert first["y"] == 2
    assert "y" not in run_block(blocks[0])


def test_runner_reports_failures_at_the_markdown_line() -> None:
    text = "intro\n\n```python title=\"runnable\"\nok = 1\nassert ok == 2, 'boom'\n```\n"
    (block,) = runnable_blocks(DOCS / "broken.md", text)
    with pytest.raises(AssertionError, match="boom") as info:
        run_block(block)
    frames = [tb for tb in info.traceback if str(tb.path) == str(DOCS / "broken.md")]
    assert frames, "the traceback does not name the markdown file"
    assert frames[-1].lineno + 1 == 5  # pytest's lineno is 0-based


def test_runner_awaits_failing_coroutines() -> None:
    text = '```python title="runnable"\nimport asyncio\nawait asyncio.sleep(0)\n1 / 0\n```\n'
    (block,) = runnable_blocks(DOCS / "async.md", text)
    with pytest.raises(ZeroDivisionError):
        run_block(block)
