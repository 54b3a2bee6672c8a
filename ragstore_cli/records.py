"""The records every layer speaks: LightRAG's own shapes, per storage role and section.

A record read from any backend or archive can be written to any other, because all of them use the
JSON working-dir shapes LightRAG itself writes (docs/architecture.md has the table). Records travel
in batches: a list of KV records, nodes or edges, or one VectorBatch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

import numpy as np

KV_NAMESPACES = ("full_docs", "text_chunks", "llm_response_cache", "full_entities", "full_relations",
                 "entity_chunks", "relation_chunks")
VECTOR_NAMESPACES = ("chunks", "entities", "relationships")
GRAPH_NAMESPACE = "chunk_entity_relation"
DOC_STATUS_NAMESPACE = "doc_status"
DEFAULT_BATCH = 1000


class Role(str, Enum):
    KV = "kv"
    VECTOR = "vector"
    GRAPH = "graph"
    DOC_STATUS = "doc_status"


ROLE_ORDER = (Role.KV, Role.VECTOR, Role.GRAPH, Role.DOC_STATUS)

KVRecord = tuple[str, dict[str, Any]]  # (id, value in LightRAG's JSON shape); doc status records too


@dataclass
class VectorBatch:
    """Rows of one vector namespace: ids, raw (un-normalised) float32 vectors, metadata, same order."""

    ids: list[str]
    vectors: np.ndarray  # shape (n, dim), float32
    meta: list[dict[str, Any]] = field(default_factory=list)  # meta_fields + __created_at__ etc.

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class GraphNode:
    id: str  # entity name; properties["entity_id"] == id
    properties: dict[str, Any]


@dataclass
class GraphEdge:
    source: str
    target: str
    properties: dict[str, Any]


Batch = Union[list[KVRecord], list[GraphNode], list[GraphEdge], VectorBatch]


@dataclass(frozen=True)
class Section:
    """One stream of records of a workspace: `kv/full_docs`, `doc_status`, `graph/nodes`, `vectors/chunks`…"""

    key: str
    role: Role
    namespace: str
    kind: str  # kv | doc_status | graph_nodes | graph_edges | vectors (the archive's section kinds)


#: Every section, in the one order sources are read in (the archive's): KV, doc status, graph, vectors.
SECTIONS: tuple[Section, ...] = (
    *(Section(f"kv/{ns}", Role.KV, ns, "kv") for ns in KV_NAMESPACES),
    Section("doc_status", Role.DOC_STATUS, DOC_STATUS_NAMESPACE, "doc_status"),
    Section("graph/nodes", Role.GRAPH, GRAPH_NAMESPACE, "graph_nodes"),
    Section("graph/edges", Role.GRAPH, GRAPH_NAMESPACE, "graph_edges"),
    *(Section(f"vectors/{ns}", Role.VECTOR, ns, "vectors") for ns in VECTOR_NAMESPACES),
)
SECTION = {s.key: s for s in SECTIONS}

_MASK = (1 << 64) - 1


def _record_bytes(record: Any) -> bytes:
    if isinstance(record, GraphNode):
        data: Any = ["node", record.id, record.properties]
    elif isinstance(record, GraphEdge):
        data = ["edge", record.source, record.target, record.properties]
    else:
        data = list(record)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr).encode("utf-8", "surrogatepass")


def identity(record: Any) -> str:
    """What identifies a record of any section: its id; an edge's unordered pair of ends (edges are
    undirected: either orientation is the same edge)."""
    if isinstance(record, GraphNode):
        return record.id
    if isinstance(record, GraphEdge):
        return "\0".join(sorted((record.source, record.target)))
    return record[0]


def identities(batch: Batch) -> list[str]:
    """The identities of a batch's records (a vector batch: its ids)."""
    return list(batch.ids) if isinstance(batch, VectorBatch) else [identity(record) for record in batch]


@dataclass
class Digest:
    """Order-independent digest of a section's records: their count and the sum of their 64-bit hashes.

    `ids_only` hashes what identifies each record (its id; an edge's unordered pair of ends): two
    backends that store the same records may still spell their values differently (a field one of
    them cannot hold), never their identities."""

    ids_only: bool = False
    count: int = 0
    total: int = 0

    def add(self, batch: Batch) -> None:
        if self.ids_only:
            self.add_identities(identities(batch))
            return
        if isinstance(batch, VectorBatch):
            vectors = np.asarray(batch.vectors, dtype=np.float32)
            parts = [i.encode("utf-8", "surrogatepass") + b"\0" + vectors[n].tobytes()
                     + json.dumps(batch.meta[n] if batch.meta else None, sort_keys=True,
                                  default=repr).encode("utf-8", "surrogatepass")
                     for n, i in enumerate(batch.ids)]
        else:
            parts = [_record_bytes(record) for record in batch]
        self._add(parts)

    def add_identities(self, texts: list[str]) -> None:
        """Records known by their identities alone (`ids_only`): what records.identity() gives."""
        self._add([text.encode("utf-8", "surrogatepass") for text in texts])

    def _add(self, parts: list[bytes]) -> None:
        total = self.total
        for part in parts:
            total += int.from_bytes(hashlib.blake2b(part, digest_size=8).digest(), "little")
        self.total = total & _MASK
        self.count += len(parts)

    def same(self, other: "Digest") -> bool:
        return (self.count, self.total) == (other.count, other.total)
