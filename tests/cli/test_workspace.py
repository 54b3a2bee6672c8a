"""`ragstore workspace …` against a workspace LightRAG built itself (files) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from ragstore_cli.config import load_settings
from tests.transfer.helpers import copy_between
from tests.interop.lightrag_builder import EMBEDDING_DIM, EMBEDDING_MODEL, build_workspace


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template")
    asyncio.run(build_workspace(root / "rag", "team-a"))
    return root / "rag"


@pytest.fixture
def rag(template, tmp_path) -> Path:
    target = tmp_path / "rag"
    shutil.copytree(template, target)
    return target


def counts(folder: Path) -> dict[str, int]:
    out = {}
    for path in sorted(folder.glob("kv_store_*.json")):
        out[path.name[len("kv_store_"):-5]] = len(json.loads(path.read_text(encoding="utf-8")))
    for path in sorted(folder.glob("vdb_*.json")):
        out[path.name[4:-5]] = len(json.loads(path.read_text(encoding="utf-8"))["data"])
    return out


def test_list_and_show_files(cli, rag):
    env = {"WORKING_DIR": str(rag)}
    listed = cli("workspace", "list", "--profile", "files", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    [entry] = listed.json()["workspaces"]
    expected = counts(rag / "team-a")
    assert entry["workspace"] == "team-a"
    assert entry["counts"]["kv"] == sum(v for k, v in expected.items() if k not in ("doc_status", "chunks", "entities", "relationships"))
    assert entry["counts"]["doc_status"] == 3
    assert entry["counts"]["vector"] == expected["chunks"] + expected["entities"] + expected["relationships"]
    shown = cli("--json", "workspace", "show", "team-a", "--profile", "files", env=env).json()
    by_ns = {n["namespace"]: n for n in shown["namespaces"]}
    for ns, n in expected.items():
        assert by_ns[ns]["count"] == n, ns
    assert by_ns["entities"]["dimension"] == EMBEDDING_DIM
    assert by_ns["chunk_entity_relation"]["count"] > 10 and shown["last_update"]
    human = cli("workspace", "show", "team-a", "--profile", "files", env=env)
    assert human.exit_code == 0 and "text_chunks" in human.stdout


def test_copy_rename_drop_files_and_collisions(cli, rag):
    env = {"WORKING_DIR": str(rag)}
    before = counts(rag / "team-a")
    copied = cli("workspace", "copy", "team-a", "team_a", "--profile", "files", "--json", env=env)
    assert copied.exit_code == 0, copied.output
    assert copied.json()["collides_with"] == ["team-a"]
    for name in before:
        src = rag / "team-a" / (f"vdb_{name}.json" if name in ("chunks", "entities", "relationships") else f"kv_store_{name}.json")
        assert (rag / "team_a" / src.name).read_bytes() == src.read_bytes()
    again = cli("workspace", "copy", "team-a", "team_a", "--profile", "files", env=env)
    assert again.exit_code == 2 and "already exists" in again.stderr
    renamed = cli("workspace", "rename", "team_a", "team_b", "--profile", "files", "--json", env=env)
    assert renamed.exit_code == 0, renamed.output
    assert not (rag / "team_a").exists() and counts(rag / "team_b") == before
    refused = cli("workspace", "drop", "team_b", "--profile", "files", env=env)
    assert refused.exit_code == 2 and "--yes" in refused.stderr and counts(rag / "team_b") == before
    dropped = cli("workspace", "drop", "team_b", "--yes", "--profile", "files", "--json", env=env)
    assert dropped.exit_code == 0
    assert dropped.json()["removed"]["files"]["text_chunks"] == before["text_chunks"]
    assert not (rag / "team_b").exists() and counts(rag / "team-a") == before


def test_create_files_folder(cli, tmp_path):
    env = {"WORKING_DIR": str(tmp_path / "rag")}
    made = cli("workspace", "create", "fresh", "--profile", "files", "--json", env=env)
    assert made.exit_code == 0 and (tmp_path / "rag" / "fresh").is_dir()


@pytest.mark.parametrize("name", ["../up", "a/b", "a*b", "a`b", "x\x00y", "..", " lead", "q'uote", "a" * 65])
def test_hostile_workspace_names_exit_2(cli, tmp_path, name):
    env = {"WORKING_DIR": str(tmp_path / "rag")}
    for args in (("show", name), ("create", name), ("drop", name, "--yes"), ("copy", "ok", name)):
        result = cli("workspace", *args, "--profile", "files", env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "up").exists() and not (tmp_path / "rag").exists()


def test_unknown_workspace_and_profile(cli, rag):
    env = {"WORKING_DIR": str(rag)}
    assert cli("workspace", "show", "nope", "--profile", "files", env=env).exit_code == 2
    bad = cli("--json", "workspace", "list", "--profile", "mongo", env=env)
    assert bad.exit_code == 2 and "unknown backend" in bad.json()["error"]


def test_postgres_create_copy_rename_drop(cli, rag, pg_database, pg_server):
    env = {**pg_database, "WORKING_DIR": str(rag), "EMBEDDING_MODEL": EMBEDDING_MODEL, "EMBEDDING_DIM": str(EMBEDDING_DIM)}
    db = pg_database["POSTGRES_DATABASE"]
    made = cli("workspace", "create", "team-a", "--profile", "postgres", "--json", env=env)
    assert made.exit_code == 0, made.output
    indexes = pg_server.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'lightrag_vdb_chunks_fake_embed_16d'", database=db)
    assert "hnsw" in indexes

    async def load() -> None:
        settings = load_settings(environ=env)
        await copy_between(settings, "files", "team-a", "postgres", "team-a")
    asyncio.run(load())

    def table_counts(ws: str) -> dict[str, int]:
        out = {}
        for table in ("lightrag_doc_chunks", "lightrag_llm_cache", "lightrag_doc_status", "lightrag_vdb_entity_fake_embed_16d",
                      "lightrag_graph_nodes", "lightrag_graph_edges"):
            out[table] = int(pg_server.psql(f"SELECT count(*) FROM {table} WHERE workspace = '{ws}'", database=db))
        return out

    original = table_counts("team-a")
    assert all(original.values()), original
    listed = cli("workspace", "list", "--profile", "postgres", "--json", env=env).json()
    assert [w["workspace"] for w in listed["workspaces"]] == ["team-a"]
    copied = cli("workspace", "copy", "team-a", "team_a", "--profile", "postgres", "--json", env=env)
    assert copied.exit_code == 0, copied.output
    assert copied.json()["backends"]["postgres"]["method"] == "native"
    assert table_counts("team_a") == original and table_counts("team-a") == original
    renamed = cli("workspace", "rename", "team_a", "moved", "--profile", "postgres", "--json", env=env)
    assert renamed.exit_code == 0, renamed.output
    assert table_counts("moved") == original and not any(table_counts("team_a").values())
    shown = cli("workspace", "show", "moved", "--profile", "postgres", "--json", env=env).json()
    entities = next(n for n in shown["namespaces"] if n["namespace"] == "entities")
    assert (entities["dimension"], entities["model"]) == (EMBEDDING_DIM, "fake_embed")  # the table name's model part
    dropped = cli("workspace", "drop", "moved", "--yes", "--profile", "postgres", "--json", env=env)
    assert dropped.exit_code == 0
    assert dropped.json()["removed"]["postgres"]["text_chunks"] == original["lightrag_doc_chunks"]
    assert not any(table_counts("moved").values()) and table_counts("team-a") == original


def test_lightrag_starts_on_a_created_postgres_workspace(cli, tmp_path, pg_database, pg_server, monkeypatch):
    env = {**pg_database, "WORKING_DIR": str(tmp_path / "rag"), "EMBEDDING_MODEL": EMBEDDING_MODEL,
           "EMBEDDING_DIM": str(EMBEDDING_DIM)}
    made = cli("workspace", "create", "fresh", "--profile", "postgres", "--json", env=env)
    assert made.exit_code == 0, made.output
    assert "lightrag_vdb_entity_fake_embed_16d" in made.json()["created"]["postgres"]
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    from tests.interop.lightrag_builder import PG_STORAGES
    built = asyncio.run(build_workspace(tmp_path / "rag", "fresh", storages=PG_STORAGES))
    assert len(built.doc_ids) == 3
    shown = cli("workspace", "show", "fresh", "--profile", "postgres", "--json", env=env).json()
    by_ns = {n["namespace"]: n["count"] for n in shown["namespaces"]}
    assert by_ns["doc_status"] == 3 and by_ns["entities"] > 5 and by_ns["chunk_entity_relation:edges"] > 5


def test_mixed_profile_list_show_drop(cli, rag, pg_database, redis_env, bolt_env):
    """Four roles in three backends (part B's redis and neo4j through the registry's plug-in contract)."""
    env = {**pg_database, **redis_env, **bolt_env, "WORKING_DIR": str(rag), "EMBEDDING_MODEL": EMBEDDING_MODEL,
           "EMBEDDING_DIM": str(EMBEDDING_DIM)}
    profile = "kv=redis,vector=postgres,graph=neo4j,doc_status=postgres"
    expected = counts(rag / "team-a")

    async def load() -> dict[str, int]:
        settings = load_settings(environ=env)
        return (await copy_between(settings, "files", "team-a", profile, "mixed-ws")).copied
    copied = asyncio.run(load())
    listed = cli("workspace", "list", "--profile", profile, "--json", env=env)
    assert listed.exit_code == 0, listed.output
    entry = next(w for w in listed.json()["workspaces"] if w["workspace"] == "mixed-ws")
    assert sorted(entry["backends"]) == ["neo4j", "postgres", "redis"]
    kv_total = sum(v for k, v in expected.items() if k not in ("doc_status", "chunks", "entities", "relationships"))
    assert entry["counts"]["kv"] == kv_total
    assert entry["counts"]["vector"] == expected["chunks"] + expected["entities"] + expected["relationships"]
    assert entry["counts"]["doc_status"] == 3
    assert entry["counts"]["graph"] == copied["graph_nodes"] + copied["graph_edges"]
    dropped = cli("workspace", "drop", "mixed-ws", "--yes", "--profile", profile, "--json", env=env)
    assert dropped.exit_code == 0, dropped.output
    assert sorted(dropped.json()["removed"]) == ["neo4j", "postgres", "redis"]
    after = cli("workspace", "list", "--profile", profile, "--json", env=env).json()
    assert "mixed-ws" not in [w["workspace"] for w in after["workspaces"]]


def test_corrupt_file_is_one_line_error(cli, rag):
    env = {"WORKING_DIR": str(rag)}
    (rag / "team-a" / "kv_store_full_docs.json").write_text('{"doc-1": {"content": "x"', encoding="utf-8")
    result = cli("workspace", "show", "team-a", "--profile", "files", env=env)
    assert result.exit_code == 1
    assert "kv_store_full_docs.json" in result.stderr and "Traceback" not in result.output
    (rag / "team-a" / "graph_chunk_entity_relation.graphml").write_text("<graphml><graph>", encoding="utf-8")
    (rag / "team-a" / "kv_store_full_docs.json").write_text("{}", encoding="utf-8")
    result = cli("workspace", "show", "team-a", "--profile", "files", env=env)
    assert result.exit_code == 1 and "malformed GraphML" in result.stderr


def test_default_workspace_is_the_root_folder(cli, rag):
    env = {"WORKING_DIR": str(rag)}
    for path in (rag / "team-a").iterdir():
        shutil.copy2(path, rag / path.name)
    listed = cli("workspace", "list", "--profile", "files", "--json", env=env).json()
    assert [w["workspace"] for w in listed["workspaces"]] == ["", "team-a"]
    before = counts(rag / "team-a")
    assert counts(rag) == before
    dropped = cli("workspace", "drop", "", "--yes", "--profile", "files", "--json", env=env)
    assert dropped.exit_code == 0, dropped.output
    assert counts(rag) == {} and counts(rag / "team-a") == before  # only the root's files went


def test_drop_and_copy_wait_for_the_workspace_lock_then_exit_3(cli, rag, tmp_path):
    """Another ragstore holds team-a: drop/copy wait --lock-timeout, exit 3 naming the holder, change nothing."""
    import os
    import subprocess
    import sys
    import time

    env = {"WORKING_DIR": str(rag), "EMBEDDING_DIM": str(EMBEDDING_DIM), "RAGSTORE_LOCK_BACKEND": "file"}
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio, sys\n"
         "from ragstore_cli.config import load_settings\n"
         "from ragstore_cli.coordination import workspace_lock\n"
         "async def main():\n"
         "    async with workspace_lock(load_settings(), 'team-a', command='export', timeout=5):\n"
         "        print('held', flush=True)\n"
         "        await asyncio.sleep(20)\n"
         "asyncio.run(main())\n"],
        env={**os.environ, **env}, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = counts(rag / "team-a")
        started = time.monotonic()
        dropped = cli("workspace", "drop", "team-a", "--yes", "--profile", "files", "--lock-timeout", "0.5", env=env)
        waited = time.monotonic() - started
        assert dropped.exit_code == 3, dropped.output
        assert "export" in dropped.stderr and str(holder.pid) in dropped.stderr
        assert 0.4 <= waited < 10
        copied = cli("workspace", "copy", "team-a", "team-c", "--profile", "files", "--lock-timeout", "0.2", env=env)
        assert copied.exit_code == 3
        assert counts(rag / "team-a") == before and not (rag / "team-c").exists()
    finally:
        holder.kill()
        holder.wait(10)
    dropped = cli("workspace", "drop", "team-a", "--yes", "--profile", "files", "--lock-timeout", "5", env=env)
    assert dropped.exit_code == 0, dropped.output
