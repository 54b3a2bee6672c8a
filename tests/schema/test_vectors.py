"""Vector tables: legacy bare tables brought to 1.5.7's types, and the explicit, counted row move."""

from __future__ import annotations

import asyncio

import pytest

from ragstore_cli.errors import DataError
from ragstore_cli.schema import api
from tests.schema.conftest import pg, settings_for

LEGACY = """
CREATE TABLE LIGHTRAG_VDB_ENTITY (id VARCHAR(255), workspace VARCHAR(255), entity_name VARCHAR(255), content TEXT,
  content_vector VECTOR, create_time TIMESTAMP(0) WITH TIME ZONE, update_time TIMESTAMP(0) WITH TIME ZONE,
  chunk_ids VARCHAR(255)[] NULL, file_path TEXT NULL, CONSTRAINT LIGHTRAG_VDB_ENTITY_PK PRIMARY KEY (workspace, id));
CREATE TABLE LIGHTRAG_VDB_RELATION (id VARCHAR(255), workspace VARCHAR(255), source_id VARCHAR(256),
  target_id VARCHAR(256), content TEXT, content_vector VECTOR, create_time TIMESTAMP(0) WITH TIME ZONE,
  update_time TIMESTAMP(0) WITH TIME ZONE, chunk_ids VARCHAR(255)[] NULL, file_path TEXT NULL,
  CONSTRAINT LIGHTRAG_VDB_RELATION_PK PRIMARY KEY (workspace, id));
CREATE TABLE LIGHTRAG_VDB_CHUNKS (id VARCHAR(255), workspace VARCHAR(255), full_doc_id VARCHAR(256),
  chunk_order_index INTEGER, tokens INTEGER, content TEXT, content_vector VECTOR, file_path VARCHAR(256),
  create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT LIGHTRAG_VDB_CHUNKS_PK PRIMARY KEY (workspace, id));
INSERT INTO LIGHTRAG_VDB_ENTITY (id, workspace, entity_name, content, content_vector, create_time)
  SELECT 'ent-' || g, CASE WHEN g % 2 = 0 THEN 'default' ELSE 'w2' END, 'E' || g, 'c', '[1,2,3,4]',
         '2024-01-01 00:00:00+00' FROM generate_series(1, 2500) g;
INSERT INTO LIGHTRAG_VDB_CHUNKS (id, workspace, full_doc_id, chunk_order_index, tokens, content, content_vector)
  SELECT 'chunk-' || g, 'default', 'doc-1', g, 10, 'text', '[0,0,0,1]' FROM generate_series(1, 30) g;
"""


async def _run(env, sql):
    conn = await pg(env)
    try:
        if ";" in sql:
            await conn.execute(sql)
            return []
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_bare_legacy_tables_are_upgraded_in_place_without_a_model(pg_database):
    await _run(pg_database, LEGACY)
    settings = settings_for(pg_database, EMBEDDING_DIM="4")  # no EMBEDDING_MODEL → LightRAG uses the bare tables
    await api.upgrade(settings)
    types = {(r[0], r[1]): r[2] for r in await _run(pg_database, """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname LIKE 'lightrag_vdb_%' AND a.attnum > 0""")}
    assert types[("lightrag_vdb_entity", "entity_name")] == "character varying(512)"
    assert types[("lightrag_vdb_relation", "source_id")] == "character varying(512)"
    assert types[("lightrag_vdb_chunks", "file_path")] == "text"
    assert types[("lightrag_vdb_entity", "create_time")] == "timestamp(0) without time zone"
    assert types[("lightrag_vdb_entity", "content_vector")] == "vector(4)"
    when = await _run(pg_database, "SELECT create_time::text FROM lightrag_vdb_entity WHERE id = 'ent-2'")
    assert when[0][0] == "2024-01-01 00:00:00"
    indexes = {r[0] for r in await _run(pg_database, "SELECT indexname FROM pg_indexes")}
    assert {"idx_lightrag_vdb_entity_hnsw_cosine", "idx_lightrag_vdb_chunks_workspace_id"} <= indexes


async def test_a_dimension_mismatch_is_refused(pg_database):
    await _run(pg_database, LEGACY)
    with pytest.raises(DataError, match="4-dimension vectors but EMBEDDING_DIM is 8"):
        await api.upgrade(settings_for(pg_database, EMBEDDING_DIM="8"))


def test_vectors_move_copies_and_verifies_counts(cli, pg_database):
    asyncio.run(_run(pg_database, LEGACY))
    env = {**pg_database, "EMBEDDING_MODEL": "m1", "EMBEDDING_DIM": "4"}
    assert cli("migrate", "upgrade", env=env).exit_code == 0
    # nothing is moved by an upgrade
    assert asyncio.run(_run(pg_database, "SELECT count(*) FROM lightrag_vdb_entity_m1_4d"))[0][0] == 0
    moved = cli("--json", "migrate", "vectors-move", env=env)
    assert moved.exit_code == 0, moved.output
    report = {m["legacy"]: m for m in moved.json()["moved"]}
    assert report["LIGHTRAG_VDB_ENTITY"]["legacy_rows"] == 2500 == report["LIGHTRAG_VDB_ENTITY"]["copied"]
    assert report["LIGHTRAG_VDB_CHUNKS"]["verified"] == 30
    rows = asyncio.run(_run(pg_database, "SELECT workspace, count(*) FROM lightrag_vdb_entity_m1_4d GROUP BY 1 ORDER BY 1"))
    assert [tuple(r) for r in rows] == [("default", 1250), ("w2", 1250)]
    same = asyncio.run(_run(pg_database, "SELECT count(*) FROM lightrag_vdb_entity_m1_4d n JOIN lightrag_vdb_entity l "
                                         "USING (workspace, id) WHERE n.content_vector = l.content_vector "
                                         "AND n.entity_name = l.entity_name"))
    assert same[0][0] == 2500
    assert asyncio.run(_run(pg_database, "SELECT count(*) FROM lightrag_vdb_entity"))[0][0] == 2500  # left in place
    again = cli("--json", "migrate", "vectors-move", env=env)
    assert again.json()["moved"][1]["copied"] == 0 and again.json()["moved"][1]["verified"] == 2500
