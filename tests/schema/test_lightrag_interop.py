"""LightRAG 1.5.7 against ragstore's head schema, and ragstore against a LightRAG-created database."""

from __future__ import annotations

import pytest

from ragstore_cli.schema import api
from tests.schema.conftest import catalog_changes, pg, settings_for, snapshot, strict_snapshot
from tests.schema.lightrag_pg import lightrag_storages

MODEL = "BAAI/bge-m3"
DIM = 8


def _problems(records) -> list[str]:
    return [r.getMessage() for r in records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("model,index_type,table", [
    (MODEL, "HNSW", "lightrag_vdb_chunks_baai_bge_m3_8d"),
    (MODEL, "HNSW_HALFVEC", "lightrag_vdb_chunks_baai_bge_m3_8d"),
    (MODEL, "IVFFLAT", "lightrag_vdb_chunks_baai_bge_m3_8d"),
    (None, "HNSW", "lightrag_vdb_chunks"),  # no model name: LightRAG uses the bare legacy tables
])
async def test_lightrag_initialises_at_head_without_changing_the_catalog(pg_database, tmp_path, model, index_type,
                                                                         table):
    extra = {"POSTGRES_VECTOR_INDEX_TYPE": index_type, "EMBEDDING_DIM": str(DIM)}
    if model:
        extra["EMBEDDING_MODEL"] = model
    await api.upgrade(settings_for(pg_database, **extra))
    before = await strict_snapshot(pg_database)
    assert table in {row[0] for row in before["columns"]}
    assert {"lightrag_graph_nodes", "lightrag_graph_edges"} <= {row[0] for row in before["columns"]}
    async with lightrag_storages(pg_database, tmp_path, model, DIM, POSTGRES_VECTOR_INDEX_TYPE=index_type) as lr:
        assert _problems(lr["log"]) == []
        cache = lr["stores"]["llm_response_cache"]
        await cache.upsert({"default:extract:abc": {"return": "r", "original_prompt": "p", "cache_type": "extract"}})
        await cache.index_done_callback()
        assert (await cache.get_by_id("default:extract:abc"))["return"] == "r"
        chunks = lr["stores"]["chunks"]
        await chunks.upsert({"chunk-1": {"content": "hello", "full_doc_id": "doc-1", "file_path": "a.txt",
                                         "tokens": 1, "chunk_order_index": 0}})
        await chunks.index_done_callback()
        assert (await chunks.get_by_id("chunk-1"))["content"] == "hello"
        graph = lr["stores"]["chunk_entity_relation"]
        await graph.upsert_edge("Alice", "Bob", {"weight": 1.0, "description": "knows"})
        assert await graph.has_edge("Bob", "Alice")
    # every table, column, constraint, index, trigger, function and type, with its oid and file node:
    # LightRAG 1.5.7 starting with every PostgreSQL storage class creates, drops or rebuilds nothing
    assert catalog_changes(before, await strict_snapshot(pg_database)) == []
    conn = await pg(pg_database)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
    finally:
        await conn.close()


async def test_adopt_a_database_lightrag_created_then_upgrade_changes_nothing(pg_database, tmp_path):
    async with lightrag_storages(pg_database, tmp_path, MODEL, DIM) as lr:
        # on a fresh database LightRAG probes each table with a failing SELECT and logs it
        assert [p for p in _problems(lr["log"]) if "does not exist" not in p] == []
    created = await snapshot(pg_database)
    settings = settings_for(pg_database, EMBEDDING_MODEL=MODEL, EMBEDDING_DIM=str(DIM))
    adopted = await api.adopt(settings)
    assert adopted["matched"] and adopted["revision"] == "0012" and adopted["stamped"] == "0012"
    result = await api.upgrade(settings)
    assert result["applied"] == []
    after = await snapshot(pg_database)
    version = [row for row in after["columns"] if row[0] == "ragstore_alembic_version"]
    assert {k: [r for r in v if r[0] != "ragstore_alembic_version"] for k, v in after.items()} == created
    assert version


async def test_lightrag_reads_flattened_legacy_rows_after_an_upgrade_from_an_old_layout(pg_database, tmp_path):
    """Old layout → adopt → upgrade: LightRAG finds each legacy row under its key and changes nothing."""
    import hashlib
    from pathlib import Path

    conn = await pg(pg_database)
    try:
        await conn.execute((Path(__file__).with_name("fixtures") / "mode_keyed.sql").read_text())
    finally:
        await conn.close()
    settings = settings_for(pg_database, EMBEDDING_MODEL=MODEL, EMBEDDING_DIM=str(DIM))
    await api.adopt(settings)
    await api.upgrade(settings)
    before = await snapshot(pg_database)
    async with lightrag_storages(pg_database, tmp_path, MODEL, DIM) as lr:
        assert _problems(lr["log"]) == []
        cache = lr["stores"]["llm_response_cache"]
        local = await cache.get_by_id("local:unknown:" + hashlib.md5(b"what is local?").hexdigest())
        extract = await cache.get_by_id("default:extract:" + hashlib.md5(b"extract entities from chunk one").hexdigest())
        status = await lr["stores"]["doc_status"].get_by_id("doc-1")
    assert local["return"] == "L1" and local["cache_type"] == "unknown"
    assert extract["return"] == "E1" and extract["cache_type"] == "extract"
    assert status["status"] == "processed" and status["created_at"].startswith("2024-05-01T10:00:00")
    assert await snapshot(pg_database) == before
