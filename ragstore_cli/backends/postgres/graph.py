"""The graph role in PGTableGraphStorage's tables (`lightrag_graph_nodes` / `lightrag_graph_edges`).

Edges are stored once, canonical `src_id = min, tgt_id = max` by Python code-point order (as
LightRAG does); node properties always carry `entity_id` = node id. Writes run in one transaction:
nodes are COPYed, edges are COPYed into a temp table and inserted on commit, after any endpoint
that has no node row got a minimal `{"entity_id": id}` node (LightRAG's own behaviour).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, AsyncIterator

import asyncpg

from ragstore_cli.records import DEFAULT_BATCH, GRAPH_NAMESPACE, GraphEdge, GraphNode
from ragstore_cli.backends.postgres.copy import HeldTransaction, ImportUnit, acquire, explain
from ragstore_cli.errors import DataError
# the same tables, keys, indexes and constraints LightRAG 1.5.7's PGTableGraphStorage creates
from ragstore_cli.schema.graph_tables import EDGES, NODES

if TYPE_CHECKING:
    from ragstore_cli.backends.postgres import PostgresBackend

# Run before deleting a workspace's nodes. Their ON DELETE CASCADE runs one generic-plan DELETE of
# edges per node; on tables never analyzed (fresh from a bulk load) the planner picks the
# (workspace, namespace, tgt_id) index for the src_id cascade and reads every edge of the workspace
# each time: O(n²), 31–39 s for 20k nodes. With statistics it takes the primary key.
ANALYZE_GRAPH = f"ANALYZE {NODES}, {EDGES}"


def _props(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _dumps(props: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(props, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"graph {what}: properties are not JSON ({exc})") from None


class PgGraphWriter(HeldTransaction):
    """Batches of GraphNode/GraphEdge in one transaction (or a savepoint of the import unit's); visible on commit."""

    def __init__(self, pool: asyncpg.Pool, workspace: str, replace: bool, unit: ImportUnit | None = None) -> None:
        self.pool, self.ws, self.replace, self.unit = pool, workspace, replace, unit
        self.conn: asyncpg.Connection | None = None
        self.tx: Any = None
        self.edge_keys: set[tuple[str, str]] = set()
        self.node_ids: set[str] = set()

    async def _start(self) -> asyncpg.Connection:
        if self.conn is None:
            self.conn, self.tx = await acquire(self.pool, self.unit)
            if self.replace:
                await self.conn.execute(ANALYZE_GRAPH)
                await self.conn.execute(f"DELETE FROM {NODES} WHERE workspace = $1 AND namespace = $2",
                                        self.ws, GRAPH_NAMESPACE)
            for name in ("nodes", "edges"):
                await self.conn.execute(f"CREATE TEMP TABLE ragstore_stage_{name} (a TEXT, b TEXT, properties JSONB) "
                                        "ON COMMIT DROP")
        return self.conn

    async def write(self, batch: list[GraphNode | GraphEdge]) -> None:
        nodes, edges = [], []
        try:
            conn = await self._start()
            for item in batch:
                if isinstance(item, GraphNode):
                    if not isinstance(item.id, str) or item.id in self.node_ids:
                        raise DataError(f"graph: node {str(item.id)[:80]!r} is not text or is written twice")
                    self.node_ids.add(item.id)
                    props = {**item.properties, "entity_id": item.id}
                    nodes.append((item.id, None, _dumps(props, f"node {item.id[:60]!r}")))
                elif isinstance(item, GraphEdge):
                    a, b = sorted((item.source, item.target))
                    if (a, b) in self.edge_keys:
                        raise DataError(f"graph: edge {a[:40]!r}-{b[:40]!r} written twice (edges are undirected)")
                    self.edge_keys.add((a, b))
                    edges.append((a, b, _dumps(dict(item.properties), f"edge {a[:30]!r}-{b[:30]!r}")))
                else:
                    raise DataError(f"graph writer got a {type(item).__name__}")
            for name, rows in (("nodes", nodes), ("edges", edges)):
                if rows:
                    await conn.copy_records_to_table(f"ragstore_stage_{name}", records=rows,
                                                     columns=["a", "b", "properties"])
        except DataError:
            await self.abort()
            raise
        except (asyncpg.PostgresError, asyncpg.DataError, ValueError) as exc:
            await self.abort()
            raise explain(exc, "graph") from None
        except BaseException:
            await self.abort()
            raise

    async def commit(self) -> None:
        try:
            conn = await self._start()
            merge = "ON CONFLICT (workspace, namespace, id) DO UPDATE SET properties = " \
                    f"{NODES}.properties || EXCLUDED.properties, updated_at = now()"
            await conn.execute(f"INSERT INTO {NODES} (workspace, namespace, id, properties) "
                               f"SELECT $1, $2, a, properties FROM ragstore_stage_nodes {merge}", self.ws, GRAPH_NAMESPACE)
            await conn.execute(
                f"INSERT INTO {NODES} (workspace, namespace, id, properties) "
                "SELECT DISTINCT $1, $2, x, jsonb_build_object('entity_id', x) FROM "
                "(SELECT a AS x FROM ragstore_stage_edges UNION SELECT b FROM ragstore_stage_edges) AS ends "
                "ON CONFLICT (workspace, namespace, id) DO NOTHING", self.ws, GRAPH_NAMESPACE)
            await conn.execute(
                f"INSERT INTO {EDGES} (workspace, namespace, src_id, tgt_id, properties) "
                "SELECT $1, $2, a, b, properties FROM ragstore_stage_edges "
                "ON CONFLICT (workspace, namespace, src_id, tgt_id) DO UPDATE SET properties = EXCLUDED.properties, "
                "updated_at = now()", self.ws, GRAPH_NAMESPACE)
            await conn.execute("DROP TABLE ragstore_stage_nodes, ragstore_stage_edges")  # the unit goes on
            await self.tx.commit()
            self.tx = None
        except (asyncpg.PostgresError, asyncpg.DataError) as exc:
            await self.abort()
            raise explain(exc, "graph") from None
        except BaseException:
            await self.abort()
            raise
        await self._release()


class PgGraph:
    def __init__(self, backend: "PostgresBackend") -> None:
        self.b = backend

    async def count(self) -> tuple[int, int]:
        if not await self.b.table_exists(NODES):
            return 0, 0
        row = await self.b.lookup.fetchrow(
            f"SELECT (SELECT count(*) FROM {NODES} WHERE workspace = $1 AND namespace = $2) AS n, "
            f"(SELECT count(*) FROM {EDGES} WHERE workspace = $1 AND namespace = $2) AS e",
            self.b.pg_ws, GRAPH_NAMESPACE)
        return int(row["n"]), int(row["e"])

    async def read_nodes(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphNode]]:
        if not await self.b.table_exists(NODES):
            return
        sql = f"SELECT id, properties FROM {NODES} WHERE workspace = $1 AND namespace = $2 ORDER BY id"
        async for rows in self.b.rows(sql, (self.b.pg_ws, GRAPH_NAMESPACE), batch_size):
            yield [GraphNode(r["id"], _props(r["properties"])) for r in rows]

    async def read_edges(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphEdge]]:
        if not await self.b.table_exists(EDGES):
            return
        sql = (f"SELECT src_id, tgt_id, properties FROM {EDGES} WHERE workspace = $1 AND namespace = $2 "
               "ORDER BY src_id, tgt_id")
        async for rows in self.b.rows(sql, (self.b.pg_ws, GRAPH_NAMESPACE), batch_size):
            yield [GraphEdge(r["src_id"], r["tgt_id"], _props(r["properties"])) for r in rows]

    async def writer(self, *, replace: bool = True) -> PgGraphWriter:
        await self.b.ensure_schema()
        return PgGraphWriter(self.b.pool, self.b.pg_ws, replace, self.b.unit)
