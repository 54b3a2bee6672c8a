"""KV, doc-status and vector stores over LightRAG's PostgreSQL tables (mapping.py says how fields map)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

import asyncpg
import numpy as np

from ragstore_cli.records import DEFAULT_BATCH, VECTOR_NAMESPACES, KVRecord, VectorBatch
from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.ann_index import IndexRebuild
from ragstore_cli.backends.postgres.chunk_fields import ChunkFieldMap, ChunkFields
from ragstore_cli.backends.postgres.copy import CopyTarget, CopyWriter, decode_vectors, encode_vectors
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.schema import names

if TYPE_CHECKING:
    from ragstore_cli.backends.postgres import PostgresBackend


class MappedWriter:
    """Converts JSON-shaped records to rows of one Mapping and COPYs them."""

    def __init__(self, copy: CopyWriter, m: mapping.Mapping, workspace: str,
                 remember: ChunkFieldMap | None = None) -> None:
        self.copy, self.m, self.workspace, self.remember = copy, m, workspace, remember

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
        if self.remember is not None:
            self.remember.add(batch)

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
        async for rows in self.b.rows(sql, (self.b.pg_ws,), batch_size):
            yield [(r["id"], m.from_row(r)) for r in rows]

    async def writer(self, namespace: str, *, replace: bool = True) -> MappedWriter:
        m = self._mapping(namespace)
        await self.b.ensure_schema()
        copy = CopyWriter(self.b.pool, CopyTarget(m.table, ("workspace", "id", *m.columns), self.b.pg_ws, replace),
                          self.b.unit)
        remember = None
        if self.b.unit is not None and namespace == "text_chunks":
            remember = self.b.unit.chunk_fields = ChunkFieldMap()  # for the chunk vectors that follow
        return MappedWriter(copy, m, self.b.pg_ws, remember)


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
        async for rows in self.b.rows(sql, (self.b.pg_ws,), batch_size):
            yield [(r["id"], m.from_row(r)) for r in rows]

    async def writer(self, *, replace: bool = True) -> MappedWriter:
        m = mapping.DOC_STATUS
        await self.b.ensure_schema()
        copy = CopyWriter(self.b.pool, CopyTarget(m.table, ("workspace", "id", *m.columns), self.b.pg_ws, replace,
                                                  keep_on_update=()), self.b.unit)
        return MappedWriter(copy, m, self.b.pg_ws)


class VectorWriter:
    """VectorBatch → rows of a model-suffixed vector table; chunk rows completed from text_chunks."""

    def __init__(self, copy: CopyWriter, namespace: str, dim: int, kind: str, workspace: str, *,
                 rebuild: IndexRebuild | None = None, known_fields: ChunkFieldMap | None = None) -> None:
        self.copy, self.ns, self.dim, self.kind, self.workspace = copy, namespace, dim, kind, workspace
        self.rebuild = rebuild  # a replace's plan: when and how the ANN index is rebuilt
        self.known_fields = known_fields  # text_chunks written earlier in the same import unit

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
            metas = self.known_fields.fill(batch.ids, batch.meta) if self.known_fields and batch.meta else batch.meta
            rows, dropped = mapping.vector_rows(self.ns, self.workspace, batch.ids, metas, encoded)
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

    async def peak_bound(self, namespace: str) -> float | None:
        """An upper bound of |value| over the workspace's vectors, computed by the server without
        sending them: their largest L2 norm (no component exceeds its vector's norm; a halfvec
        column's are float16 already). None: no vectors."""
        table = await self.b.vector_table(self._check(namespace))
        if not table:
            return None
        norm = "l2_norm" if (await self.b.vector_column(table))[0] == "halfvec" else "vector_norm"
        bound = await self.b.lookup.fetchval(f"SELECT max({norm}(content_vector)) FROM {table} WHERE workspace = $1",
                                             self.b.pg_ws)
        return None if bound is None else float(bound)

    async def dimension(self, namespace: str) -> int | None:
        table = await self.b.vector_table(self._check(namespace))
        return (await self.b.vector_column(table))[1] if table else None

    async def model(self, namespace: str) -> str | None:
        """The model part of the name of the table holding this workspace's vectors (None: bare table)."""
        table = await self.b.vector_table(self._check(namespace))
        if not table:
            return None
        return names.model_of_table(table, names.NAMESPACE_TABLES[namespace], (await self.b.vector_column(table))[1])

    async def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]:
        table = await self.b.vector_table(self._check(namespace))
        if not table:
            return
        kind, dim = await self.b.vector_column(table)
        sql = f"SELECT * FROM {table} WHERE workspace = $1 ORDER BY id"
        async for rows in self.b.rows(sql, (self.b.pg_ws,), batch_size):
            vectors = decode_vectors([r["content_vector"] for r in rows], dim, kind)
            yield VectorBatch([r["id"] for r in rows], vectors, [mapping.vector_meta(namespace, r) for r in rows])

    async def writer(self, namespace: str, *, dim: int, replace: bool = True,
                     expected_rows: int | None = None) -> VectorWriter:
        ns = self._check(namespace)
        await self.b.ensure_schema(dim=dim)
        table = self.b.vector_table_for(ns, dim)
        kind, actual = await self.b.vector_column(table)
        if actual != dim:
            raise DataError(f"{table} holds {actual}-dimensional vectors; cannot write {dim}-dimensional ones")
        ws = self.b.pg_ws
        fields = ChunkFields(table, ws) if ns == "chunks" else None
        observer = self.b.unit.observer if self.b.unit is not None else None
        rebuild = IndexRebuild(table, ws, dim, expected_rows, observer) if replace else None
        copy = CopyWriter(self.b.pool, CopyTarget(
            table, ("workspace", "id", *mapping.VECTOR_COLUMNS[ns]), ws, replace,
            on_start=_chain(rebuild and rebuild.drop, fields and fields.install),
            before_commit=_chain(fields and fields.finish, rebuild and rebuild.restore)), self.b.unit)
        known = self.b.unit.chunk_fields if ns == "chunks" and self.b.unit is not None else None
        return VectorWriter(copy, ns, dim, kind, ws, rebuild=rebuild, known_fields=known)


def _chain(*steps: Any) -> Any:
    steps = tuple(s for s in steps if s)

    async def run(conn: asyncpg.Connection) -> None:
        for step in steps:
            await step(conn)

    return run if steps else None
