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


async def test_ids_and_metadata_read_without_the_vectors_match_a_full_read(tmp_path):
    """What a preflight check and a transfer's read-back get from a NanoVectorDB file when they need no
    vector: the same ids and metadata as a full read, in the same order, and no vector component."""
    store = FilesVectors(tmp_path)
    raw = np.random.default_rng(3).standard_normal((7, 16), dtype=np.float32)
    writer = await store.writer("chunks", dim=16)
    await writer.write(VectorBatch([f"c{i}" for i in range(7)], raw,
                                   [{"full_doc_id": "d", "content": f"text {i}", "file_path": "f"} for i in range(7)]))
    await writer.commit()
    full = [b async for b in store.read("chunks", batch_size=3)]
    meta = [b async for b in store.read_meta("chunks", batch_size=3)]
    assert [b.ids for b in meta] == [b.ids for b in full] and [b.meta for b in meta] == [b.meta for b in full]
    assert all(np.asarray(b.vectors).shape == (len(b.ids), 0) for b in meta)
    assert [ids async for ids in store.ids("chunks", batch_size=3)] == [b.ids for b in full]
