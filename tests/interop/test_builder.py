"""The builder really runs LightRAG's pipeline: every namespace is populated, for files and PostgreSQL."""

from __future__ import annotations

import json


from tests.interop.lightrag_builder import PG_STORAGES, build_workspace

FILES = ["kv_store_full_docs.json", "kv_store_text_chunks.json", "kv_store_llm_response_cache.json",
         "kv_store_full_entities.json", "kv_store_full_relations.json", "kv_store_entity_chunks.json",
         "kv_store_relation_chunks.json", "kv_store_doc_status.json", "vdb_chunks.json",
         "vdb_entities.json", "vdb_relationships.json", "graph_chunk_entity_relation.graphml"]


async def test_builder_fills_every_file_namespace(tmp_path):
    built = await build_workspace(tmp_path / "rag", "ws1")
    assert len(built.doc_ids) == 3
    for name in FILES:
        assert (built.folder / name).stat().st_size > 0, name
    for name in FILES[:-4]:
        assert json.loads((built.folder / name).read_text(encoding="utf-8")), name
    entities = json.loads((built.folder / "vdb_entities.json").read_text(encoding="utf-8"))
    assert entities["embedding_dim"] == 16
    assert {r["entity_name"] for r in entities["data"]} >= {"Alice", "Bob", "Paris"}


async def test_builder_fills_postgres(tmp_path, pg_database, pg_server, monkeypatch):
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    built = await build_workspace(tmp_path / "rag", "ws1", storages=PG_STORAGES)
    db = pg_database["POSTGRES_DATABASE"]
    counts = pg_server.psql(
        "SELECT (SELECT count(*) FROM lightrag_doc_full WHERE workspace='ws1'),"
        " (SELECT count(*) FROM lightrag_doc_status WHERE workspace='ws1' AND status='processed'),"
        " (SELECT count(*) FROM lightrag_vdb_entity_fake_embed_16d WHERE workspace='ws1'),"
        " (SELECT count(*) FROM lightrag_graph_edges WHERE workspace='ws1')", database=db)
    docs, processed, entities, edges = (int(x) for x in counts.strip().split("|"))
    assert docs == processed == len(built.doc_ids) == 3
    assert entities > 5 and edges > 5
