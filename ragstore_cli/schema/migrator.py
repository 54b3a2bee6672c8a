"""Running Alembic for ragstore: the config pointing at the packaged revisions, and the advisory lock.

Alembic's command API is synchronous; ragstore is async at the I/O edge. A run opens one asyncpg-backed
SQLAlchemy connection and calls the command inside `run_sync`, handing the connection to env.py.
A separate session holds the migrator lock for the whole run, so a second migrator sees who holds it.
"""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import connect
from ragstore_cli.errors import LockConflict, OperationFailed, UsageError
from ragstore_cli.schema.alembic_env import VERSION_TABLE, make_engine

SCRIPT_DIR = Path(__file__).with_name("alembic")
#: pg_try_advisory_lock(LOCK_CLASS, LOCK_OBJECT): "RGST" and 1 = the schema migrator.
LOCK_CLASS = 0x52475354
LOCK_OBJECT = 1
APPLICATION_NAME = "ragstore migrate"


def alembic_config(settings: Settings | None = None, **attributes: Any) -> Config:
    """A Config for the packaged revisions (no alembic.ini needed), with per-run attributes."""
    cfg = Config(stdout=io.StringIO())
    cfg.set_main_option("script_location", str(SCRIPT_DIR))
    cfg.attributes["settings"] = settings
    cfg.attributes.update(attributes)
    return cfg


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return script().get_current_head() or ""


def resolve(revision: str) -> str:
    """Validate a revision argument early (UsageError names the known ones)."""
    if revision in ("head", "base"):
        return revision
    try:
        found = script().get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds
        found = None
    if found is None:
        known = ", ".join(r.revision for r in reversed(list(script().walk_revisions())))
        raise UsageError(f"unknown revision {revision!r}; known: base, {known}, head")
    return found.revision


async def run_command(settings: Settings, fn: Callable[[Config], Any], **attributes: Any) -> Any:
    """Run an Alembic command function on one fresh connection made from settings."""
    engine = make_engine(settings, application_name=APPLICATION_NAME)
    try:
        async with engine.connect() as conn:
            def call(sync_conn) -> Any:  # noqa: ANN001
                cfg = alembic_config(settings, connection=sync_conn, **attributes)
                return fn(cfg)
            return await conn.run_sync(call)
    finally:
        await engine.dispose()


def lock_not_available(exc: BaseException) -> bool:
    """True when a statement gave up waiting for a table lock (SQLSTATE 55P03), however it was wrapped."""
    seen = 0
    while exc is not None and seen < 10:
        if getattr(exc, "sqlstate", None) == "55P03" or type(exc).__name__ == "LockNotAvailableError":
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return False


async def run_with_lock_retries(settings: Settings, fn: Callable[[Config], Any], *, budget: float,
                                **attributes: Any) -> int:
    """run_command, re-run while DDL times out on a busy table (revisions are idempotent); returns retries."""
    deadline = time.monotonic() + budget
    retries = 0
    while True:
        try:
            await run_command(settings, fn, **attributes)
            return retries
        except Exception as exc:  # noqa: BLE001 - only lock timeouts are retried
            if not lock_not_available(exc):
                raise
            if time.monotonic() >= deadline:
                raise OperationFailed(
                    f"a schema change could not get its table lock within {budget:g} s (each wait is capped so "
                    "writers are never held up): a long transaction or vacuum holds the table",
                    hint="retry when the database is quieter, or raise --lock-timeout") from None
            retries += 1
            await asyncio.sleep(min(0.2 * retries, 2.0))


def offline_sql(revision_range: str, *, downgrade: bool = False) -> str:
    """The SQL a run would execute, rendered without a connection (`migrate sql`)."""
    buffer = io.StringIO()
    cfg = Config(output_buffer=buffer, stdout=io.StringIO())
    cfg.set_main_option("script_location", str(SCRIPT_DIR))
    if downgrade:
        command.downgrade(cfg, revision_range, sql=True)
    else:
        command.upgrade(cfg, revision_range, sql=True)
    return buffer.getvalue()


async def _holder(conn) -> dict[str, Any]:  # noqa: ANN001
    row = await conn.fetchrow(
        """SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a USING (pid)
           WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
           LIMIT 1""", LOCK_CLASS, LOCK_OBJECT)
    return dict(row) if row else {}


@asynccontextmanager
async def migrator_lock(settings: Settings, timeout: float) -> AsyncIterator[dict[str, Any]]:
    """Hold the migrator advisory lock for a run; wait up to `timeout` s, then LockConflict (exit 3)."""
    server = dict(settings.postgres.server_settings or {})
    server["application_name"] = APPLICATION_NAME
    conn = await connect(settings.with_overrides({"POSTGRES_SERVER_SETTINGS": server}), retries=1)
    try:
        started = time.monotonic()
        deadline = started + max(timeout, 0.0)
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, LOCK_OBJECT):
                break
            if time.monotonic() >= deadline:
                holder = await _holder(conn)
                who = (f"pid {holder.get('pid')} ({holder.get('application_name') or 'no application_name'})"
                       if holder else "another session")
                raise LockConflict(f"another migrator holds the schema lock: {who}; waited {timeout:g} s",
                                   hint="wait for it to finish, or raise --lock-timeout")
            await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
        waited = round(time.monotonic() - started, 3)
        yield {"lock_waited_s": waited, "lock_pid": conn.get_server_pid()}
    finally:
        try:
            await conn.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing ends the session, which releases the lock anyway
            conn.terminate()


__all__ = ["VERSION_TABLE", "alembic_config", "head", "migrator_lock", "offline_sql", "resolve", "run_command",
           "script"]
