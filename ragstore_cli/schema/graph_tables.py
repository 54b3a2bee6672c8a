"""LightRAG 1.5.7's PGTableGraphStorage tables, created exactly as that class creates them.

`lightrag_graph_nodes` / `lightrag_graph_edges` (docs/lightrag-formats.md, PostgreSQL): the same columns, defaults, keys,
index names, partial-index predicate and foreign-key names, so a LightRAG process starting with
PGTableGraphStorage afterwards finds everything in place and changes nothing in the catalog. The
statements take LightRAG's own schema lock (a transaction-level advisory lock on the same key), so
a ragstore migration and a LightRAG start never create them at the same time. Used by revision
0012 and by the postgres backend for databases whose schema predates it.
"""

from __future__ import annotations

NODES = "lightrag_graph_nodes"
EDGES = "lightrag_graph_edges"
NAMESPACE = "chunk_entity_relation"
INDEXES = {"idx_lightrag_graph_edges_namespace_tgt": "(workspace, namespace, tgt_id)",
           "idx_lightrag_graph_edges_noncanonical": '(workspace, namespace) WHERE src_id COLLATE "C" > tgt_id COLLATE "C"'}
FOREIGN_KEYS = {"fk_lightrag_graph_edges_src": "src_id", "fk_lightrag_graph_edges_tgt": "tgt_id"}

_ADD_FOREIGN_KEYS = "DO $$ BEGIN\n" + "".join(
    f"  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}' AND conrelid = '{EDGES}'::regclass) THEN\n"
    f"    ALTER TABLE {EDGES} ADD CONSTRAINT {name} FOREIGN KEY (workspace, namespace, {column})\n"
    f"      REFERENCES {NODES} (workspace, namespace, id) ON DELETE CASCADE;\n"
    "  END IF;\n" for name, column in FOREIGN_KEYS.items()) + "END $$"

#: In order; each statement stands alone (Alembic runs them one by one, asyncpg as one script).
STATEMENTS = (
    "SELECT pg_advisory_xact_lock(hashtext('lightrag_pgtable_schema'))",
    f"""CREATE TABLE IF NOT EXISTS {NODES} (
    workspace TEXT NOT NULL, namespace TEXT NOT NULL DEFAULT '{NAMESPACE}', id TEXT NOT NULL,
    properties JSONB NOT NULL DEFAULT '{{}}', updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, namespace, id))""",
    f"""CREATE TABLE IF NOT EXISTS {EDGES} (
    workspace TEXT NOT NULL, namespace TEXT NOT NULL DEFAULT '{NAMESPACE}', src_id TEXT NOT NULL,
    tgt_id TEXT NOT NULL, properties JSONB NOT NULL DEFAULT '{{}}', updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, namespace, src_id, tgt_id))""",
    *(f"CREATE INDEX IF NOT EXISTS {name} ON {EDGES} {definition}" for name, definition in INDEXES.items()),
    _ADD_FOREIGN_KEYS,
)

#: The same, as one script for a single asyncpg execute() inside a transaction.
DDL = ";\n".join(STATEMENTS) + ";"
