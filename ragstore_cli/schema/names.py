"""LightRAG 1.5.7's PostgreSQL table and index names, computed exactly as LightRAG computes them.

Kept in one place so the migrator, the postgres backend and the tests agree on every identifier.
"""

from __future__ import annotations

import hashlib
import re

from ragstore_cli.errors import UsageError

PG_MAX_IDENTIFIER = 63

DOC_FULL = "LIGHTRAG_DOC_FULL"
DOC_CHUNKS = "LIGHTRAG_DOC_CHUNKS"
LLM_CACHE = "LIGHTRAG_LLM_CACHE"
DOC_STATUS = "LIGHTRAG_DOC_STATUS"
FULL_ENTITIES = "LIGHTRAG_FULL_ENTITIES"
FULL_RELATIONS = "LIGHTRAG_FULL_RELATIONS"
ENTITY_CHUNKS = "LIGHTRAG_ENTITY_CHUNKS"
RELATION_CHUNKS = "LIGHTRAG_RELATION_CHUNKS"
VDB_CHUNKS = "LIGHTRAG_VDB_CHUNKS"
VDB_ENTITY = "LIGHTRAG_VDB_ENTITY"
VDB_RELATION = "LIGHTRAG_VDB_RELATION"

#: Non-vector tables, in the order LightRAG's `check_tables` creates them.
KV_TABLES = (DOC_FULL, DOC_CHUNKS, LLM_CACHE, DOC_STATUS, FULL_ENTITIES, FULL_RELATIONS,
             ENTITY_CHUNKS, RELATION_CHUNKS)
VECTOR_BASES = (VDB_CHUNKS, VDB_ENTITY, VDB_RELATION)

#: KV namespace → table (LightRAG's `namespace_to_table_name`).
NAMESPACE_TABLES = {
    "full_docs": DOC_FULL,
    "text_chunks": DOC_CHUNKS,
    "llm_response_cache": LLM_CACHE,
    "doc_status": DOC_STATUS,
    "full_entities": FULL_ENTITIES,
    "full_relations": FULL_RELATIONS,
    "entity_chunks": ENTITY_CHUNKS,
    "relation_chunks": RELATION_CHUNKS,
    "chunks": VDB_CHUNKS,
    "entities": VDB_ENTITY,
    "relationships": VDB_RELATION,
}

#: Vector index type (POSTGRES_VECTOR_INDEX_TYPE) → index-name suffix; every variant LightRAG knows.
VECTOR_INDEX_SUFFIXES = {
    "HNSW": "hnsw_cosine",
    "HNSW_HALFVEC": "hnsw_halfvec_cosine",
    "IVFFLAT": "ivfflat_cosine",
    "VCHORDRQ": "vchordrq_cosine",
}


def model_suffix(model_name: str | None, dim: int) -> str | None:
    """`<sanitised lower model>_<dim>d`, or None when there is no model name (legacy bare tables)."""
    if not isinstance(model_name, str) or not model_name.strip():
        return None
    return f"{re.sub(r'[^a-zA-Z0-9_]', '_', model_name.strip().lower())}_{dim}d"


def vector_table_name(base: str, model_name: str | None, dim: int) -> str:
    """The vector table LightRAG uses for `base` with this embedding model and dimension.

    Raises UsageError when the name would exceed PostgreSQL's 63-character limit (LightRAG's
    ValueError at start-up), so the operator learns it before any table is created.
    """
    if base not in VECTOR_BASES:
        raise UsageError(f"unknown vector table base {base!r}; expected one of {', '.join(VECTOR_BASES)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise UsageError(f"embedding dimension must be a positive integer, got {dim!r}")
    suffix = model_suffix(model_name, dim)
    name = f"{base}_{suffix}" if suffix else base
    if len(name) > PG_MAX_IDENTIFIER:
        raise UsageError(
            f"vector table name {name!r} is {len(name)} characters; PostgreSQL allows {PG_MAX_IDENTIFIER} "
            "(LightRAG refuses it too): use a shorter EMBEDDING_MODEL name"
        )
    return name


def model_of_table(table: str, base: str, dim: int | None) -> str | None:
    """The (sanitised) model part of a vector table's name: `…_demo_hash_embed_16d` → `demo_hash_embed`.

    None for the bare legacy table. Feeding it back to `vector_table_name` with the same dimension
    names the same table (sanitising is idempotent), so an archive that records it restores there.
    """
    suffix = table.lower()[len(base) + 1:] if table.lower().startswith(base.lower() + "_") else ""
    if dim is not None and suffix.endswith(f"_{dim}d"):
        suffix = suffix[: -len(f"_{dim}d")]
    return suffix or None


def vector_table_names(model_name: str | None, dim: int) -> dict[str, str]:
    """The three vector tables (chunks, entities, relationships) for one model and dimension."""
    return {
        "chunks": vector_table_name(VDB_CHUNKS, model_name, dim),
        "entities": vector_table_name(VDB_ENTITY, model_name, dim),
        "relationships": vector_table_name(VDB_RELATION, model_name, dim),
    }


def safe_index_name(table: str, suffix: str) -> str:
    """`idx_<lower table>_<suffix>`, or with an md5 prefix of the table when over 63 bytes (as LightRAG)."""
    full = f"idx_{table.lower()}_{suffix}"
    if len(full.encode("utf-8")) <= PG_MAX_IDENTIFIER:
        return full
    digest = hashlib.md5(table.lower().encode("utf-8")).hexdigest()[:12]
    return f"idx_{digest}_{suffix}"


def kv_index_names(table: str) -> tuple[str, str]:
    """The `(id)` and `(workspace, id)` index names `check_tables` gives a non-vector table."""
    return f"idx_{table.lower()}_id", f"idx_{table.lower()}_workspace_id"


# PGTableGraphStorage's tables (LightRAG 1.5.7 `pgtable_impl.py`), lower case as LightRAG creates them.
GRAPH_NODES = "lightrag_graph_nodes"
GRAPH_EDGES = "lightrag_graph_edges"
GRAPH_TABLES = (GRAPH_NODES, GRAPH_EDGES)


def workspace_tables() -> tuple[str, ...]:
    """Every fixed-name LightRAG table with a `workspace` column, lower case.

    Workspace grants (row-level security) cover these and every table whose name starts with one of
    `workspace_table_prefixes()`; a revision that adds a LightRAG table with a workspace column adds
    its name here.
    """
    return (*(t.lower() for t in KV_TABLES), *GRAPH_TABLES)


def workspace_table_prefixes() -> tuple[str, ...]:
    """Name prefixes (lower case) of the per-model vector tables, created later for each new model."""
    return tuple(base.lower() for base in VECTOR_BASES)
