"""files (built by LightRAG) → postgres (written by ragstore) → read back by LightRAG's PG classes; and back."""

from __future__ import annotations

import json


from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from tests.transfer.helpers import copy_between
from tests.backends.files.test_files_interop import file_ids
from tests.interop.lightrag_builder import (EMBEDDING_DIM, EMBEDDING_MODEL, KV_NS, PG_STORAGES, build_workspace,
                                            read_with_lightrag)

SEP = "<SEP>"


def settings_for(pg_env, working_dir):
    return load_settings(environ={**pg_env, "WORKING_DIR": str(working_dir), "EMBEDDING_MODEL": EMBEDDING_MODEL,
                                  "EMBEDDING_DIM": str(EMBEDDING_DIM)})


def created_filled(record):
    """JSON KV drops create_time on update (read back as 0); ragstore fills it from update_time."""
    if record.get("create_time") == 0 and record.get("update_time"):
        return {**record, "create_time": record["update_time"]}
    return record


def assert_kv_equal(ns, json_rec, pg_rec):
    """Every key both carry is equal; JSON keys PG lacks are only the envelope `_id`."""
    json_rec = created_filled(json_rec)
    if ns == "llm_response_cache":
        pg_rec = {k: v for k, v in pg_rec.items() if k != "return_value"}
    common = (set(json_rec) & set(pg_rec)) - {"id", "_id"}
    for key in common:
        assert pg_rec[key] == json_rec[key], (ns, key)
    missing = set(json_rec) - set(pg_rec) - {"_id"}
    if ns == "full_docs":
        missing -= {"create_time", "update_time"}  # LightRAG's PG read of full_docs omits timestamps
    assert not missing, (ns, missing)


async def test_files_to_postgres_reads_back_equal_with_lightrag(tmp_path, pg_database, monkeypatch):
    built = await build_workspace(tmp_path / "rag", "ws1")
    settings = settings_for(pg_database, built.working_dir)
    report = await copy_between(settings, "files", "ws1", "postgres", "ws1", batch_size=3)
    async with await open_backends(settings, "postgres", "ws1") as dst:
        assert await dst.kv.count("text_chunks") == report.copied["text_chunks"] > 0
    assert report.dropped_fields == {}
    ids = file_ids(built.folder)
    from_files = await read_with_lightrag(built.working_dir, "ws1", ids)
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    from_pg = await read_with_lightrag(built.working_dir, "ws1", ids, storages=PG_STORAGES)
    for ns in (*KV_NS, "doc_status"):
        assert set(from_pg[ns]) == set(from_files[ns]) == set(ids[ns]), ns
        for ident, record in from_files[ns].items():
            assert_kv_equal(ns, record, from_pg[ns][ident])
    for ident, nano in from_files["chunks"].items():
        pg = from_pg["chunks"][ident]
        text_chunk = from_files["text_chunks"][ident]
        assert (pg["content"], pg["file_path"], pg["full_doc_id"]) == (nano["content"], nano["file_path"], nano["full_doc_id"])
        assert (pg["tokens"], pg["chunk_order_index"]) == (text_chunk["tokens"], text_chunk["chunk_order_index"])
    for ident, nano in from_files["entities"].items():
        pg = from_pg["entities"][ident]
        assert (pg["entity_name"], pg["content"], pg["file_path"]) == (nano["entity_name"], nano["content"], nano["file_path"])
        assert pg["chunk_ids"] == nano["source_id"].split(SEP)
    for ident, nano in from_files["relationships"].items():
        pg = from_pg["relationships"][ident]
        assert (pg["source_id"], pg["target_id"], pg["content"]) == (nano["src_id"], nano["tgt_id"], nano["content"])
        assert pg["chunk_ids"] == nano["source_id"].split(SEP)
    for ns in ("chunks", "entities", "relationships"):
        assert from_pg["vectors:" + ns] == from_files["vectors:" + ns], ns
        assert len(from_pg["vectors:" + ns]) == len(ids[ns])
    assert from_pg["nodes"] == from_files["nodes"]
    strip = lambda e: {k: v for k, v in e.items() if k not in ("source", "target")}  # noqa: E731
    assert {k: strip(v) for k, v in from_pg["edges"].items()} == {k: strip(v) for k, v in from_files["edges"].items()}

    # and back: postgres → files (ragstore), read by LightRAG's file classes
    back_report = await copy_between(settings, "postgres", "ws1", "files", "back", batch_size=4)
    assert back_report.dropped_fields == {"chunks": ["chunk_order_index", "tokens"]}
    monkeypatch.undo()
    back = await read_with_lightrag(built.working_dir, "back", ids)
    for ns in KV_NS:
        assert back[ns] == {k: created_filled(v) for k, v in from_files[ns].items()}, ns
    for ns in ("doc_status", "entities", "relationships", "chunks", "vectors:chunks", "vectors:entities",
               "vectors:relationships", "nodes"):
        assert back[ns] == from_files[ns], ns
    assert {k: strip(v) for k, v in back["edges"].items()} == {k: strip(v) for k, v in from_files["edges"].items()}
    for ns in ("text_chunks", "full_entities", "doc_status"):
        name = f"kv_store_{ns}.json"
        again = json.loads((built.working_dir / "back" / name).read_text(encoding="utf-8"))
        original = json.loads((built.folder / name).read_text(encoding="utf-8"))
        assert again == {k: created_filled(v) for k, v in original.items()}, ns
