"""Loading into PostgreSQL: the backend's part of the contract's Target.

Every section of a load is written in ONE transaction of an `ImportUnit` (copy.py), committed when
the load ends — together with the removal of the load's ledger row, so the workspace and the ledger
change at once: a killed load leaves the workspace exactly as it was, and `--resume` redoes every
PostgreSQL section. Before the unit opens, the checks that could refuse run read-only: the vector
tables' names, the index pgvector can build, pgvector itself, and whether every chunk vector will
get its `tokens`/`chunk_order_index` (chunk_fields.py).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from ragstore_cli.backends.contract import Check, LoadPlan, NoteKeeper
from ragstore_cli.backends.sections import StoreSession, ledger_traces, read_section
from ragstore_cli.backends.postgres.chunk_fields import ChunkFieldCheck
from ragstore_cli.backends.postgres import mapping
from ragstore_cli.backends.postgres.copy import ImportUnit, Serialized
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.records import DEFAULT_BATCH, SECTION, Batch, Role
from ragstore_cli.schema import names

_LEDGER_DDL = ("CREATE TABLE IF NOT EXISTS ragstore_import_ledger (workspace TEXT PRIMARY KEY, "
               "state JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
_LEDGER_EXISTS = "SELECT to_regclass('ragstore_import_ledger') IS NOT NULL"


class PgLedgerStore:
    """One row per workspace in `ragstore_import_ledger` (created by the first save: a dry run creates nothing)."""

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings, self.workspace = settings, workspace or "default"
        self._conn: Any = None
        self._table = False

    async def _c(self, create: bool = True) -> Any:
        if self._conn is None:
            from ragstore_cli.connect.postgres import connect

            self._conn = await connect(self.settings, command_timeout=self.settings.ragstore.command_timeout)
        if create and not self._table:
            await self._conn.execute(_LEDGER_DDL)
            self._table = True
        return self._conn

    async def load(self) -> dict[str, Any] | None:
        conn = await self._c(create=False)
        if not await conn.fetchval(_LEDGER_EXISTS):
            return None
        raw = await conn.fetchval("SELECT state::text FROM ragstore_import_ledger WHERE workspace = $1", self.workspace)
        return json.loads(raw) if raw else None

    async def save(self, state: dict[str, Any]) -> None:
        await (await self._c()).execute(
            "INSERT INTO ragstore_import_ledger (workspace, state) VALUES ($1, $2::jsonb) "
            "ON CONFLICT (workspace) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            self.workspace, json.dumps(state))

    async def clear(self, conn: Any = None) -> None:
        """Remove the row; with `conn` (the load unit's connection), as part of that transaction."""
        if conn is None and not await (await self._c(create=False)).fetchval(_LEDGER_EXISTS):
            return
        await (conn or await self._c()).execute("DELETE FROM ragstore_import_ledger WHERE workspace = $1",
                                                self.workspace)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


async def traces(settings: Settings, workspace: str, *, remove: bool) -> list[str]:
    """The ledger row a killed or refused load left for `workspace`."""
    store = PgLedgerStore(settings, workspace)
    return await ledger_traces(store, f"postgres: ragstore_import_ledger row {store.workspace!r}", remove=remove)


class PgLoader:
    """One load into this database (see the module docstring)."""

    def __init__(self, backend: Any, plan: LoadPlan) -> None:
        self.backend, self.plan = backend, plan
        self.chunk_check: ChunkFieldCheck | None = None

    def precheck(self) -> None:
        return None

    def ledger(self) -> PgLedgerStore:
        return PgLedgerStore(self.backend.settings, self.plan.workspace)

    async def checks(self) -> list[Check]:
        """Refuse, read-only, what PostgreSQL would refuse half-way; the chunk-vector check reads records."""
        if Role.VECTOR not in self.plan.roles:
            return []
        backend, model = self.backend, self.backend.settings.embedding.model
        for dim in self.plan.dims:
            tables = names.vector_table_names(model, dim)
            if all([await backend.table_exists(t) for t in tables.values()]):
                continue
            from ragstore_cli.schema import vectors

            vectors.index_spec(backend.settings, dim)
            async with backend.pool.acquire() as conn:
                state = await vectors.pgvector(conn)
            if state["installed"] is None and state["available"] is None:
                raise UsageError(f"pgvector is not available on this server: the vector tables "
                                 f"{', '.join(t.lower() for t in tables.values())} cannot be created")
        if self.plan.model_from_source and self.plan.model and self.plan.dim:
            table = names.vector_table_name(names.VDB_CHUNKS, self.plan.model, self.plan.dim).lower()
            self.plan.warnings.append(
                f"EMBEDDING_MODEL is not set: the vectors go to the source's model's tables ({table} and its "
                f"siblings), which LightRAG reads with EMBEDDING_MODEL={self.plan.model}")
        if not self.plan.counts.get("vectors/chunks"):
            return []
        here = self.plan.text_chunks_here
        self.chunk_check = ChunkFieldCheck(backend, text_chunks_in_postgres=here,
                                           existing_rows=here and not self.plan.replace)
        return [self.chunk_check]

    async def session(self) -> "PgSession":
        for dim in dict.fromkeys([None, *self.plan.dims]):  # DDL first, on other connections: never behind the unit's locks
            await self.backend.ensure_schema(dim)
        known = self.chunk_check.map if self.chunk_check is not None and not self.chunk_check.map.full else None
        return PgSession(self, ImportUnit(self.backend.pool, chunk_fields=known, observer=self.plan.observer))


class PgSession(StoreSession):
    """Every writer of the load shares the unit's one connection and transaction."""

    deferred = True
    durable = False  # nothing of the unit survives a kill: --resume redoes every PostgreSQL section

    def __init__(self, loader: PgLoader, unit: ImportUnit) -> None:
        super().__init__(loader.backend.within(unit=unit), loader.plan)
        self.loader, self.unit = loader, unit

    async def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        """The section as this unit wrote it (inside its transaction, before the commit)."""
        async for batch in read_section(await self._view(), key, batch_size):
            yield batch

    async def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        """The ids of a KV, doc-status or vector section, read without the rows (a chunk vector's row is
        ~4 KB of vector and its text); the graph's as the records say."""
        section = SECTION[key]
        if section.role is Role.GRAPH:
            async for ids in super().identities(key, batch_size):
                yield ids
            return
        view = await self._view()
        if section.role is Role.VECTOR:
            table = await view.vector_table(section.namespace)
        else:
            table = (mapping.DOC_STATUS if section.role is Role.DOC_STATUS else mapping.KV[section.namespace]).table
            table = table.lower() if await view.table_exists(table) else None
        if table is None:
            return
        async for rows in view.rows(f"SELECT id FROM {table} WHERE workspace = $1", (view.pg_ws,), batch_size):
            yield [r["id"] for r in rows]

    async def _view(self) -> Any:
        """The backend as the unit's transaction sees it."""
        return self.loader.backend.within(reader=Serialized(await self.unit.connection()), unit=self.unit)

    async def commit(self, note: NoteKeeper) -> None:
        if isinstance(note.store, PgLedgerStore):  # removed by the same commit as the data appears
            await note.store.clear(await self.unit.connection())
        await self.unit.commit()

    async def discard(self) -> None:
        await self.unit.rollback()

    async def close(self) -> None:
        await self.unit.rollback()
