"""Build NanoVectorDB files with LightRAG 1.5.7 itself, and load files with it, for interop tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np


def fake_vectors(texts: list[str], dim: int) -> np.ndarray:
    """Deterministic, un-normalised embeddings derived from the text."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.md5(t.encode()).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).standard_normal(dim) * (1 + seed % 5)
    return out


def _storage(workdir: Path, namespace: str, dim: int):
    from lightrag.kg import shared_storage
    from lightrag.kg.nano_vector_db_impl import NanoVectorDBStorage
    from lightrag.utils import EmbeddingFunc

    shared_storage.initialize_share_data(workers=1)

    async def embed(texts: list[str], **_: Any) -> np.ndarray:
        return fake_vectors(texts, dim)

    config = {"working_dir": str(workdir), "embedding_batch_num": 32,
              "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": -1.0}}
    return NanoVectorDBStorage(namespace=namespace, workspace="", global_config=config,
                               embedding_func=EmbeddingFunc(embedding_dim=dim, func=embed, model_name="fake"),
                               meta_fields={"content", "file_path", "full_doc_id"})


async def lightrag_write(workdir: Path, contents: dict[str, str], dim: int = 16, namespace: str = "chunks") -> Path:
    """Let LightRAG write vdb_<namespace>.json for these {id: content} and return its path."""
    store = _storage(workdir, namespace, dim)
    await store.initialize()
    await store.upsert({k: {"content": v, "file_path": "f.txt", "full_doc_id": "doc-1"} for k, v in contents.items()})
    await store.index_done_callback()
    return workdir / f"vdb_{namespace}.json"


async def lightrag_load(workdir: Path, ids: list[str], query: np.ndarray, dim: int = 16,
                        namespace: str = "chunks") -> tuple[list[dict | None], dict[str, list[float]], list[dict]]:
    """Load the file with LightRAG: (get_by_ids, get_vectors_by_ids, query top-5)."""
    store = _storage(workdir, namespace, dim)
    await store.initialize()
    got = await store.get_by_ids(ids)
    vecs = await store.get_vectors_by_ids(ids)
    hits = await store.query("q", top_k=5, query_embedding=query.tolist())
    return got, vecs, hits
