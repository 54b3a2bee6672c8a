"""The `postgres` backend: LightRAG's LIGHTRAG_* tables, model-suffixed pgvector tables, PGTable graph.

Workspace "" is PostgreSQL's `default` (docs/lightrag-formats.md, "PostgreSQL"); the workspace is always a bound parameter.
Table names come from `ragstore_cli.schema.names` and, when tables are missing, the schema is
brought to head by `ragstore_cli.schema.api.upgrade` (the same DDL LightRAG runs at start-up).
The explicit workspace given to ragstore wins over POSTGRES_WORKSPACE.
"""

from __future__ import annotations

import asyncio
import contextlib
from copy import copy as shallow_copy
from typing import Any, AsyncIterator

import asyncpg

from ragstore_cli.records import GRAPH_NAMESPACE, KV_NAMESPACES, Role
from ragstore_cli.backends.contract import LoadPlan, NamespaceStats
from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.copy import ImportUnit, Serialized, register_raw_vector_codecs, stream_rows
from ragstore_cli.backends.postgres.graph import ANALYZE_GRAPH, EDGES, NODES, PgGraph
from ragstore_cli.backends.postgres.stores import PgDocStatus, PgKV, PgVectors
from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import create_pool
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.schema import names
from ragstore_cli.schema.graph_tables import DDL as GRAPH_DDL
from ragstore_cli.workspace import PG_DEFAULT, pg_workspace, validate_workspace

ROLES = frozenset(Role)
_VECTOR_BASE = {"chunks": names.VDB_CHUNKS, "entities": names.VDB_ENTITY, "relationships": names.VDB_RELATION}


def to_ragstore(pg_ws: str) -> str:
    return "" if pg_ws == PG_DEFAULT else pg_ws


class PostgresBackend:
    """One database, bound to one workspace value: a BackendSource (by snapshot) and a BackendTarget
    (load.py) for every role."""

    name = "postgres"
    roles = ROLES
    not_carried: dict[str, list[str]] = {}  # LightRAG's PostgreSQL tables keep every field ragstore reads

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings = settings
        self.workspace = workspace  # checked where it came in (registry.create_backend)
        self.pg_ws = pg_workspace(self.workspace)
        self.pool: asyncpg.Pool = None  # type: ignore[assignment]
        self._schema_dims: set[int | None] = set()
        self.reader: Serialized | None = None  # every read goes through it (a snapshot, a load unit)
        self.unit: ImportUnit | None = None  # every writer joins it (a load's one transaction)

    def within(self, *, reader: Serialized | None = None, unit: ImportUnit | None = None) -> "PostgresBackend":
        """This backend with its statements in one place: reads through `reader`, writers joining
        `unit`. Shares the pool and the schema cache; never closed itself (its owner closes the pool)."""
        view = shallow_copy(self)
        view.reader, view.unit = reader, unit
        return view

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator["PostgresBackend"]:
        """The backend as seen from one REPEATABLE READ transaction: every read made through the view
        it yields, table discovery included, sees all roles, namespaces and tables as of one moment.

        The read-only transaction first takes ACCESS SHARE locks on every LightRAG table of the
        schema, before its snapshot exists: a TRUNCATE, table rewrite or DROP — not MVCC-safe, a
        snapshot could see such a table empty — waits until the export ends instead. Plain writes
        (LightRAG's, a `workspace drop`) never wait. Every read then runs on this one connection
        (`lookup` for catalog look-ups and counts, `rows()` for the data, a cursor at a time): a
        reader on another connection would queue behind a DDL statement that itself waits for these
        locks, and the export would stall until the DDL gave up.
        """
        tables = [table for _ns, table, _role in await self._workspace_tables()]
        conn = await self.pool.acquire()
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tx.start()
            if tables:
                await conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS SHARE MODE")
            await conn.fetchval("SELECT 1")  # the first query takes the transaction's snapshot: now
            yield self.within(reader=Serialized(conn))
        finally:
            try:
                await tx.rollback()
            finally:
                await self.pool.release(conn)

    async def rows(self, sql: str, args: tuple[Any, ...], batch_size: int) -> AsyncIterator[list[Any]]:
        """Batches of a query's rows: from a cursor of the reader's transaction (a snapshot's, a load
        unit's; the next batch fetched while the caller works on this one), else from stream_rows on a
        pooled connection."""
        snap = self.reader
        if snap is None:
            async for batch in stream_rows(self.pool, sql, args, batch_size):
                yield batch
            return
        async with snap.lock:
            cursor = await snap.conn.cursor(sql, *args)
        pending = asyncio.ensure_future(snap.locked(cursor.fetch, batch_size))
        try:
            while True:
                batch = await pending
                if not batch:
                    return
                more = len(batch) == batch_size
                if more:
                    pending = asyncio.ensure_future(snap.locked(cursor.fetch, batch_size))
                yield batch
                if not more:
                    return
        finally:
            if not pending.done():  # early exit: let the prefetch finish so the connection stays usable
                await asyncio.gather(pending, return_exceptions=True)

    @property
    def lookup(self) -> Any:
        """Where small look-ups run: the reader's transaction when this view has one, else the pool."""
        return self.reader or self.pool

    async def open(self) -> None:
        if self.pool is None:
            self.pool = await create_pool(self.settings, max_size=4, init=register_raw_vector_codecs)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None  # type: ignore[assignment]
            try:  # a writer abandoned without commit/abort would make close() wait forever
                await asyncio.wait_for(pool.close(), self.settings.postgres.pool_close_timeout or 5.0)
            except asyncio.TimeoutError:
                pool.terminate()

    def kv(self) -> PgKV:
        return PgKV(self)

    def vectors(self) -> PgVectors:
        return PgVectors(self)

    def graph(self) -> PgGraph:
        return PgGraph(self)

    def doc_status(self) -> PgDocStatus:
        return PgDocStatus(self)

    # ------------------------------------------------------------------ catalog helpers
    async def table_exists(self, table: str) -> bool:
        # pg_class read under the transaction's snapshot (to_regclass would see the latest catalog)
        return await self.lookup.fetchval(_TABLE_EXISTS, table.lower())

    async def count_rows(self, table: str) -> int:
        if not await self.table_exists(table):
            return 0
        return int(await self.lookup.fetchval(f"SELECT count(*) FROM {table.lower()} WHERE workspace = $1", self.pg_ws))

    async def vector_column(self, table: str) -> tuple[str, int]:
        row = await self.lookup.fetchrow(
            "SELECT t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = $1 "
            "AND c.relnamespace = current_schema()::regnamespace AND a.attname = 'content_vector'", table.lower())
        if row is None or row["typname"] not in ("vector", "halfvec"):
            raise OperationFailed(f"{table} has no pgvector content_vector column")
        return row["typname"], int(row["atttypmod"])

    def vector_table_for(self, namespace: str, dim: int) -> str:
        return names.vector_table_name(_VECTOR_BASE[namespace], self.settings.embedding.model, dim).lower()

    async def vector_tables(self, namespace: str) -> list[str]:
        """Every vector table of this namespace's base (bare legacy table and model-suffixed ones)."""
        base = _VECTOR_BASE[namespace].lower()
        rows = await self.lookup.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'content_vector' "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND (c.relname = $1 OR c.relname LIKE $2) ORDER BY c.relname", base, base.replace("_", r"\_") + r"\_%")
        return [r["relname"] for r in rows]

    async def vector_table(self, namespace: str) -> str | None:
        """The table holding this workspace's vectors: from EMBEDDING_MODEL/DIM, else the only one with rows."""
        if self.settings.embedding.dim:
            table = self.vector_table_for(namespace, self.settings.embedding.dim)
            return table if await self.table_exists(table) else None
        found = [table for table in await self.vector_tables(namespace) if await self._holds_workspace(table)]
        if len(found) > 1:
            raise UsageError(f"workspace {self.workspace!r} has {namespace} vectors in several tables "
                             f"({', '.join(found)}); set EMBEDDING_MODEL and EMBEDDING_DIM to choose one")
        return found[0] if found else None

    async def _holds_workspace(self, table: str) -> bool:
        return await self.lookup.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace = $1)", self.pg_ws)

    async def check_export(self) -> None:
        """Refuse an export that would miss vectors: EMBEDDING_MODEL/EMBEDDING_DIM choose a table that
        holds none of this workspace's rows while another vector table of the namespace does."""
        dim = self.settings.embedding.dim
        if not dim:
            return  # vector_table() then finds the table holding the workspace's rows by itself
        for namespace in _VECTOR_BASE:
            chosen = self.vector_table_for(namespace, dim)
            if await self.table_exists(chosen) and await self._holds_workspace(chosen):
                continue
            elsewhere = [t for t in await self.vector_tables(namespace) if t != chosen and await self._holds_workspace(t)]
            if elsewhere:
                kind, have = await self.vector_column(elsewhere[0])
                raise UsageError(f"EMBEDDING_MODEL/EMBEDDING_DIM={dim} select {chosen}, which holds no {namespace} vectors "
                                 f"of workspace {self.workspace!r}; they are in {', '.join(elsewhere)} (dimension {have})",
                                 hint="set EMBEDDING_DIM (and EMBEDDING_MODEL) to match the data, or unset them to "
                                      "export the table that holds the vectors")

    def loader(self, plan: LoadPlan) -> Any:
        """This database as a load's target (load.py: one transaction for every section)."""
        from ragstore_cli.backends.postgres.load import PgLoader

        return PgLoader(self, plan)

    async def traces(self, workspace: str, *, remove: bool) -> list[str]:
        from ragstore_cli.backends.postgres.load import traces

        return await traces(self.settings, workspace, remove=remove)

    async def ensure_schema(self, dim: int | None = None) -> list[str]:
        """Bring LightRAG's tables (and this model's vector tables) to head, once per backend."""
        if dim in self._schema_dims:
            return []
        created: list[str] = []
        needed = [t.lower() for t in names.KV_TABLES]
        if dim is not None:
            needed += [self.vector_table_for(ns, dim) for ns in _VECTOR_BASE]
        missing = [t for t in needed if not await self.table_exists(t)]
        kv_missing = [t for t in missing if t in (k.lower() for k in names.KV_TABLES)]
        if kv_missing:  # a fresh database: the whole schema, as `ragstore migrate upgrade` makes it
            from ragstore_cli.schema.api import upgrade

            await upgrade(self.settings, embedding_model=self.settings.embedding.model, embedding_dim=dim)
        elif missing and dim is not None:  # tables LightRAG (or migrate) made; only this model's vector tables
            from ragstore_cli.schema import vectors

            async with self.pool.acquire() as conn:
                done = await vectors.ensure(conn, self.settings, self.settings.embedding.model, dim)
            if done.get("skipped"):
                raise OperationFailed(done.get("note") or "vector tables could not be created")
        if missing:
            created += missing
            await self.pool.expire_connections()  # new connections register the (possibly new) vector codecs
        if not await self.table_exists(NODES):
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute(GRAPH_DDL)
            created += [NODES, EDGES]
        self._schema_dims.add(dim)
        return created

    async def _workspace_tables(self) -> list[tuple[str, str, Role]]:
        """(namespace, table, role) for every existing table that holds rows per workspace."""
        out = [(ns, m.table.lower(), Role.KV) for ns, m in mapping.KV.items()]
        out.append(("doc_status", mapping.DOC_STATUS.table.lower(), Role.DOC_STATUS))
        for ns in _VECTOR_BASE:
            out += [(ns, t, Role.VECTOR) for t in await self.vector_tables(ns)]
        out += [(GRAPH_NAMESPACE + ":nodes", NODES, Role.GRAPH), (GRAPH_NAMESPACE + ":edges", EDGES, Role.GRAPH)]
        return [item for item in out if await self.table_exists(item[1])]

    # ------------------------------------------------------------------ workspace operations
    async def list_workspaces(self) -> list[str]:
        tables = await self._workspace_tables()
        if not tables:
            return []
        union = " UNION ".join(f"SELECT DISTINCT workspace FROM {t}" for _, t, _ in tables)
        rows = await self.pool.fetch(f"SELECT workspace FROM ({union}) AS w ORDER BY workspace")
        return [to_ragstore(r["workspace"]) for r in rows]

    async def stats(self) -> list[NamespaceStats]:
        result = []
        for ns, table, role in await self._workspace_tables():
            stamp = "updated_at" if role in (Role.GRAPH, Role.DOC_STATUS) else "update_time"
            row = await self.lookup.fetchrow(
                f"SELECT count(*) AS n, sum(pg_column_size(t.*)) AS bytes, "
                f"extract(epoch FROM max(t.{stamp}))::float8 AS last FROM {table} AS t WHERE workspace = $1", self.pg_ws)
            if not row["n"]:
                continue
            dim = model = None
            if role is Role.VECTOR:
                dim = (await self.vector_column(table))[1]
                model = names.model_of_table(table, _VECTOR_BASE[ns], dim)
            result.append(NamespaceStats(ns, role, int(row["n"]), int(row["bytes"] or 0), row["last"], dim, model, table))
        return result

    async def _in_transaction(self, statements: list[tuple[str, str, tuple[Any, ...]]]) -> dict[str, int]:
        done: dict[str, int] = {}
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                if any(sql.startswith(f"DELETE FROM {NODES} ") for _, sql, _ in statements):
                    # before any graph row changes (graph.py says why): statistics taken after this
                    # transaction deleted the edges would call the table empty, and mislead the plan
                    await conn.execute(ANALYZE_GRAPH)
                for label, sql, args in statements:
                    status = await conn.execute(sql, *args)
                    done[label] = done.get(label, 0) + int(status.split()[-1])
        return {k: v for k, v in done.items() if v}

    async def drop_workspace(self) -> dict[str, int]:
        statements = []
        for ns, table, role in await self._workspace_tables():
            if table == EDGES:  # counted before the node delete cascades them away
                statements.insert(0, (ns, f"DELETE FROM {table} WHERE workspace = $1", (self.pg_ws,)))
            else:
                statements.append((ns, f"DELETE FROM {table} WHERE workspace = $1", (self.pg_ws,)))
        return await self._in_transaction(statements)

    async def _require_empty(self, target: str) -> str:
        pg_target = pg_workspace(target)
        for _ns, table, _role in await self._workspace_tables():
            if await self.pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace = $1)", pg_target):
                raise UsageError(f"workspace {target!r} already has rows in {table}")
        return pg_target

    async def _columns(self, table: str) -> list[str]:
        rows = await self.pool.fetch("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) "
                                     "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", table)
        return [r["attname"] for r in rows]

    async def copy_workspace(self, target: str) -> dict[str, int]:
        """Server-side INSERT … SELECT per table, one transaction (nodes before edges for the FKs)."""
        pg_target = await self._require_empty(target)
        statements = []
        for ns, table, _role in await self._workspace_tables():
            cols = [c for c in await self._columns(table) if c != "workspace"]
            listed = ", ".join(f'"{c}"' for c in cols)
            statements.append((ns, f"INSERT INTO {table} (workspace, {listed}) SELECT $2, {listed} FROM {table} "
                                   "WHERE workspace = $1", (self.pg_ws, pg_target)))
        statements.sort(key=lambda s: s[0] == GRAPH_NAMESPACE + ":edges")
        return await self._in_transaction(statements)

    async def rename_workspace(self, target: str) -> dict[str, int]:
        """UPDATE … SET workspace per table in one transaction; graph nodes are moved around their edges."""
        pg_target = await self._require_empty(target)
        args = (self.pg_ws, pg_target)
        statements = []
        for ns, table, _role in await self._workspace_tables():
            if table not in (NODES, EDGES):
                statements.append((ns, f"UPDATE {table} SET workspace = $2 WHERE workspace = $1", args))
        if await self.table_exists(NODES):
            statements += [
                (GRAPH_NAMESPACE + ":nodes", f"INSERT INTO {NODES} (workspace, namespace, id, properties, updated_at) "
                 f"SELECT $2, namespace, id, properties, updated_at FROM {NODES} WHERE workspace = $1", args),
                (GRAPH_NAMESPACE + ":edges", f"UPDATE {EDGES} SET workspace = $2 WHERE workspace = $1", args),
                (GRAPH_NAMESPACE + ":removed", f"DELETE FROM {NODES} WHERE workspace = $1", (self.pg_ws,)),
            ]
        done = await self._in_transaction(statements)
        done.pop(GRAPH_NAMESPACE + ":removed", None)
        return done

    async def create_workspace(self, *, embedding_model: str | None = None, embedding_dim: int | None = None) -> list[str]:
        dim = embedding_dim or self.settings.embedding.dim
        return await self.ensure_schema(dim=dim)


_TABLE_EXISTS = ("SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relkind IN ('r', 'p') "
                 "AND relnamespace = current_schema()::regnamespace)")


def create(settings: Settings, workspace: str) -> PostgresBackend:
    """Plug-in entry point (see backends/registry.py)."""
    return PostgresBackend(settings, validate_workspace(workspace))  # the package's edge; a Workspace passes as is


__all__ = ["PostgresBackend", "create", "KV_NAMESPACES"]
