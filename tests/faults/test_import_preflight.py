"""Refuse before the first write, and `--dry-run` runs the same checks.

- `kv=redis,vector=postgres` takes a files archive (chunk vectors get tokens/chunk_order_index from
  the archive's own text_chunks), also when resumed after text_chunks were committed to Redis;
- chunk vectors no source can complete, and vectors pgvector cannot index, are refused by the
  preflight (and by --dry-run, word for word) with nothing written: no rows, no tables, no ledger;
- an archive a writer refuses half-way (an id twice) leaves no staging folder and no ledger, says
  nothing about --resume, and the next good import goes through.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
import redis

from ragstore_cli.archive import ArchiveWriter
from ragstore_cli.records import VectorBatch
from ragstore_cli.engine.workspace_ops import drop_workspace
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError
from ragstore_cli.engine import ImportPlan, import_archive
from tests.faults.archive_edit import edit_archive

MODEL = "fake-embed"
MIXED = "kv=redis,doc_status=redis,vector=postgres,graph=postgres"


async def pg_fetch(env: dict[str, str], sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def user_tables(env: dict[str, str]) -> set[str]:
    rows = await pg_fetch(env, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
    return {r["relname"] for r in rows}


def redis_keys(env: dict[str, str], pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(env["REDIS_URI"])
    try:
        return list(client.scan_iter(pattern))
    finally:
        client.close()


@pytest.fixture
def mixed(pg_database, redis_env, tmp_path):
    ws = "mx" + uuid.uuid4().hex[:8]
    env = {**pg_database, **redis_env, "WORKING_DIR": str(tmp_path / "wd"), "EMBEDDING_MODEL": MODEL}
    yield env, ws
    for key in redis_keys(redis_env, f"{ws}_*") + redis_keys(redis_env, f"ragstore:import_ledger:{ws}"):
        redis.Redis.from_url(redis_env["REDIS_URI"]).delete(key)


def archive_chunks(path: Path) -> dict[str, tuple[int, int]]:
    from ragstore_cli.archive import ArchiveReader

    out = {}
    for section in ArchiveReader(path).sections(50):
        if section.key == "kv/text_chunks":
            for batch in section.batches():
                out.update({i: (v["tokens"], v["chunk_order_index"]) for i, v in batch})
    return out


# --------------------------------------------------------------------------- kv=redis, vector=postgres
async def test_files_archive_into_redis_kv_and_postgres_vectors(mixed, archive):
    env, ws = mixed
    settings = load_settings(environ=env)
    dry = await import_archive(settings, ImportPlan(archive, workspace=ws, profile=MIXED, dry_run=True))
    report = await import_archive(settings, ImportPlan(archive, workspace=ws, profile=MIXED, batch_size=5))
    assert report.counts == dry.counts and report.counts["vectors/chunks"] > 0
    rows = await pg_fetch(env, "SELECT id, tokens, chunk_order_index FROM lightrag_vdb_chunks_fake_embed_16d "
                               "WHERE workspace = $1", ws)
    assert {r["id"]: (r["tokens"], r["chunk_order_index"]) for r in rows} == archive_chunks(archive)
    assert len(redis_keys(env, f"{ws}_text_chunks:*")) == len(rows)
    assert not redis_keys(env, f"ragstore:import_ledger:{ws}")


def test_mixed_import_killed_after_text_chunks_is_finished_by_resume(runner, mixed, archive):
    env, ws = mixed
    args = ["import", str(archive), "--to", MIXED, "--workspace", ws, "--batch-size", "5"]
    killed = runner.run(args, env, extra_env={"FAULTWRAP_POINT": "commit:kv/text_chunks"})
    assert killed.killed, killed.describe()
    assert redis_keys(env, f"{ws}_text_chunks:*")  # committed in Redis before the kill: --resume skips it
    resumed = runner.run([*args, "--resume"], env)
    assert resumed.code == 0, resumed.describe()
    rows = asyncio.run(pg_fetch(env, "SELECT id, tokens, chunk_order_index FROM lightrag_vdb_chunks_fake_embed_16d "
                                     "WHERE workspace = $1", ws))
    assert {r["id"]: (r["tokens"], r["chunk_order_index"]) for r in rows} == archive_chunks(archive)


@pytest.mark.parametrize("profile", [MIXED, "postgres"])
async def test_chunk_vectors_nothing_can_complete_are_refused_before_any_write(mixed, archive, tmp_path, profile):
    env, ws = mixed
    orphan = sorted(archive_chunks(archive))[0]
    cut = edit_archive(archive, tmp_path / "cut.ragstore",
                       lambda key, batch: [r for r in batch if r[0] != orphan] if key == "kv/text_chunks" else batch)
    settings = load_settings(environ=env)
    with pytest.raises(UsageError) as dry:
        await import_archive(settings, ImportPlan(cut, workspace=ws, profile=profile, dry_run=True))
    with pytest.raises(UsageError) as real:
        await import_archive(settings, ImportPlan(cut, workspace=ws, profile=profile))
    assert str(dry.value) == str(real.value) and orphan[:60] in str(real.value) and "nothing was written" in str(real.value)
    assert not redis_keys(env, f"{ws}_*") and not redis_keys(env, f"ragstore:import_ledger:{ws}")
    tables = await user_tables(env)
    for table in tables & {"lightrag_doc_full", "lightrag_graph_nodes", "ragstore_import_ledger"}:
        assert not await pg_fetch(env, f"SELECT 1 FROM {table} WHERE workspace = $1", ws), table
    report = await import_archive(settings, ImportPlan(archive, workspace=ws, profile=profile))  # the sound archive: no flags
    assert report.counts["vectors/chunks"] > 0


# --------------------------------------------------------------------------- what pgvector cannot hold
def wide_archive(path: Path, dim: int) -> Path:
    rng = np.random.default_rng(3)
    writer = ArchiveWriter(path, workspace="wide", embedding_model="wide-model", embedding_dim=dim)
    with writer.kv("full_docs") as s:
        s.write([("doc-1", {"content": "one"})])
    with writer.vectors("entities") as s:
        s.write(VectorBatch(["ent-1", "ent-2"], rng.standard_normal((2, dim)).astype(np.float32),
                            [{"entity_name": "A", "content": "A"}, {"entity_name": "B", "content": "B"}]))
    writer.finish()
    return path


async def test_vectors_pgvector_cannot_index_are_refused_before_any_write(pg_database, tmp_path):
    archive = wide_archive(tmp_path / "wide.ragstore", 2100)  # HNSW on `vector` stops at 2,000
    settings = load_settings(environ=pg_database)
    with pytest.raises(UsageError, match="2000-dimension limit") as dry:
        await import_archive(settings, ImportPlan(archive, profile="postgres", dry_run=True))
    with pytest.raises(UsageError) as real:
        await import_archive(settings, ImportPlan(archive, profile="postgres"))
    assert str(dry.value) == str(real.value)
    assert await user_tables(pg_database) == set()  # no schema, no ledger table: nothing at all
    halfvec = load_settings(environ={**pg_database, "POSTGRES_VECTOR_INDEX_TYPE": "HNSW_HALFVEC"})
    assert (await import_archive(halfvec, ImportPlan(archive, profile="postgres"))).counts["vectors/entities"] == 2  # and nothing blocks the next


# --------------------------------------------------------------------------- refused half-way
# `archive verify` refuses what the archive itself gets wrong (an id twice, ...) before any write; a
# value that is valid JSON but that PostgreSQL cannot store (U+0000 in text) is refused only by the
# server, half-way through the load.
def nul_in_first(section: str):  # noqa: ANN201 - an edit for edit_archive
    """An edit that puts a NUL character into the first record of `section`'s text content."""
    done: list[bool] = []

    def edit(key: str, batch: Any) -> Any:
        if key != section or done:
            return batch
        done.append(True)
        if isinstance(batch, VectorBatch):
            meta = [dict(m) for m in batch.meta]
            meta[0]["content"] = "NUL\x00here"
            return VectorBatch(batch.ids, batch.vectors, meta)
        first_id, first = batch[0]
        return [(first_id, {**first, "content": "NUL\x00here"})] + list(batch[1:])

    return edit


def test_files_import_of_an_archive_verify_refuses_leaves_nothing_behind(runner, archive, tmp_path):
    def repeat_first_chunk(key: str, batch: Any) -> Any:
        return list(batch) + [batch[0]] if key == "kv/text_chunks" else batch

    bad = edit_archive(archive, tmp_path / "twice.ragstore", repeat_first_chunk)
    wd = tmp_path / "wd"
    env = {"WORKING_DIR": str(wd), "EMBEDDING_MODEL": MODEL}
    refused = runner.run(["import", str(bad), "--to", "files", "--workspace", "w"], env)
    assert refused.code in (1, 2), refused.describe()
    assert "resume" not in refused.stderr, refused.describe()  # resuming would stop at the same id
    assert "Traceback" not in refused.stderr
    leftovers = sorted(p.name for p in wd.iterdir()) if wd.exists() else []
    assert [n for n in leftovers if n != ".ragstore"] == [], leftovers  # no staging folder, no ledger, no data
    good = runner.run(["import", str(archive), "--to", "files", "--workspace", "w"], env)
    assert good.code == 0, good.describe()


async def test_postgres_import_refused_half_way_leaves_no_ledger(pg_database, archive, tmp_path):
    bad = edit_archive(archive, tmp_path / "nul.ragstore", nul_in_first("kv/text_chunks"))
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL})
    with pytest.raises(Exception) as refused:
        await import_archive(settings, ImportPlan(bad, workspace="w", profile="postgres"))
    assert "NUL" in str(refused.value)
    assert "resume" not in (getattr(refused.value, "hint", "") or "") + str(refused.value)
    assert not await pg_fetch(pg_database, "SELECT 1 FROM ragstore_import_ledger WHERE workspace = 'w'")
    assert not await pg_fetch(pg_database, "SELECT 1 FROM lightrag_doc_full WHERE workspace = 'w'")
    assert (await import_archive(settings, ImportPlan(archive, workspace="w", profile="postgres"))).counts["kv/full_docs"]


async def test_a_refused_mixed_import_keeps_the_ledger_of_what_it_committed(archive, bolt_env, pg_database, tmp_path):
    """graph → Bolt commits on its own; a refusal after it cannot be undone, and says so (no --resume)."""
    from ragstore_cli.errors import DataError

    bad = edit_archive(archive, tmp_path / "nul.ragstore", nul_in_first("vectors/chunks"))  # PostgreSQL refuses it
    ws = "rf" + uuid.uuid4().hex[:8]
    settings = load_settings(environ={**bolt_env, **pg_database, "WORKING_DIR": str(tmp_path / "wd"),
                                      "EMBEDDING_MODEL": MODEL})
    profile = "kv=files,vector=postgres,doc_status=files,graph=neo4j"
    try:
        with pytest.raises((DataError, UsageError)) as refused:
            await import_archive(settings, ImportPlan(bad, workspace=ws, profile=profile))
        assert "NUL" in str(refused.value)
        assert "graph/nodes" in (refused.value.hint or "") and "resume" not in (refused.value.hint or "")
    finally:
        await drop_workspace(settings, profile, ws, yes=True)


async def test_a_merge_takes_chunk_fields_from_text_chunks_already_in_postgres(pg_database, archive, tmp_path):
    orphan = sorted(archive_chunks(archive))[0]
    cut = edit_archive(archive, tmp_path / "cut.ragstore",
                       lambda key, batch: [r for r in batch if r[0] != orphan] if key == "kv/text_chunks" else batch)
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL})
    with pytest.raises(UsageError, match="no tokens/chunk_order_index"):  # nothing there to take them from
        await import_archive(settings, ImportPlan(cut, workspace="m", profile="postgres", if_exists="merge"))
    await import_archive(settings, ImportPlan(archive, workspace="m", profile="postgres"))
    merged = await import_archive(settings, ImportPlan(cut, workspace="m", profile="postgres", if_exists="merge"))
    assert merged.counts["vectors/chunks"] == len(archive_chunks(archive))
    rows = await pg_fetch(pg_database, "SELECT tokens, chunk_order_index FROM lightrag_vdb_chunks_fake_embed_16d "
                                       "WHERE workspace = 'm' AND id = $1", orphan)
    assert (rows[0]["tokens"], rows[0]["chunk_order_index"]) == archive_chunks(archive)[orphan]
