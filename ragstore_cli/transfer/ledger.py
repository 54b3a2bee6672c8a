"""The import ledger: which sections of which archive are committed in the target, for `--resume`.

It lives in the target, next to the data it describes: a JSON file in the files backend's folder, a
row of `ragstore_import_ledger` in PostgreSQL, or a key in Redis — chosen by the backend serving the
KV role (imported first). One ledger per workspace; it is removed when an import completes — for
PostgreSQL inside the import's own transaction (`clear(conn)`), so the data and the ledger's removal
become visible together.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from ragstore_cli.config import Settings
from ragstore_cli.workspace import files_dir

LEDGER_FILE = ".ragstore-import-ledger.json"


class Ledger(Protocol):
    async def load(self) -> dict[str, Any] | None: ...
    async def save(self, state: dict[str, Any]) -> None: ...
    async def clear(self) -> None: ...
    async def close(self) -> None: ...


class FileLedger:
    """A JSON file written by tmp + fsync + rename: a kill never leaves half a ledger."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER_FILE

    async def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        return json.loads(self.path.read_text("utf-8"))

    async def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    async def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    async def close(self) -> None:
        return None


class PgLedger:
    """One row per workspace in `ragstore_import_ledger` (created on first use)."""

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings, self.workspace = settings, workspace or "default"
        self._conn: Any = None
        self._table = False

    async def _c(self, create: bool = True) -> Any:
        """The ledger's connection; the table is made by the first save (a dry run creates nothing)."""
        if self._conn is None:
            self._conn = await _pg_connect(self.settings)
        if create and not self._table:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS ragstore_import_ledger (workspace TEXT PRIMARY KEY, "
                "state JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            self._table = True
        return self._conn

    async def load(self) -> dict[str, Any] | None:
        conn = await self._c(create=False)
        if not await conn.fetchval("SELECT to_regclass('ragstore_import_ledger') IS NOT NULL"):
            return None
        raw = await conn.fetchval("SELECT state::text FROM ragstore_import_ledger WHERE workspace = $1", self.workspace)
        return json.loads(raw) if raw else None

    async def save(self, state: dict[str, Any]) -> None:
        await (await self._c()).execute(
            "INSERT INTO ragstore_import_ledger (workspace, state) VALUES ($1, $2::jsonb) "
            "ON CONFLICT (workspace) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            self.workspace, json.dumps(state))

    async def clear(self, conn: Any = None) -> None:
        """Remove the row; with `conn` (the import unit's connection), as part of that transaction."""
        await (conn or await self._c()).execute("DELETE FROM ragstore_import_ledger WHERE workspace = $1",
                                                self.workspace)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class RedisLedger:
    def __init__(self, settings: Settings, workspace: str) -> None:
        from ragstore_cli.connect.redis import create_client

        self.client = create_client(settings)
        self.key = f"ragstore:import_ledger:{workspace}"

    async def load(self) -> dict[str, Any] | None:
        raw = await self.client.get(self.key)
        return json.loads(raw) if raw else None

    async def save(self, state: dict[str, Any]) -> None:
        await self.client.set(self.key, json.dumps(state))

    async def clear(self) -> None:
        await self.client.delete(self.key)

    async def close(self) -> None:
        await self.client.aclose()


def open_ledger(backend: str, settings: Settings, workspace: str, folder: Path | None = None) -> Ledger:
    """The ledger kept by `backend` (the one serving KV); `folder` overrides the files location."""
    if backend == "postgres":
        return PgLedger(settings, workspace)
    if backend == "redis":
        return RedisLedger(settings, workspace)
    return FileLedger(folder or files_dir(settings.working_dir, workspace))


async def forget(settings: Settings, backends: list[str], workspace: str, *, remove: bool) -> list[str]:
    """The import traces of `workspace` each backend of `backends` may keep — the ledger of an
    interrupted or refused import, a files import's staging folder — described, and removed when
    `remove` (`workspace drop`: nothing of a dropped workspace may block or confuse a later import)."""
    from ragstore_cli.transfer import staging

    found: list[str] = []
    if "files" in backends:
        for path in (files_dir(settings.working_dir, workspace) / LEDGER_FILE, staging.root(settings, workspace)):
            if path.exists():
                found.append(str(path))
                if remove and path.is_dir():
                    staging.discard(settings, workspace)
                elif remove:
                    path.unlink(missing_ok=True)
    if "postgres" in backends:
        ledger = PgLedger(settings, workspace)
        try:
            conn = await _pg_connect(settings)
            try:
                if await conn.fetchval("SELECT to_regclass('ragstore_import_ledger') IS NOT NULL") and \
                        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM ragstore_import_ledger WHERE workspace = $1)",
                                            ledger.workspace):
                    found.append(f"postgres: ragstore_import_ledger row {ledger.workspace!r}")
                    if remove:
                        await ledger.clear(conn)
            finally:
                await conn.close()
        finally:
            await ledger.close()
    if "redis" in backends:
        redis = RedisLedger(settings, workspace)
        try:
            if await redis.client.exists(redis.key):
                found.append(f"redis: {redis.key}")
                if remove:
                    await redis.clear()
        finally:
            await redis.close()
    return found


async def _pg_connect(settings: Settings) -> Any:
    from ragstore_cli.connect.postgres import connect

    return await connect(settings, command_timeout=settings["RAGSTORE_COMMAND_TIMEOUT"])
