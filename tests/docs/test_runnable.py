"""Every shell example in README.md and docs/*.md marked `<!-- runnable -->` runs in CI, in order, against
the suite's own servers, and prints what the doc shows (tests/docs/runnable.py says how blocks are read).

Each page starts in an empty folder holding `./rag_storage` (LightRAG's default WORKING_DIR) with
LightRAG's sample workspace (examples/sample_workspace) as `ws1`, a fresh PostgreSQL database, the
Bolt server and a Redis database of its own, all named in the environment as LightRAG's settings.
The README's quick start runs as on a new machine: no server settings (it starts its own servers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Iterator

import pytest

from tests.docs.runnable import Command, blocks, matches, script, split_outputs

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = [page for page in PAGES if blocks(page)]
SAMPLE = REPO / "examples" / "sample_workspace"
PAGE_TIMEOUT = 600

#: Pages whose examples start from a machine without server settings.
NO_SERVER_SETTINGS = {"README.md"}
#: The page that documents each command group with real output.
GROUP_PAGES = {
    "check-connections": "check-connections.md", "config": "check-connections.md", "dev": "check-connections.md",
    "migrate": "migrate.md", "workspace": "workspace.md", "export": "transfer.md", "import": "transfer.md",
    "archive": "transfer.md", "vectors": "vectors.md", "locks": "locks.md",
}


@pytest.fixture
def page_env(tmp_path: Path, pg_database, bolt_env, redis_env, request) -> dict[str, str]:
    """Settings for one page: its own PostgreSQL database and Redis database, the shared Bolt server."""
    import redis

    db = 1 + zlib.crc32(request.node.name.encode()) % 15
    uri = redis_env["REDIS_URI"].rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(uri)
    client.flushdb()
    client.close()
    bin_dir = os.path.dirname(sys.executable)
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "XDG_RUNTIME_DIR") if k in os.environ}
    return {**keep, **pg_database, **bolt_env, "REDIS_URI": uri,
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
            "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb",
            "EMBEDDING_MODEL": "demo-hash-embed", "EMBEDDING_DIM": "16"}


@pytest.fixture
def work() -> Iterator[Path]:
    """The page's folder: a short path, so that paths in printed tables are not folded mid-name; open to
    the embedded PostgreSQL's own user (`ragstore dev up` as root); dev servers a page left are stopped."""
    folder = Path(tempfile.mkdtemp(prefix="rsdoc-"))
    os.chmod(folder, 0o755)
    yield folder
    if (folder / ".ragstore-dev").exists():
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "ragstore"), "dev", "down"], cwd=folder,
                       capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_page_examples_run_and_print_what_the_page_shows(page: Path, page_env: dict[str, str], work: Path):
    shutil.copytree(SAMPLE, work / "rag_storage" / "ws1")
    commands: list[Command] = [c for block in blocks(page) for c in block.commands]
    marker = f"@@ragstore-doc-{uuid.uuid4().hex}"
    env = page_env if page.name not in NO_SERVER_SETTINGS else \
        {k: v for k, v in page_env.items() if not k.startswith(("POSTGRES_", "NEO4J_", "REDIS_", "EMBEDDING_"))}
    done = subprocess.run(["bash", "-c", script(commands, marker)], cwd=work, env=env, timeout=PAGE_TIMEOUT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = split_outputs(done.stdout.replace(str(work) + "/", "./").replace(str(work), "."), marker)
    for command, (output, code) in zip(commands, results):
        where = f"{page.name}:{command.line}: $ {command.text}"
        assert code == 0, f"{where}\nexited {code}:\n{output}"
        if command.expected is not None:
            assert matches(command.expected, output), f"{where}\nexpected:\n" + "\n".join(command.expected) + \
                f"\nprinted:\n{output}"
    assert len(results) == len(commands), f"{page.name}: the script stopped early:\n{done.stdout[-3000:]}"
    assert page_env["POSTGRES_PASSWORD"] not in done.stdout


def test_every_command_group_has_a_page_with_real_output():
    for group, name in GROUP_PAGES.items():
        shown = [c for b in blocks(REPO / "docs" / name) for c in b.commands
                 if c.expected and c.text.split()[:1] == ["ragstore"] and group in c.text.split()[1:4]]
        assert shown, f"docs/{name} shows no real output of `ragstore {group}`"


@pytest.mark.parametrize("expected, actual, ok", [
    (["exported 3 records in ... s"], "exported 3 records in 0.4 s\n", True),
    (["exported 3 records in ... s"], "exported 4 records in 0.4 s\n", False),
    (["a", "...", "z"], "a\nb\nc\nz\n", True),
    (["a", "...", "z"], "a\nz", True),
    (["a", "z"], "a\nb\nz", False),
    (["name   value"], "name value   ", True),
    ([], "something\n", False),
])
def test_the_output_matcher_can_say_no(expected, actual, ok):
    assert matches(expected, actual) is ok
