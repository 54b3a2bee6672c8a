"""Open LightRAG 1.5.7's own PostgreSQL storages (KV, doc status, vectors) against a test database."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import numpy as np

KV_NAMESPACES = ("full_docs", "text_chunks", "llm_response_cache", "full_entities", "full_relations",
                 "entity_chunks", "relation_chunks")
VECTOR_META = {"chunks": {"full_doc_id", "content", "file_path"},
               "entities": {"entity_name", "source_id", "content", "file_path"},
               "relationships": {"src_id", "tgt_id", "source_id", "content", "file_path"}}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def lightrag_env(env: dict[str, str], **extra: str) -> Iterator[None]:
    """LightRAG reads POSTGRES_* from os.environ only: set them for the block, restore afterwards."""
    wanted = {**env, "LIGHTRAG_VECTOR_STORAGE": "PGVectorStorage", **extra}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@asynccontextmanager
async def lightrag_storages(env: dict[str, str], workdir: Path, model: str | None, dim: int,
                            **extra: str) -> AsyncIterator[dict[str, Any]]:
    """Initialise every PG storage class LightRAG has for KV, doc status, vectors and the table graph
    (PGTableGraphStorage; the AGE graph needs an extension these servers do not have); yield them.

    Yields {"stores": {namespace: storage}, "log": [warning/error records from LightRAG]}.
    """
    from lightrag.kg.pgtable_impl import PGTableGraphStorage
    from lightrag.kg.postgres_impl import PGDocStatusStorage, PGKVStorage, PGVectorStorage
    from lightrag.kg.shared_storage import initialize_share_data
    from lightrag.utils import EmbeddingFunc, logger

    async def embed(texts: list[str], **_: Any) -> np.ndarray:
        return np.ones((len(texts), dim), dtype=np.float32)

    handler = _Collect()
    logger.addHandler(handler)
    config = {"working_dir": str(workdir), "embedding_batch_num": 10,
              "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": 0.2},
              "vector_storage": "PGVectorStorage"}
    func = EmbeddingFunc(embedding_dim=dim, func=embed, model_name=model)
    stores: dict[str, Any] = {}
    with lightrag_env(env, **extra):
        initialize_share_data(workers=1)
        try:
            for ns in KV_NAMESPACES:
                stores[ns] = PGKVStorage(namespace=ns, workspace="default", global_config=config, embedding_func=func)
            stores["doc_status"] = PGDocStatusStorage(namespace="doc_status", workspace="default",
                                                      global_config=config, embedding_func=func)
            for ns, meta in VECTOR_META.items():
                stores[ns] = PGVectorStorage(namespace=ns, workspace="default", global_config=config,
                                             embedding_func=func, meta_fields=meta)
            stores["chunk_entity_relation"] = PGTableGraphStorage(namespace="chunk_entity_relation", workspace="default",
                                                                  global_config=config, embedding_func=func)
            for store in stores.values():
                await store.initialize()
            yield {"stores": stores, "log": handler.records}
        finally:
            for store in stores.values():
                try:
                    await store.finalize()
                except Exception:  # noqa: BLE001 - a store that failed to initialise has nothing to close
                    pass
            logger.removeHandler(handler)
