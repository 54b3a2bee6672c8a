"""KV, doc-status and vector stores over LightRAG's PostgreSQL tables (mapping.py says how fields map)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

import asyncpg
import numpy as np

from ragstore_cli.backends.base import DEFAULT_BATCH, VECTOR_NAMESPACES, KVRecord, VectorBatch
from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.copy import CopyWriter, decode_vectors, encode_vectors, stream_rows
from ragstore_cli.errors import DataError, UsageError

if TYPE_CHECKING:
    from ragstore_cli.backends.postgres import PostgresBackend


class MappedWriter:
    """Converts JSON-shaped records to rows of one Mapping and COPYs them."""

    def __init__(self, copy: CopyWriter, m: mapping.Mapping, workspace: str) -> None:
        self.copy, self.m, self.workspace = copy, m, workspace

    @property
    def dropped(self) -> set[str]:
        return self.copy.dropped

    async def write(self, batch: list[KVRecord]) -> None:
        rows = []
        try:
            for ident, record in batch:
                if not isinstance(ident, str) or not isinstance(record, dict):
                    raise DataError(f"{self.m.namespace}: records must be (text id, object)")
                self.copy.dropped |= self.m.dropped(record)
                rows.append((self.workspace, ident, *self.m.to_row(ident, record)))
        except BaseException:
            await self.copy.abort()
            raise
        await self.copy.write_rows(rows)

    async def commit(self) -> None:
        await self.copy.commit()

    async def abort(self) -> None:
        await self.copy.abort()


class PgKV:
    def __init__(self, backend: "PostgresBackend") -> None:
        self.b = backend

    def _mapping(self, namespace: str) -> mapping.Mapping:
        if namespace not in mapping.KV:
            raise UsageError(f"unknown namespace {namespace!r}; expected one of: {', '.join(mapping.KV)}")
        return mapping.KV[namespace]

    async def count(self, namespace: str) -> int:
        return await self.b.count_rows(self._mapping(namespace).table)

    async def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        m = self._mapping(namespace)
        if not await self.b.table_exists(m.table):
            return
        sql = f"SELECT id, {m.select} FROM {m.table.lower()} WHERE workspace = $1 ORDER BY id"
        async for rows in stream_rows(self.b.pool, sql, (self.b.pg_ws,), batch_size, snapshot=self.b.snapshot_id):
            yield [(r["id"], m.from_row(r)) for r in rows]

    async def writer(self, namespace: str, *, replace: bool = True) -> MappedWriter:
        m = self._mapping(namespace)
        await self.b.ensure_schema()
        copy = CopyWriter(self.b.pool, m.table, ("workspace", "id", *m.columns), self.b.pg_ws, replace=replace,
                          unit=self.b.unit)
        return MappedWriter(copy, m, self.b.pg_ws)


class PgDocStatus:
    def __init__(self, backend: "PostgresBackend") -> None:
        self.b = backend

    async def count(self) -> int:
        return await self.b.count_rows(mapping.DOC_STATUS.table)

    async def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        m = mapping.DOC_STATUS
        if not await self.b.table_exists(m.table):
            return
        sql = f"SELECT id, {m.select} FROM {m.table.lower()} WHERE workspace = $1 ORDER BY id"
        async for rows in stream_rows(self.b.pool, sql, (self.b.pg_ws,), batch_size, snapshot=self.b.snapshot_id):
            yield [(r["id"], m.from_row(r)) for r in rows]

    async def writer(self, *, replace: bool = True) -> MappedWriter:
        m = mapping.DOC_STATUS
        await self.b.ensure_schema()
        copy = CopyWriter(self.b.pool, m.table, ("workspace", "id", *m.columns), self.b.pg_ws, replace=replace,
                          keep_on_update=(), unit=self.b.unit)
        return MappedWriter(copy, m, self.b.pg_ws)


class VectorWriter:
    """VectorBatch → rows of a model-suffixed vector table; chunk rows completed from text_chunks."""

    def __init__(self, copy: CopyWriter, namespace: str, dim: int, kind: str, workspace: str) -> None:
        self.copy, self.ns, self.dim, self.kind, self.workspace = copy, namespace, dim, kind, workspace
        self.needs_chunk_fields = namespace == "chunks"  # tokens/chunk_order_index (stream_copy fills them)

    @property
    def dropped(self) -> set[str]:
        return self.copy.dropped

    async def write(self, batch: VectorBatch) -> None:
        try:
            vectors = np.asarray(batch.vectors, dtype=np.float32)
            if len(batch.ids) and (vectors.ndim != 2 or vectors.shape != (len(batch.ids), self.dim)):
                raise DataError(f"{self.ns}: expected {len(batch.ids)} vectors of dimension {self.dim}, got {vectors.shape}")
            if not np.isfinite(vectors).all():
                raise DataError(f"{self.ns}: vectors contain NaN or infinity")
            encoded = encode_vectors(vectors, self.kind) if len(batch.ids) else []
            rows, dropped = mapping.vector_rows(self.ns, self.workspace, batch.ids, batch.meta, encoded)
            self.copy.dropped |= dropped
        except BaseException:
            await self.copy.abort()
            raise
        await self.copy.write_rows(rows)

    async def commit(self) -> None:
        await self.copy.commit()

    async def abort(self) -> None:
        await self.copy.abort()


class PgVectors:
    def __init__(self, backend: "PostgresBackend") -> None:
        self.b = backend

    def _check(self, namespace: str) -> str:
        if namespace not in VECTOR_NAMESPACES:
            raise UsageError(f"unknown vector namespace {namespace!r}; expected one of: {', '.join(VECTOR_NAMESPACES)}")
        return namespace

    async def count(self, namespace: str) -> int:
        table = await self.b.vector_table(self._check(namespace))
        return await self.b.count_rows(table) if table else 0

    async def dimension(self, namespace: str) -> int | None:
        table = await self.b.vector_table(self._check(namespace))
        return (await self.b.vector_column(table))[1] if table else None

    async def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]:
        table = await self.b.vector_table(self._check(namespace))
        if not table:
            return
        kind, dim = await self.b.vector_column(table)
        sql = f"SELECT * FROM {table} WHERE workspace = $1 ORDER BY id"
        async for rows in stream_rows(self.b.pool, sql, (self.b.pg_ws,), batch_size, snapshot=self.b.snapshot_id):
            vectors = decode_vectors([r["content_vector"] for r in rows], dim, kind)
            yield VectorBatch([r["id"] for r in rows], vectors, [mapping.vector_meta(namespace, r) for r in rows])

    async def writer(self, namespace: str, *, dim: int, replace: bool = True) -> VectorWriter:
        ns = self._check(namespace)
        await self.b.ensure_schema(dim=dim)
        table = self.b.vector_table_for(ns, dim)
        kind, actual = await self.b.vector_column(table)
        if actual != dim:
            raise DataError(f"{table} holds {actual}-dimensional vectors; cannot write {dim}-dimensional ones")
        ws = self.b.pg_ws
        before = _complete_chunks(table, ws) if ns == "chunks" else None
        rebuild = _IndexRebuild(table) if replace else None
        copy = CopyWriter(self.b.pool, table, ("workspace", "id", *mapping.VECTOR_COLUMNS[ns]), ws, replace=replace,
                          before_commit=_chain(before, rebuild.restore if rebuild else None),
                          on_start=rebuild.drop if rebuild else None, unit=self.b.unit)
        return VectorWriter(copy, ns, dim, kind, ws)


def _chain(*steps: Any) -> Any:
    steps = tuple(s for s in steps if s)

    async def run(conn: asyncpg.Connection) -> None:
        for step in steps:
            await step(conn)

    return run if steps else None


def _complete_chunks(table: str, workspace: str) -> Any:
    """Chunk vectors need tokens/chunk_order_index: take them from text_chunks, never invent them."""

    async def complete(conn: asyncpg.Connection) -> None:
        await conn.execute(
            f"UPDATE {table} AS v SET tokens = COALESCE(v.tokens, c.tokens), "
            "chunk_order_index = COALESCE(v.chunk_order_index, c.chunk_order_index) "
            "FROM lightrag_doc_chunks AS c WHERE v.workspace = $1 AND c.workspace = $1 AND c.id = v.id "
            "AND (v.tokens IS NULL OR v.chunk_order_index IS NULL)", workspace)
        missing = await conn.fetch(f"SELECT id FROM {table} WHERE workspace = $1 AND (tokens IS NULL OR "
                                   "chunk_order_index IS NULL) LIMIT 3", workspace)
        if missing:
            ids = ", ".join(repr(r["id"][:60]) for r in missing)
            raise DataError(f"chunk vectors {ids} have no tokens/chunk_order_index and no text_chunks record to take "
                            "them from: write text_chunks first")

    return complete


INDEX_BUILD_TIMEOUT = 7 * 24 * 3600.0
ANN_METHODS = frozenset({"hnsw", "ivfflat", "vchordrq"})


class _IndexRebuild:
    """During a replace, drop the ANN index and rebuild it once at commit (bulk load, then index).

    When an ANN index is dropped (the table is then locked and re-indexed anyway), the plain btree
    indexes that enforce nothing go too: LightRAG's vector tables carry two, `(id)` and a copy of the
    primary key `(workspace, id)`. Inserting into them row by row (with full-page WAL images) cost
    the server ~20 % more CPU per 1024-dim row during the COPY; a sorted rebuild at commit is cheap
    next to the ANN build. Unique and constraint indexes stay: duplicates fail where they always did."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.defs: list[tuple[str, str]] = []

    async def drop(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            "SELECT c.relname AS indexname, pg_get_indexdef(c.oid) AS indexdef, am.amname, "
            "x.indisunique OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) AS enforces "
            "FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_am am ON am.oid = c.relam "
            "WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace ORDER BY c.relname",
            self.table)
        ann = [r for r in rows if r["amname"] in ANN_METHODS]
        plain = [r for r in rows if r["amname"] == "btree" and not r["enforces"]] if ann else []
        for row in ann + plain:
            self.defs.append((row["indexname"], row["indexdef"]))
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')

    async def restore(self, conn: asyncpg.Connection) -> None:
        if self.defs:
            await conn.execute("SET LOCAL maintenance_work_mem = '2GB'")
        for _name, definition in self.defs:
            # An ANN build takes what it takes (minutes at millions of rows): not bounded by
            # RAGSTORE_COMMAND_TIMEOUT, which exists to catch stalled networks on data statements.
            await conn.execute(definition, timeout=INDEX_BUILD_TIMEOUT)
