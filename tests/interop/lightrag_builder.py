"""Build a small but complete LightRAG 1.5.7 workspace with LightRAG's OWN pipeline, offline.

A deterministic fake LLM answers extraction prompts in LightRAG's delimiter format (entities are
the capitalised words of the chunk, relations link neighbours), a hash-seeded fake embedding gives
stable vectors, and a character tokenizer avoids any tiktoken download. Every namespace of
docs/lightrag-formats.md ends up populated, so readers and writers can be compared record by record.

Usage (library tests are async):

    built = await build_workspace(tmp_path / "rag", "ws1")          # file backends
    built = await build_workspace(tmp_path / "rag", "ws1", storages=PG_STORAGES)  # env: POSTGRES_*

Other backends are chosen by LightRAG storage class names; their connection settings come from the
process environment exactly as LightRAG reads them (set them with monkeypatch).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TUPLE = "<|#|>"
COMPLETE = "<|COMPLETE|>"
EMBEDDING_DIM = 16
EMBEDDING_MODEL = "fake-embed"

FILE_STORAGES = {
    "kv_storage": "JsonKVStorage",
    "vector_storage": "NanoVectorDBStorage",
    "graph_storage": "NetworkXStorage",
    "doc_status_storage": "JsonDocStatusStorage",
}
PG_STORAGES = {
    "kv_storage": "PGKVStorage",
    "vector_storage": "PGVectorStorage",
    "graph_storage": "PGTableGraphStorage",
    "doc_status_storage": "PGDocStatusStorage",
}

DEFAULT_DOCS: dict[str, str] = {
    "alice.txt": "Alice met Bob in Paris. Alice works at Acme with Carol.",
    "bob.txt": "Bob founded Zenith in Berlin. Bob and Alice wrote Atlas together.",
    "café.md": "Dana visited Paris. Dana admires Carol and the Louvre — «très belle».",
}
_TYPES = {"Paris": "Location", "Berlin": "Location", "Acme": "Organization", "Zenith": "Organization",
          "Atlas": "Content", "Louvre": "Location"}


class CharTokenizer:
    """One token per character: thread-safe, deep-copyable, needs no download."""

    def encode(self, content: str) -> list[int]:
        return [ord(c) for c in content]

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)


def fake_embedding(texts: list[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """Vectors seeded by md5(text): equal text, equal vector, in every process."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.md5(text.encode("utf-8", "replace")).digest()[:8], "little")
        rows.append(np.random.default_rng(seed).standard_normal(dim).astype(np.float32))
    return np.vstack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


def _input_text(prompt: str) -> str | None:
    match = re.search(r"---Input Text---\s*```\n(.*?)\n```", prompt, re.S)
    return match.group(1) if match else None


def extraction_answer(text: str) -> str:
    """LightRAG's extraction output for `text`: capitalised words as entities, neighbours related."""
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]+\b", text)))
    rows = [f"entity{TUPLE}{n}{TUPLE}{_TYPES.get(n, 'Person')}{TUPLE}{n} appears in the text." for n in names]
    for a, b in zip(names, names[1:]):
        rows.append(f"relation{TUPLE}{a}{TUPLE}{b}{TUPLE}together,mention{TUPLE}{a} is mentioned with {b}.")
    rows.append(COMPLETE)
    return "\n".join(rows)


async def fake_llm(prompt: str, system_prompt: str | None = None, history_messages: Any = None,
                   **kwargs: Any) -> str:
    """Deterministic answers: extraction for extraction prompts, a fixed sentence otherwise."""
    text = _input_text(prompt)
    if text is not None:
        return extraction_answer(text)
    return "A merged description."


@dataclass
class BuiltWorkspace:
    working_dir: Path
    workspace: str
    storages: dict[str, str]
    embedding_dim: int
    embedding_model: str
    doc_ids: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.working_dir / self.workspace if self.workspace else self.working_dir


def fresh_shared_state() -> None:
    """Forget LightRAG's process-wide state: instances with the same workspace share namespace data, so
    a second build (or a read) would otherwise see the previous one's in-memory records, not the disk."""
    from lightrag.kg.postgres_impl import ClientManager
    from lightrag.kg.shared_storage import finalize_share_data, initialize_share_data

    finalize_share_data()
    initialize_share_data(workers=1)
    # LightRAG's PostgreSQL pool is a process-wide singleton; a start that failed (or ran in an event
    # loop that is gone) leaves it behind, and the next LightRAG would use that dead pool.
    ClientManager._instances.update({"db": None, "ref_count": 0, "vector_signature": None})


def make_embedding_func(dim: int = EMBEDDING_DIM, model_name: str = EMBEDDING_MODEL):
    from lightrag.utils import EmbeddingFunc

    async def embed(texts: list[str], **kwargs: Any) -> np.ndarray:
        return fake_embedding(list(texts), dim)

    return EmbeddingFunc(embedding_dim=dim, func=embed, model_name=model_name)


async def build_workspace(
    working_dir: Path,
    workspace: str = "",
    *,
    docs: dict[str, str] | None = None,
    storages: dict[str, str] | None = None,
    embedding_dim: int = EMBEDDING_DIM,
    embedding_model: str = EMBEDDING_MODEL,
) -> BuiltWorkspace:
    """Run LightRAG's own `ainsert` over `docs` (file name → text) into a fresh instance."""
    from lightrag import LightRAG
    from lightrag.base import DocStatus
    from lightrag.utils import Tokenizer

    fresh_shared_state()
    docs = DEFAULT_DOCS if docs is None else docs
    storages = dict(FILE_STORAGES if storages is None else storages)
    working_dir = Path(working_dir)
    working_dir.mkdir(parents=True, exist_ok=True)
    rag = LightRAG(
        working_dir=str(working_dir),
        workspace=workspace,
        llm_model_func=fake_llm,
        embedding_func=make_embedding_func(embedding_dim, embedding_model),
        tokenizer=Tokenizer("chars", CharTokenizer()),
        entity_extract_max_gleaning=0,
        chunk_token_size=60,
        chunk_overlap_token_size=10,
        vector_db_storage_cls_kwargs={"cosine_better_than_threshold": 0.2},
        **storages,
    )
    await rag.initialize_storages()
    try:
        await rag.ainsert(list(docs.values()), file_paths=list(docs.keys()))
        counts = await rag.doc_status.get_status_counts()
        processed = await rag.doc_status.get_docs_by_statuses([DocStatus.PROCESSED])
    finally:
        await rag.finalize_storages()
    if counts.get("processed", 0) != len(docs) or sum(counts.values()) != len(docs):
        raise RuntimeError(f"LightRAG did not process every document: {counts}")
    return BuiltWorkspace(working_dir, workspace, storages, embedding_dim, embedding_model, sorted(processed))


# --------------------------------------------------------------------------- reading back with LightRAG
KV_NS = ("full_docs", "text_chunks", "llm_response_cache", "full_entities", "full_relations",
         "entity_chunks", "relation_chunks")
VECTOR_NS = ("chunks", "entities", "relationships")
META_FIELDS = {
    "chunks": {"full_doc_id", "content", "file_path"},
    "entities": {"entity_name", "source_id", "content", "file_path"},
    "relationships": {"src_id", "tgt_id", "source_id", "content", "file_path"},
}


def storage_class(name: str):
    import importlib

    from lightrag.kg import STORAGES

    return getattr(importlib.import_module(STORAGES[name], "lightrag"), name)


def global_config(working_dir: Path, dim: int = EMBEDDING_DIM) -> dict[str, Any]:
    """The minimal global_config LightRAG's storages need (plus what the PG classes read)."""
    return {"working_dir": str(working_dir), "embedding_batch_num": 10,
            "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": 0.2},
            "max_graph_nodes": 1000, "llm_model_name": "fake", "embedding_dim": dim}


async def read_with_lightrag(working_dir: Path, workspace: str, ids: dict[str, list[str]], *,
                             storages: dict[str, str] | None = None, dim: int = EMBEDDING_DIM,
                             model: str = EMBEDDING_MODEL) -> dict[str, Any]:
    """Read the given ids of every namespace through LightRAG's own storage classes.

    Returns {namespace: {id: record}}, vectors as {"vectors:<ns>": {id: list[float]}}, and the
    graph as {"nodes": {id: props}, "edges": {(a, b) sorted: props}}.
    """
    fresh_shared_state()
    storages = dict(FILE_STORAGES if storages is None else storages)
    config = {**global_config(Path(working_dir), dim), "vector_storage": storages["vector_storage"]}
    embed = make_embedding_func(dim, model)
    out: dict[str, Any] = {}
    opened = []
    try:
        kv_cls = storage_class(storages["kv_storage"])
        for ns in KV_NS:
            store = kv_cls(namespace=ns, workspace=workspace, global_config=config, embedding_func=embed)
            await store.initialize()
            opened.append(store)
            rows = await store.get_by_ids(ids.get(ns, []))
            out[ns] = {i: r for i, r in zip(ids.get(ns, []), rows) if r is not None}
        ds_cls = storage_class(storages["doc_status_storage"])
        store = ds_cls(namespace="doc_status", workspace=workspace, global_config=config, embedding_func=embed)
        await store.initialize()
        opened.append(store)
        rows = await store.get_by_ids(ids.get("doc_status", []))
        out["doc_status"] = {i: r for i, r in zip(ids.get("doc_status", []), rows) if r is not None}
        vec_cls = storage_class(storages["vector_storage"])
        for ns in VECTOR_NS:
            store = vec_cls(namespace=ns, workspace=workspace, global_config=config, embedding_func=embed,
                            meta_fields=META_FIELDS[ns])
            await store.initialize()
            opened.append(store)
            rows = await store.get_by_ids(ids.get(ns, []))
            out[ns] = {i: r for i, r in zip(ids.get(ns, []), rows) if r is not None}
            vectors = await store.get_vectors_by_ids(ids.get(ns, []))
            out["vectors:" + ns] = {k: list(map(float, v)) for k, v in vectors.items()}
        graph_cls = storage_class(storages["graph_storage"])
        graph = graph_cls(namespace="chunk_entity_relation", workspace=workspace, global_config=config,
                          embedding_func=embed)
        await graph.initialize()
        opened.append(graph)
        out["nodes"] = {n["id"] if "id" in n else n["entity_id"]: n for n in await graph.get_all_nodes()}
        out["edges"] = {tuple(sorted((e["source"], e["target"]))): e for e in await graph.get_all_edges()}
    finally:
        for store in opened:
            await store.finalize()
    return out
