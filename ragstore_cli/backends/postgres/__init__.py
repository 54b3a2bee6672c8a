"""The `postgres` backend: LightRAG's LIGHTRAG_* tables, model-suffixed pgvector tables, PGTable graph.

Workspace "" is PostgreSQL's `default` (reference §3.4); the workspace is always a bound parameter.
Table names come from `ragstore_cli.schema.names` and, when tables are missing, the schema is
brought to head by `ragstore_cli.schema.api.upgrade` (the same DDL LightRAG runs at start-up).
The explicit workspace given to ragstore wins over POSTGRES_WORKSPACE.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Iterable

import asyncpg

from ragstore_cli.backends.base import GRAPH_NAMESPACE, KV_NAMESPACES, NamespaceStats, Role
from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.copy import ImportUnit, register_raw_vector_codecs
from ragstore_cli.backends.postgres.graph import ANALYZE_GRAPH, DDL as GRAPH_DDL, EDGES, NODES, PgGraph
from ragstore_cli.backends.postgres.stores import PgDocStatus, PgKV, PgVectors
from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import create_pool
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.schema import names
from ragstore_cli.workspace import PG_DEFAULT, pg_workspace, validate_workspace

ROLES = frozenset(Role)
_VECTOR_BASE = {"chunks": names.VDB_CHUNKS, "entities": names.VDB_ENTITY, "relationships": names.VDB_RELATION}


def to_ragstore(pg_ws: str) -> str:
    return "" if pg_ws == PG_DEFAULT else pg_ws


class PostgresBackend:
    """One database, bound to one workspace value."""

    name = "postgres"
    roles = ROLES

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings = settings
        self.workspace = validate_workspace(workspace)
        self.pg_ws = pg_workspace(self.workspace)
        self.pool: asyncpg.Pool = None  # type: ignore[assignment]
        self._schema_dims: set[int | None] = set()
        self.snapshot_id: str | None = None  # set inside snapshot(): every reader uses it
        self.unit: ImportUnit | None = None  # set inside import_unit(): every writer shares it

    @contextlib.asynccontextmanager
    async def import_unit(self, dims: Iterable[int | None] = ()) -> AsyncIterator[ImportUnit]:
        """Every writer handed out inside shares ONE connection and transaction, committed on a clean exit.

        Why: an import must show the workspace old or new, never a mix of sections. The schema for
        `dims` (and the KV/graph tables) is made first, on other connections, so that no DDL has to
        wait behind the locks the unit holds.
        """
        if self.unit is not None:
            raise OperationFailed("an import unit is already open on this backend")
        for dim in dict.fromkeys([None, *dims]):
            await self.ensure_schema(dim)
        unit = self.unit = ImportUnit(self.pool)
        try:
            yield unit
        except BaseException:
            await unit.rollback()
            raise
        else:
            await unit.commit()
        finally:
            self.unit = None

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[str]:
        """One REPEATABLE READ snapshot for every read made inside (export's consistent view).

        A read-only transaction exports its snapshot and stays open; each reader's own transaction
        then runs `SET TRANSACTION SNAPSHOT`, so all roles and namespaces see one database state.
        """
        conn = await self.pool.acquire()
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tx.start()
            self.snapshot_id = await conn.fetchval("SELECT pg_export_snapshot()")
            yield self.snapshot_id
        finally:
            self.snapshot_id = None
            try:
                await tx.rollback()
            finally:
                await self.pool.release(conn)

    async def open(self) -> None:
        if self.pool is None:
            self.pool = await create_pool(self.settings, max_size=4, init=register_raw_vector_codecs)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None  # type: ignore[assignment]
            try:  # a writer abandoned without commit/abort would make close() wait forever
                await asyncio.wait_for(pool.close(), self.settings["POSTGRES_POOL_CLOSE_TIMEOUT"] or 5.0)
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
        return await self.pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table.lower())

    async def count_rows(self, table: str) -> int:
        if not await self.table_exists(table):
            return 0
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {table.lower()} WHERE workspace = $1", self.pg_ws))

    async def vector_column(self, table: str) -> tuple[str, int]:
        row = await self.pool.fetchrow(
            "SELECT t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = to_regclass($1) AND a.attname = 'content_vector'", table.lower())
        if row is None or row["typname"] not in ("vector", "halfvec"):
            raise OperationFailed(f"{table} has no pgvector content_vector column")
        return row["typname"], int(row["atttypmod"])

    def vector_table_for(self, namespace: str, dim: int) -> str:
        return names.vector_table_name(_VECTOR_BASE[namespace], self.settings["EMBEDDING_MODEL"], dim).lower()

    async def vector_tables(self, namespace: str) -> list[str]:
        """Every vector table of this namespace's base (bare legacy table and model-suffixed ones)."""
        base = _VECTOR_BASE[namespace].lower()
        rows = await self.pool.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'content_vector' "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND (c.relname = $1 OR c.relname LIKE $2) ORDER BY c.relname", base, base.replace("_", r"\_") + r"\_%")
        return [r["relname"] for r in rows]

    async def vector_table(self, namespace: str) -> str | None:
        """The table holding this workspace's vectors: from EMBEDDING_MODEL/DIM, else the only one with rows."""
        if self.settings["EMBEDDING_DIM"]:
            table = self.vector_table_for(namespace, self.settings["EMBEDDING_DIM"])
            return table if await self.table_exists(table) else None
        found = []
        for table in await self.vector_tables(namespace):
            if await self.pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace = $1)", self.pg_ws):
                found.append(table)
        if len(found) > 1:
            raise UsageError(f"workspace {self.workspace!r} has {namespace} vectors in several tables "
                             f"({', '.join(found)}); set EMBEDDING_MODEL and EMBEDDING_DIM to choose one")
        return found[0] if found else None

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

            await upgrade(self.settings, embedding_model=self.settings["EMBEDDING_MODEL"], embedding_dim=dim)
        elif missing and dim is not None:  # tables LightRAG (or migrate) made; only this model's vector tables
            from ragstore_cli.schema import vectors

            async with self.pool.acquire() as conn:
                done = await vectors.ensure(conn, self.settings, self.settings["EMBEDDING_MODEL"], dim)
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
            row = await self.pool.fetchrow(
                f"SELECT count(*) AS n, sum(pg_column_size(t.*)) AS bytes, "
                f"extract(epoch FROM max(t.{stamp}))::float8 AS last FROM {table} AS t WHERE workspace = $1", self.pg_ws)
            if not row["n"]:
                continue
            dim = model = None
            if role is Role.VECTOR:
                dim = (await self.vector_column(table))[1]
                model = table[len(_VECTOR_BASE[ns]) + 1:] or None
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
        dim = embedding_dim or self.settings["EMBEDDING_DIM"]
        return await self.ensure_schema(dim=dim)


def create(settings: Settings, workspace: str) -> PostgresBackend:
    """Plug-in entry point (see backends/registry.py)."""
    return PostgresBackend(settings, workspace)


__all__ = ["PostgresBackend", "create", "KV_NAMESPACES"]
