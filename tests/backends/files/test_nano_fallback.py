"""NanoVectorDB files from older LightRAG (records without `vector`) are finished by vectors/nanofile."""

from __future__ import annotations

import json

import numpy as np

from ragstore_cli.records import VectorBatch
from ragstore_cli.backends.files.nano import FilesVectors


async def test_records_without_vector_fall_back_to_matrix_rows(tmp_path):
    store = FilesVectors(tmp_path)
    raw = np.arange(1, 8 * 4 + 1, dtype=np.float32).reshape(8, 4)
    writer = await store.writer("entities", dim=4)
    meta = [{"entity_name": f"e{i}", "content": f"e{i}", "source_id": "c", "file_path": "f"} for i in range(8)]
    await writer.write(VectorBatch([f"ent-{i}" for i in range(8)], raw, meta))
    await writer.commit()
    path = tmp_path / "vdb_entities.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    for record in doc["data"][5:]:
        del record["vector"]  # what LightRAG before 1.3 wrote
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    batches = [b async for b in store.read("entities", batch_size=2)]
    ids = [i for b in batches for i in b.ids]
    assert ids == [f"ent-{i}" for i in range(8)]
    vectors = np.vstack([b.vectors for b in batches])
    assert np.allclose(vectors[:5], raw[:5], rtol=1e-3)  # per-record float16 raw vectors
    normalised = raw[5:] / np.linalg.norm(raw[5:], axis=1, keepdims=True)
    assert np.allclose(vectors[5:], normalised, atol=1e-6)  # only the normalised matrix row exists
    assert [m["entity_name"] for b in batches for m in b.meta] == [f"e{i}" for i in range(8)]
    assert await store.count("entities") == 8 and await store.dimension("entities") == 4
