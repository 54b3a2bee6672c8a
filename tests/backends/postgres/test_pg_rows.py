"""The bulk row builders give exactly the rows of the per-record definitions (no server needed)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.copy import VECTOR_TYPES, encode_vectors

METAS = [
    {"full_doc_id": "d", "content": "c", "file_path": "f", "__created_at__": 1700000000, "extra": 1},
    {"__created_at__": 1700000000.7, "tokens": 3, "chunk_order_index": 2},
    {"create_time": 1600000000},
    {"__created_at__": True, "create_time": 1500000000},
    {"entity_name": "E", "source_id": "a<SEP>b", "src_id": "s", "tgt_id": "t", "vector": "x", "__id__": 1,
     "__created_at__": 1700000000},
    {"__created_at__": 1700000000, "source_id": None, "other": "y"},
]


def vector_row(ns: str, ident: str, meta: dict[str, Any], vector: Any) -> tuple:
    """The columns of one record, written the plain way: the definition the bulk builder must match."""
    created = mapping.epoch_to_ts(meta.get("__created_at__") or meta.get("create_time"))
    source_ids = None if meta.get("source_id") is None else str(meta["source_id"]).split(mapping.SEP)
    if ns == "chunks":
        return (meta.get("full_doc_id"), meta.get("chunk_order_index"), meta.get("tokens"), meta.get("content"),
                vector, meta.get("file_path"), created, created)
    if ns == "entities":
        return (meta.get("entity_name"), meta.get("content"), vector, source_ids, meta.get("file_path"), created, created)
    return (meta.get("src_id"), meta.get("tgt_id"), meta.get("content"), vector, source_ids,
            meta.get("file_path"), created, created)


@pytest.mark.parametrize("ns", ["chunks", "entities", "relationships"])
def test_vector_rows_match_vector_row(ns: str) -> None:
    ids = [f"id{i}" for i in range(len(METAS))]
    vectors = [b"v%d" % i for i in range(len(METAS))]
    rows, dropped = mapping.vector_rows(ns, "ws", ids, METAS, vectors)
    assert rows == [("ws", i, *vector_row(ns, i, m, v)) for i, m, v in zip(ids, METAS, vectors)]
    assert dropped == {k for m in METAS for k in m
                       if k not in mapping.VECTOR_KEYS[ns] and k not in mapping.SYSTEM_KEYS}


def test_vector_rows_without_meta() -> None:
    rows, dropped = mapping.vector_rows("chunks", "ws", ["a"], [], [b"v"])
    assert rows[0][:8] == ("ws", "a", None, None, None, None, b"v", None) and not dropped


@pytest.mark.parametrize("kind", ["vector", "halfvec"])
@pytest.mark.parametrize("shape", [(50, 1024), (3, 5), (0, 8), (1, 1)])
def test_encode_vectors_is_pgvector_binary(kind: str, shape: tuple[int, int]) -> None:
    mat = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 100
    values = np.ascontiguousarray(mat, dtype=VECTOR_TYPES[kind])
    expected = [struct.pack(">HH", shape[1], 0) + row.tobytes() for row in values]
    assert encode_vectors(mat, kind) == expected
    assert encode_vectors(mat.astype(np.float64), kind) == expected  # float64 input rounds the same way
