"""The PostgreSQL bulk paths: binary COPY writers in one transaction, server-side cursor readers.

A writer holds one connection and one transaction from its first batch to `commit()` — or, inside an
`ImportUnit` (an import's unit of work), the unit's one connection and a savepoint of its one
transaction, so every section of an import becomes visible together when the unit commits:
- replace: `DELETE` the workspace's rows, then `COPY … FROM STDIN (FORMAT binary)` straight into the
  table (invisible to others until commit, so the swap is atomic);
- merge: COPY into a temp table, then one `INSERT … SELECT … ON CONFLICT DO UPDATE` on commit.
Vectors travel as pre-encoded pgvector binary (`>HH` header + big-endian floats): no per-value
Python objects on the hot path. All batches of a writer feed ONE `COPY` through a bounded queue (two
batches), so preparing batch n+1 overlaps the server's work on batch n and memory stays flat.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import asyncpg
import numpy as np

from ragstore_cli.connect import liveness
from ragstore_cli.errors import ConnectionFailed, DataError

VECTOR_TYPES = {"vector": ">f4", "halfvec": ">f2"}


async def register_raw_vector_codecs(conn: asyncpg.Connection) -> None:
    """vector/halfvec values as raw binary bytes both ways (encode/decode in numpy, per batch)."""
    for name in VECTOR_TYPES:
        exists = await conn.fetchval("SELECT 1 FROM pg_type WHERE typname = $1", name)
        if exists:
            await conn.set_type_codec(name, schema="public", encoder=bytes, decoder=bytes, format="binary")


def encode_vectors(vectors: np.ndarray, kind: str = "vector") -> list[bytes]:
    """pgvector binary for each row: one numpy pass writes every row's `>HH` header and big-endian
    values into a record array, one `tobytes()`, then a slice per row (no per-row concatenation)."""
    mat = np.asarray(vectors)
    n, dim = mat.shape
    record = np.dtype([("dim", ">u2"), ("unused", ">u2"), ("values", VECTOR_TYPES[kind], (dim,))])
    out = np.empty(n, dtype=record)
    out["dim"] = dim
    out["unused"] = 0
    out["values"] = mat
    raw = out.tobytes()
    step = record.itemsize
    return [raw[i:i + step] for i in range(0, len(raw), step)]


def decode_vectors(values: list[bytes], dim: int, kind: str = "vector") -> np.ndarray:
    """pgvector binary values → float32 (n, dim)."""
    if not values:
        return np.zeros((0, dim), dtype=np.float32)
    width = np.dtype(VECTOR_TYPES[kind]).itemsize * dim + 4
    joined = b"".join(values)
    if len(joined) != width * len(values):
        raise DataError("vector values of unexpected size (dimension mismatch)")
    arr = np.frombuffer(joined, dtype=np.uint8).reshape(len(values), width)[:, 4:]
    return np.ascontiguousarray(arr).view(VECTOR_TYPES[kind]).astype(np.float32)


def explain(exc: BaseException, where: str) -> DataError | ConnectionFailed:
    """A driver error during a bulk write as one readable line (a lost connection names the server)."""
    lost = liveness.server_error(exc)
    if lost is not None:
        return lost
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if "0x00" in text or "\\u0000" in text:
        text = "PostgreSQL cannot store NUL characters (U+0000) in text or JSON"
    elif isinstance(exc, asyncpg.UniqueViolationError):
        text = f"duplicate id ({getattr(exc, 'detail', '') or text})"
    return DataError(f"{where}: {text}")


class ImportUnit:
    """One connection and one transaction shared by every writer of a load (sections are written
    one after another), so a killed load leaves the workspace exactly as it was. `chunk_fields`: the
    ChunkFieldMap the chunk-vector writer fills rows from (the preflight's, then that of the
    text_chunks written in this unit: chunk_fields.py). `observer`: the engine's, told of the index
    rebuilds (ann_index.py)."""

    def __init__(self, pool: asyncpg.Pool, chunk_fields: Any = None, observer: Any = None) -> None:
        self.pool = pool
        self.conn: asyncpg.Connection | None = None
        self.tx: Any = None
        self.chunk_fields = chunk_fields
        self.observer = observer

    async def connection(self) -> asyncpg.Connection:
        """The unit's connection, its transaction started on first use."""
        if self.conn is None:
            conn = await self.pool.acquire()
            tx = conn.transaction()
            try:
                await tx.start()
            except BaseException:
                await self.pool.release(conn)
                raise
            self.conn, self.tx = conn, tx
        return self.conn

    async def commit(self) -> None:
        try:
            if self.tx is not None:
                tx, self.tx = self.tx, None
                await tx.commit()  # a failed COMMIT ends the transaction on the server too
        finally:
            await self._release()

    async def rollback(self) -> None:
        if self.tx is not None:
            tx, self.tx = self.tx, None
            try:
                await tx.rollback()
            except Exception:  # noqa: BLE001 - already failed / connection gone; the rollback is implied
                pass
        await self._release()

    async def _release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                await self.pool.release(conn)
            except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool
                pass


async def acquire(pool: asyncpg.Pool, unit: ImportUnit | None) -> tuple[asyncpg.Connection, Any]:
    """A writer's connection and started transaction: its own, or a savepoint in the unit's."""
    conn = await unit.connection() if unit is not None else await pool.acquire()
    tx = conn.transaction()
    try:
        await tx.start()
    except BaseException:
        if unit is None:
            await pool.release(conn)
        raise
    return conn, tx


class HeldTransaction:
    """A writer's connection and transaction (from `acquire`): rolled back and handed back in one place.
    Subclasses set `pool`, `unit`, `conn` and `tx`."""

    pool: asyncpg.Pool
    unit: ImportUnit | None
    conn: asyncpg.Connection | None
    tx: Any

    async def abort(self) -> None:
        """Undo what this writer wrote; the connection goes back (a unit's stays with the unit)."""
        if self.tx is not None:
            try:
                await self.tx.rollback()
            except Exception:  # noqa: BLE001 - already failed / connection gone; the rollback is implied
                pass
            self.tx = None
        await self._release()

    async def _release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            if self.unit is None:  # the unit keeps its connection until it commits
                await self.pool.release(conn)


@dataclass(frozen=True)
class CopyTarget:
    """What one CopyWriter writes: a table's rows of one workspace, and how.

    replace: `DELETE … WHERE scope` first, then COPY straight into the table; merge: COPY into a temp
    table, then INSERT … ON CONFLICT (`conflict`) DO UPDATE every column but `keep_on_update`.
    `on_start` / `before_commit` run on the writer's connection (an index dropped and rebuilt, a
    trigger installed and removed)."""

    table: str
    columns: tuple[str, ...]
    workspace: str
    replace: bool
    conflict: tuple[str, ...] = ("workspace", "id")
    keep_on_update: tuple[str, ...] = ("create_time",)
    scope: str = "workspace = $1"
    scope_args: tuple[Any, ...] = ()
    on_start: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    before_commit: Callable[[asyncpg.Connection], Awaitable[None]] | None = None


class CopyWriter(HeldTransaction):
    """Rows for one table and workspace; nothing is visible before `commit()` (or the unit's commit)."""

    def __init__(self, pool: asyncpg.Pool, target: CopyTarget, unit: ImportUnit | None = None) -> None:
        self.pool, self.unit, self.table, self.columns = pool, unit, target.table.lower(), target.columns
        self.workspace, self.replace, self.conflict, self.keep = (target.workspace, target.replace, target.conflict,
                                                                  target.keep_on_update)
        self.scope, self.scope_args = target.scope, target.scope_args or (target.workspace,)
        self.before_commit, self.on_start = target.before_commit, target.on_start
        self.conn: asyncpg.Connection | None = None
        self.tx: Any = None
        self.target = self.table
        self.count = 0
        self.dropped: set[str] = set()
        self.queue: asyncio.Queue[list[tuple] | None] | None = None
        self.copying: asyncio.Task[Any] | None = None

    async def _records(self) -> AsyncIterator[tuple]:
        assert self.queue is not None
        while (rows := await self.queue.get()) is not None:
            for row in rows:
                yield row

    async def _feed(self, rows: list[tuple] | None) -> None:
        """Hand rows to the running COPY; surfaces its failure instead of blocking on a dead consumer,
        and gives up on a server that takes no rows for the command's silence limit (liveness.py)."""
        conn = await self._start()
        if self.copying is None:
            self.queue = asyncio.Queue(maxsize=2)
            self.copying = asyncio.ensure_future(
                conn.copy_records_to_table(self.target, records=self._records(), columns=list(self.columns)))
        assert self.queue is not None
        put = asyncio.ensure_future(self.queue.put(rows))
        limit = liveness.silence_limit()
        await asyncio.wait({put, self.copying}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            if not self.copying.done():  # the server took nothing for `limit` s: a stalled connection
                conn.terminate()  # a rollback would wait on it too; the server rolls back a lost session
                raise ConnectionFailed("postgres", f"{self.table}: the server took no COPY data for {limit:g} s "
                                                   "(RAGSTORE_COMMAND_TIMEOUT): stalled or unreachable")
        if self.copying.done():
            self.copying.result()  # raises the COPY's error, if any
            if rows is not None:
                raise DataError(f"{self.table}: the COPY stream ended early")

    async def _finish_copy(self) -> None:
        if self.copying is not None:
            await self._feed(None)
            await self.copying

    async def _start(self) -> asyncpg.Connection:
        if self.conn is not None:
            return self.conn
        self.conn, self.tx = await acquire(self.pool, self.unit)
        if self.on_start:
            await self.on_start(self.conn)
        if self.replace:
            await self.conn.execute(f"DELETE FROM {self.table} WHERE {self.scope}", *self.scope_args)
        else:
            self.target = f"ragstore_stage_{self.table}"[:63]
            await self.conn.execute(f"CREATE TEMP TABLE {self.target} (LIKE {self.table} INCLUDING DEFAULTS) ON COMMIT DROP")
        return self.conn

    async def write_rows(self, rows: list[tuple]) -> None:
        try:
            if rows:
                await self._feed(rows)
                self.count += len(rows)
        except DataError:
            await self.abort()
            raise
        except (asyncpg.PostgresError, asyncpg.DataError, ValueError, TypeError, OverflowError) as exc:
            await self.abort()
            raise explain(exc, self.table) from None
        except BaseException:
            await self.abort()
            raise

    async def commit(self) -> None:
        try:
            conn = await self._start()
            await self._finish_copy()
            if not self.replace:
                cols = ", ".join(self.columns)
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.columns if c not in self.conflict and c not in self.keep)
                action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
                await conn.execute(f"INSERT INTO {self.table} ({cols}) SELECT {cols} FROM {self.target} "
                                   f"ON CONFLICT ({', '.join(self.conflict)}) {action}")
                await conn.execute(f"DROP TABLE {self.target}")  # a later writer in the same unit may stage again
            if self.before_commit:
                await self.before_commit(conn)
            await self.tx.commit()
            self.tx = None
        except DataError:
            await self.abort()
            raise
        except (asyncpg.PostgresError, asyncpg.DataError) as exc:
            await self.abort()
            raise explain(exc, self.table) from None
        except BaseException:
            await self.abort()
            raise
        await self._release()

    async def abort(self) -> None:
        if self.copying is not None and not self.copying.done():
            self.copying.cancel()
            try:
                await self.copying
            except BaseException:  # noqa: BLE001 - cancelled or failed: the rollback below undoes it
                pass
        self.copying = None
        await super().abort()


class Serialized:
    """One connection used by one caller at a time (asyncpg refuses overlapping queries on a connection):
    a snapshot's or a load unit's, which every read of that view goes through."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn, self.lock = conn, asyncio.Lock()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.lock:
            return await self.conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.lock:
            return await self.conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        async with self.lock:
            return await self.conn.fetch(sql, *args)

    async def locked(self, call: Any, *args: Any) -> Any:
        async with self.lock:
            return await call(*args)


async def stream_rows(pool: asyncpg.Pool, sql: str, args: tuple[Any, ...], batch_size: int) -> AsyncIterator[list[Any]]:
    """Batches of rows from a server-side cursor (one read-only transaction, memory = two batches);
    the next batch is fetched while the caller works on the current one. (A consistent view of many
    tables reads through one snapshot transaction instead: PostgresBackend.snapshot.)"""
    async with pool.acquire() as conn:
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            cursor = await conn.cursor(sql, *args)
            pending = asyncio.ensure_future(cursor.fetch(batch_size))
            try:
                while True:
                    rows = await pending
                    if not rows:
                        break
                    more = len(rows) == batch_size
                    if more:
                        pending = asyncio.ensure_future(cursor.fetch(batch_size))
                    yield rows
                    if not more:
                        break
            finally:
                if not pending.done():  # early exit: let the prefetch finish so the connection stays clean
                    try:
                        await pending
                    except Exception:  # noqa: BLE001 - the transaction is being left anyway
                        pass
