"""The code blocks of the documentation run.

Every ```python block of a docs/*.md page runs, in page order, in one fresh
interpreter per page whose working directory is a new temporary directory
(so pages write relative paths such as ``run/ckpt``). A block whose fence
says more than ``python`` (```python title="..."), or that follows a
``<!-- norun -->`` line, is shown but not run. A page needing an optional
framework says so once, ``<!-- requires: torch jax -->``, and is skipped
where one is missing. A failure names the page and the line of the block;
tracebacks carry the page's own line numbers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```(\S*)(.*)$")
REQUIRES = re.compile(r"^<!-- requires: ([\w .-]+) -->$", re.MULTILINE)
NORUN = "<!-- norun -->"

# Runs the blocks given as JSON on stdin, each compiled under the page's name
# with the block's own line numbers, in one namespace.
DRIVER = r"""
import json, sys, traceback
ns = {"__name__": "__main__"}
for block in json.load(sys.stdin):
    code = "\n" * block["line"] + block["source"]
    try:
        exec(compile(code, block["page"], "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED: the block at {block['page']}:{block['line']}", file=sys.stderr)
        sys.exit(1)
"""


class Block(NamedTuple):
    line: int  # 1-based line of the opening fence
    source: str
    runs: bool


def code_blocks(text: str) -> list[Block]:
    """The ```python blocks of a page, in order (other languages left out)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        start, language, rest = i, match.group(1), match.group(2).strip()
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"line {start + 1}: code block never closed")
        if language == "python":
            runs = not rest and previous != NORUN
            blocks.append(Block(start + 1, "\n".join(body) + "\n", runs))
        previous = ""
        i += 1
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_code_blocks_parse_with_markers_and_line_numbers():
    text = (
        "# t\n"
        "```python\nx = 1\n```\n"
        "<!-- norun -->\n\n"
        "```python\nraise SystemExit\n```\n"
        '```python title="sketch"\ny = 2\n```\n'
        "```sh\nls\n```\n"
        "```python\nassert x == 1\n```\n"
    )
    blocks = code_blocks(text)
    assert [(b.line, b.runs) for b in blocks] == [(2, True), (7, False), (10, False), (16, True)]
    assert blocks[0].source == "x = 1\n"
    assert blocks[3].source == "assert x == 1\n"
    with pytest.raises(ValueError, match="line 1: code block never closed"):
        code_blocks("```python\nx = 1\n")


def run_page(page: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    name = f"docs/{page.name}"
    blocks = [
        {"page": name, "line": b.line, "source": b.source}
        for b in code_blocks(page.read_text(encoding="utf-8"))
        if b.runs
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, "-c", DRIVER],
        check=False,
        input=json.dumps(blocks),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_runner_reports_page_and_line(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text("# b\n\n```python\nx = 1\n\nassert x == 2\n```\n")
    work = tmp_path / "work"
    work.mkdir()
    result = run_page(page, work)
    assert result.returncode == 1
    assert 'File "docs/broken.md", line 6' in result.stderr
    assert "FAILED: the block at docs/broken.md:3" in result.stderr


def test_the_guides_have_runnable_blocks():
    counts = {p.name: sum(b.runs for b in code_blocks(p.read_text())) for p in pages()}
    for name in ["quickstart.md", "pytorch.md", "jax.md", "trackable.md", "reading.md"]:
        assert counts.get(name, 0) > 0, f"docs/{name} has no block that runs"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_page_blocks_run(page, tmp_path):
    text = page.read_text(encoding="utf-8")
    if not any(b.runs for b in code_blocks(text)):
        pytest.skip("no block to run")
    for match in REQUIRES.finditer(text):
        for module in match.group(1).split():
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"needs {module}")
    result = run_page(page, tmp_path)
    if result.returncode != 0:
        pytest.fail(f"docs/{page.name}:\n{result.stdout}\n{result.stderr}", pytrace=False)


def test_help_of_trackable_shows_the_protocol():
    import pydoc

    import trackpoint

    text = pydoc.render_doc(trackpoint.Trackable, renderer=pydoc.plaintext)
    for name in [
        "_trackable_children",
        "_serialize_to_tensors",
        "_restore_from_tensors",
        "_restore_buffers",
        "_tensor_specs",
        "_slot_variables",
    ]:
        assert name in text.split("Methods defined here")[0], name


def test_core_stubs_cover_the_module():
    """The installed _core.pyi (generated at build time) names every public
    function and class of _core; skipped where the package runs from a
    source tree without one."""
    import ast

    from trackpoint import _core

    stub = Path(_core.__file__).with_name("_core.pyi")
    if not stub.is_file():
        pytest.skip(f"no {stub.name} beside {_core.__file__} (a source tree)")
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    declared = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    public = {
        name for name in dir(_core) if not name.startswith("_") and callable(getattr(_core, name))
    }
    assert public - declared == set()
    assert {"crc32c", "BundleReader"} <= declared


def test_api_page_documents_every_public_name():
    import trackpoint
    from trackpoint import errors

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    directives = set(re.findall(r"^::: trackpoint\.([\w.]+)$", text, re.MULTILINE))
    missing = [
        name
        for name in trackpoint.__all__
        if name not in directives and not (hasattr(errors, name) and "errors" in directives)
    ]
    assert missing == []
