"""A replace write drops the ANN index and the plain btree indexes, and leaves every index as it was."""

from __future__ import annotations

import numpy as np
import pytest

from ragstore_cli.records import VectorBatch
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError

TABLE = "lightrag_vdb_chunks_m_8d"


def _indexes(pg_server, db: str) -> str:
    return pg_server.psql(f"SELECT indexdef FROM pg_indexes WHERE tablename = '{TABLE}' ORDER BY indexname",
                          database=db)


def _batch(ids: list[str]) -> VectorBatch:
    meta = [{"full_doc_id": "d", "content": i, "file_path": "f", "tokens": 1, "chunk_order_index": 0} for i in ids]
    return VectorBatch(ids, np.ones((len(ids), 8), np.float32), meta)


async def test_replace_keeps_the_index_set(pg_database, pg_server):
    db = pg_database["POSTGRES_DATABASE"]
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "m", "EMBEDDING_DIM": "8"})
    async with await open_backends(settings, "postgres", "w") as stores:
        first = await stores.vectors.writer("chunks", dim=8)
        await first.write(_batch(["a", "b"]))
        await first.commit()
        before = _indexes(pg_server, db)
        assert "hnsw" in before and "USING btree (id)" in before and "UNIQUE" in before

        again = await stores.vectors.writer("chunks", dim=8)
        await again.write(_batch(["c", "d", "e"]))  # (the table is locked until commit, as before)
        dropped = [definition for _, definition in again.rebuild.defs]
        assert len(dropped) == 3 and "hnsw" in dropped[0] and not any("UNIQUE" in d for d in dropped)
        await again.commit()
        assert _indexes(pg_server, db) == before
        assert await stores.vectors.count("chunks") == 3

        aborted = await stores.vectors.writer("chunks", dim=8)
        await aborted.write(_batch(["x"]))
        await aborted.abort()
        assert _indexes(pg_server, db) == before

        duplicate = await stores.vectors.writer("chunks", dim=8)  # the unique index still catches it in the COPY
        with pytest.raises(DataError, match="duplicate id"):
            await duplicate.write(_batch(["y", "y"]))
            await duplicate.commit()
        assert _indexes(pg_server, db) == before
        assert await stores.vectors.count("chunks") == 3
