"""PostgreSQL backend: session advisory locks plus a holder table — many processes, many hosts.

The advisory lock is the truth (PostgreSQL releases it when the holding session ends, whatever
happened to the client); the `ragstore_locks` row says who holds it. Acquire and release are one
round trip each. A row whose session is gone, or whose session no longer holds the advisory lock,
is stale and is overwritten by the next acquirer. Namespace versions live in `ragstore_namespaces`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import connect, explain
from ragstore_cli.coordination.base import BreakResult, Lease, LockBackend
from ragstore_cli.coordination.records import HolderRecord, advisory_id
from ragstore_cli.errors import ConnectionFailed, LockConflict, OperationFailed, UsageError

SCHEMA_LOCK_ID = advisory_id("ragstore-schema")
SCHEMA = """
CREATE TABLE IF NOT EXISTS ragstore_locks (
    key text PRIMARY KEY, lock_id bigint NOT NULL, owner text NOT NULL, pid integer NOT NULL,
    host text NOT NULL, command text NOT NULL, acquired_at double precision NOT NULL,
    pid_start double precision, session_pid integer NOT NULL);
CREATE TABLE IF NOT EXISTS ragstore_lock_breaks (
    id bigserial PRIMARY KEY, key text NOT NULL, broken jsonb, by_whom jsonb NOT NULL,
    live boolean NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS ragstore_namespaces (
    namespace text PRIMARY KEY, version bigint NOT NULL, data jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now());
"""
ACQUIRE = """
WITH l AS (SELECT pg_try_advisory_lock($1) AS got)
INSERT INTO ragstore_locks (key, lock_id, owner, pid, host, command, acquired_at, pid_start, session_pid)
SELECT $2, $1, $3, $4, $5, $6, $7, $8, pg_backend_pid() FROM l WHERE got
ON CONFLICT (key) DO UPDATE SET lock_id = EXCLUDED.lock_id, owner = EXCLUDED.owner, pid = EXCLUDED.pid,
    host = EXCLUDED.host, command = EXCLUDED.command, acquired_at = EXCLUDED.acquired_at,
    pid_start = EXCLUDED.pid_start, session_pid = EXCLUDED.session_pid
RETURNING session_pid
"""
RELEASE = """
WITH d AS (DELETE FROM ragstore_locks WHERE key = $1 AND owner = $2) SELECT pg_advisory_unlock($3)
"""
# A row is live when its session exists and holds the advisory lock (bigint form: objsubid 1).
HOLDERS = """
SELECT l.*, a.pid IS NOT NULL AS session_alive,
       EXISTS (SELECT 1 FROM pg_locks k
               WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.session_pid AND k.objsubid = 1
                 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND k.classid::bigint = ((l.lock_id >> 32) & 4294967295)
                 AND k.objid::bigint = (l.lock_id & 4294967295)) AS lock_held
FROM ragstore_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.session_pid
"""
_FOREIGN_OURS = """
  AND NOT (k.objsubid = 1 AND EXISTS (SELECT 1 FROM ragstore_locks l WHERE l.session_pid = k.pid
            AND k.classid::bigint = ((l.lock_id >> 32) & 4294967295) AND k.objid::bigint = (l.lock_id & 4294967295)))"""
_FOREIGN = """
SELECT k.pid, k.classid::bigint AS classid, k.objid::bigint AS objid, k.objsubid, k.mode, k.granted,
       a.application_name, a.usename::text AS usename, a.client_addr::text AS client_addr,
       a.backend_start, a.xact_start, a.state, left(a.query, 200) AS query
FROM pg_locks k LEFT JOIN pg_stat_activity a ON a.pid = k.pid
WHERE k.locktype = 'advisory' AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND NOT (k.objsubid = 1 AND k.classid::bigint = ((($1::bigint) >> 32) & 4294967295)
           AND k.objid::bigint = (($1::bigint) & 4294967295)){ours}
ORDER BY k.pid
"""
FOREIGN = _FOREIGN.format(ours=_FOREIGN_OURS)
FOREIGN_NO_TABLE = _FOREIGN.format(ours="")  # before the first ragstore lock: every advisory lock is foreign
BUMP = """
INSERT INTO ragstore_namespaces (namespace, version, data) VALUES ($1, 1, coalesce($2::jsonb, '{}'::jsonb))
ON CONFLICT (namespace) DO UPDATE SET version = ragstore_namespaces.version + 1,
    data = coalesce($2::jsonb, ragstore_namespaces.data), updated_at = now()
RETURNING version
"""


def _row_record(row: asyncpg.Record) -> HolderRecord:
    record = HolderRecord(key=row["key"], owner=row["owner"], pid=row["pid"], host=row["host"],
                          command=row["command"], acquired_at=row["acquired_at"], backend="postgres",
                          pid_start=row["pid_start"], session_pid=row["session_pid"])
    if not row["session_alive"]:
        record.stale, record.stale_reason = True, f"PostgreSQL session {row['session_pid']} is gone"
    elif not row["lock_held"]:
        record.stale, record.stale_reason = True, "the session no longer holds the advisory lock"
    else:
        record.judge_local()
    return record


class PostgresBackend(LockBackend):
    name = "postgres"

    def __init__(self, settings: Settings, *, connect_timeout: float = 10.0) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._use = asyncio.Lock()  # one asyncpg connection runs one query at a time
        self._session = 0  # bumped per new connection: a lease belongs to the session that took it
        self._schema_ready = False

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self.settings, timeout=self.connect_timeout,
                                         command_timeout=self.settings.ragstore.command_timeout)
            self._session += 1
        return self._conn

    async def _ensure_schema(self, conn: asyncpg.Connection) -> None:
        """Create the tables on first write only: looking (`locks list`) never changes a database."""
        if self._schema_ready:
            return
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_ID)  # concurrent creators
                await conn.execute(SCHEMA)
        except asyncpg.PostgresError as exc:
            raise OperationFailed(f"postgres: cannot create the lock tables: {exc}") from None
        self._schema_ready = True

    async def _has_schema(self) -> bool:
        if not self._schema_ready:
            self._schema_ready = bool(await self._run(
                "fetchval", "SELECT to_regclass('ragstore_locks') IS NOT NULL AND to_regclass('ragstore_lock_breaks') "
                "IS NOT NULL AND to_regclass('ragstore_namespaces') IS NOT NULL"))
        return self._schema_ready

    async def _run(self, method: str, query: str, *args: Any, write: bool = False) -> Any:
        async with self._use:
            conn = await self._connection()
            if write:
                await self._ensure_schema(conn)
            try:
                return await getattr(conn, method)(query, *args)
            except (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.InterfaceError,
                    asyncpg.InternalClientError, ConnectionError, OSError) as exc:
                # the session is gone, and every advisory lock it held went with it; reconnect next time.
                # (InternalClientError: asyncpg's protocol state after the server ended the session
                # under it, e.g. `locks break --force` -- seen once in a full-suite run.)
                self._conn = None
                conn.terminate()
                raise explain(exc, self.settings) from None

    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        lock_id = advisory_id(key)
        session = await self._run("fetchval", ACQUIRE, lock_id, key, record.owner, record.pid, record.host,
                                  record.command, record.acquired_at, record.pid_start, write=True)
        if session is None:
            return None
        record.session_pid = session
        return Lease(record, handle=(lock_id, self._session))

    async def release(self, lease: Lease) -> None:
        lock_id, session = lease.handle
        if self._conn is None or self._conn.is_closed() or session != self._session:
            lease.lost = True  # its session ended (e.g. broken with --force): the lock went with it
            return
        try:
            still_ours = await self._run("fetchval", RELEASE, lease.key, lease.record.owner, lock_id)
        except ConnectionFailed:
            still_ours = False
        if not still_ours:
            lease.lost = True  # session gone (e.g. broken with --force): the lock went with it

    async def holder(self, key: str) -> HolderRecord | None:
        if not await self._has_schema():
            return None
        row = await self._run("fetchrow", HOLDERS + " WHERE l.key = $1", key)
        return _row_record(row) if row else None

    async def holders(self) -> list[HolderRecord]:
        if not await self._has_schema():
            return []
        rows = await self._run("fetch", HOLDERS + " ORDER BY l.acquired_at")
        return [_row_record(row) for row in rows]

    async def foreign_locks(self) -> list[dict[str, Any]]:
        """Advisory locks in this database held by anything but ragstore's lock table (other tools)."""
        query = FOREIGN if await self._has_schema() else FOREIGN_NO_TABLE
        rows = await self._run("fetch", query, SCHEMA_LOCK_ID)
        found = []
        for row in rows:
            item = dict(row)
            if row["objsubid"] == 1:
                item["lock_id"] = int.from_bytes(((row["classid"] << 32) | row["objid"]).to_bytes(8, "big"), "big", signed=True)
            else:
                item["lock_id"] = [row["classid"], row["objid"]]
            found.append(item)
        return found

    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        record = await self.holder(key)  # None when the tables do not exist either
        if record is None:
            raise UsageError(f"lock {key!r} is not held")
        live = not record.stale
        if live and not force:
            raise LockConflict(f"lock {key!r} is {record.describe()}; refusing to break a live holder without --force")
        if live:
            ended = await self._run("fetchval", "SELECT pg_terminate_backend($1)", record.session_pid)
            if not ended:
                raise OperationFailed(f"postgres: could not end session {record.session_pid} holding {key!r} "
                                      "(needs superuser or pg_signal_backend)")
        await self._run("execute", "DELETE FROM ragstore_locks WHERE key = $1 AND owner = $2", key, record.owner)
        await self._run("execute", "INSERT INTO ragstore_lock_breaks (key, broken, by_whom, live) VALUES ($1, $2::jsonb, $3::jsonb, $4)",
                        key, json.dumps(record.stored()), json.dumps(by), live)
        return BreakResult(key, record, by)

    async def get_version(self, namespace: str) -> int:
        if not await self._has_schema():
            return 0
        value = await self._run("fetchval", "SELECT version FROM ragstore_namespaces WHERE namespace = $1", namespace)
        return int(value or 0)

    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        return int(await self._run("fetchval", BUMP, namespace, None if data is None else json.dumps(data), write=True))

    async def forget(self, namespace: str) -> None:
        if await self._has_schema():
            await self._run("execute", "DELETE FROM ragstore_namespaces WHERE namespace = $1", namespace, write=True)

    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        if not await self._has_schema():
            return 0, {}
        row = await self._run("fetchrow", "SELECT version, data FROM ragstore_namespaces WHERE namespace = $1", namespace)
        return (int(row["version"]), json.loads(row["data"])) if row else (0, {})

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            try:
                await asyncio.wait_for(self._conn.close(), 5)
            except Exception:  # noqa: BLE001 - closing a dead session is not news
                self._conn.terminate()
        self._conn = None
