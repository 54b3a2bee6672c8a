"""docs/python-api.md: every `python` block runs, in order, in one interpreter, against the suite's
own servers (the same settings and sample workspace as tests/docs/test_runnable.py gives a page),
and the page names every verb of ragstore_cli.api."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ragstore_cli import api
from tests.docs.test_runnable import SAMPLE, page_env, work  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "python-api.md"
PAGE_TIMEOUT = 600

#: Runs the blocks in one namespace; each is compiled at its own line of the page, so a traceback
#: names the page's line.
RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for line, code in json.load(open(sys.argv[1])):
    exec(compile("\\n" * (line - 1) + code, sys.argv[2], "exec"), namespace)
    print(f"@@block {line} done", flush=True)
"""


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line of the first code line, code) of every ```python block."""
    found: list[tuple[int, str]] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if re.fullmatch(r"```python\s*", lines[index]):
            end = index + 1
            while lines[end].strip() != "```":
                end += 1
            found.append((index + 2, "\n".join(lines[index + 1:end]) + "\n"))
            index = end
        index += 1
    return found


def test_every_python_example_of_the_page_runs(page_env, work: Path):
    shutil.copytree(SAMPLE, work / "rag_storage" / "ws1")
    blocks = python_blocks(PAGE)
    (work / "blocks.json").write_text(json.dumps(blocks))
    done = subprocess.run([sys.executable, "-c", RUNNER, str(work / "blocks.json"), str(PAGE)], cwd=work,
                          env=page_env, capture_output=True, text=True, timeout=PAGE_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert re.findall(r"^@@block (\d+) done$", done.stdout, re.M) == [str(line) for line, _ in blocks]
    assert page_env["POSTGRES_PASSWORD"] not in done.stdout + done.stderr


def test_the_page_shows_every_verb_sync_and_async():
    text = PAGE.read_text(encoding="utf-8")
    code = "\n".join(c for _, c in python_blocks(PAGE))
    missing = [verb for verb in api.VERBS if f"{verb}(" not in text]
    assert not missing, f"docs/python-api.md does not name {missing}"
    assert "asyncio.run(main())" in code and "await api." in code and "sync." in code


def test_the_block_reader_finds_blocks_at_their_lines(tmp_path: Path):
    page = tmp_path / "p.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n")
    assert python_blocks(page) == [(4, "x = 1\n"), (11, "y = 2\nz = 3\n")]
