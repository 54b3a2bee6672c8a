"""`ragstore demo`: the README's main job, with its own embedded servers in a temporary folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from ragstore_cli.demo import sample_folder
from ragstore_cli.embedded import dev
from tests.servers import neo4j_missing


def test_sample_workspace_is_lightrag_made_and_small() -> None:
    folder = sample_folder()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
    docs = json.loads((folder / "kv_store_doc_status.json").read_text(encoding="utf-8"))
    assert len(docs) >= 3 and all(d["status"] == "processed" for d in docs.values())
    vdb = json.loads((folder / "vdb_entities.json").read_text(encoding="utf-8"))
    assert vdb["embedding_dim"] == 16 and len(vdb["data"]) > 5


def test_demo_end_to_end(cli, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    try:
        result = cli("--json", "demo", "--data-dir", str(data_dir))
        assert result.exit_code == 0, result.output
        doc = result.json()
        assert doc["ok"] is True
        assert doc["counts"] == doc["roundtrip_counts"]
        assert doc["counts"]["graph/nodes"] > 5 and doc["counts"]["vectors/chunks"] > 0
        check = cli("archive", "verify", str(data_dir / "sample-from-servers.ragstore"))
        assert check.exit_code == 0, check.output
        text = cli("demo", "--data-dir", str(data_dir))  # again: servers already up, replace the workspace
        assert text.exit_code == 0, text.output
        assert "read back" in text.stdout and "neo4j,postgres" in text.stdout
    finally:
        dev.down(data_dir)


@pytest.mark.skipif(neo4j_missing() is not None, reason=neo4j_missing() or "")
def test_demo_on_a_real_neo4j(cli) -> None:
    # Not under tmp_path: a concurrent pytest resets /tmp/pytest-of-<user> to 0700, which the
    # unprivileged PostgreSQL user cannot traverse (as in tests/embedded/test_dev.py).
    root = Path(tempfile.mkdtemp(prefix="ragstore-demo-test-"))
    data_dir = root / "d"
    try:
        result = cli("--json", "demo", "--data-dir", str(data_dir), "--graph", "neo4j")
        assert result.exit_code == 0, result.output
        doc = result.json()
        assert doc["ok"] is True and doc["graph_server"] == "neo4j"
        assert doc["counts"] == doc["roundtrip_counts"] and doc["counts"]["graph/edges"] > 5
    finally:
        dev.down(data_dir)
        shutil.rmtree(root, ignore_errors=True)
