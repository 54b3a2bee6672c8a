"""ragstore writes into a database whose tables LightRAG created itself, adding another model's vector tables."""

from __future__ import annotations

import numpy as np

from ragstore_cli.records import VectorBatch
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from tests.interop.lightrag_builder import PG_STORAGES, build_workspace


async def test_new_model_tables_next_to_lightrag_tables(tmp_path, pg_database, pg_server, monkeypatch):
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    await build_workspace(tmp_path / "rag", "lr", storages=PG_STORAGES)
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "other-model", "EMBEDDING_DIM": "8"})
    async with await open_backends(settings, "postgres", "mine") as stores:
        writer = await stores.vectors.writer("entities", dim=8)
        meta = [{"entity_name": f"E{i}", "content": f"E{i}", "source_id": "c-1", "file_path": "f"} for i in range(5)]
        await writer.write(VectorBatch([f"ent-{i}" for i in range(5)], np.ones((5, 8), np.float32) * 0.5, meta))
        await writer.commit()
        assert await stores.vectors.count("entities") == 5 and await stores.vectors.dimension("entities") == 8
        kv = await stores.kv.writer("full_entities")
        await kv.write([("doc-1", {"entity_names": ["E1"], "count": 1})])
        await kv.commit()
    db = pg_database["POSTGRES_DATABASE"]
    rows = pg_server.psql("SELECT count(*) FROM lightrag_vdb_entity_other_model_8d WHERE workspace = 'mine'", database=db)
    assert rows.strip() == "5"
    index = pg_server.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'lightrag_vdb_entity_other_model_8d' "
                           "AND indexdef ILIKE '%hnsw%'", database=db)
    assert index.strip()
    lightrag_rows = pg_server.psql("SELECT count(*) FROM lightrag_full_entities WHERE workspace = 'lr'", database=db)
    assert int(lightrag_rows) == 3
