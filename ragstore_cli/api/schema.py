"""`ragstore migrate …`: ragstore's Alembic revisions of LightRAG's PostgreSQL schema (schema/api.py).

Each returns the document `--json` prints (docs/migrate.md shows them). The schema library (Alembic,
asyncpg) is imported on the first call, not with ragstore_cli.api.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.api.calling import resolved
from ragstore_cli.api.documents import SchemaState
from ragstore_cli.config import Settings


def _schema() -> Any:
    from ragstore_cli.schema import api as schema

    return schema


async def migrate_upgrade(revision: str = "head", *, embedding_model: str | None = None,
                          embedding_dim: int | None = None, dry_run: bool = False, lock_timeout: float | None = None,
                          settings: Settings | None = None) -> dict[str, Any]:
    """Upgrade to `revision` and create/upgrade the model's vector tables (`dry_run`: the plan only)."""
    return await _schema().upgrade(resolved(settings), revision, embedding_model=embedding_model,
                                   embedding_dim=embedding_dim, dry_run=dry_run, lock_timeout=lock_timeout)


async def migrate_downgrade(revision: str, *, force: bool = False, embedding_model: str | None = None,
                            embedding_dim: int | None = None, lock_timeout: float | None = None,
                            settings: Settings | None = None) -> dict[str, Any]:
    """Downgrade to `revision` (or "base"); steps that would drop data refuse unless `force`."""
    return await _schema().downgrade(resolved(settings), revision, force=force, embedding_model=embedding_model,
                                     embedding_dim=embedding_dim, lock_timeout=lock_timeout)


async def migrate_current(*, settings: Settings | None = None) -> SchemaState:
    """The database's revision, head, and whether it is behind."""
    return await _schema().current(resolved(settings))


async def migrate_check(*, settings: Settings | None = None) -> SchemaState:
    """Like migrate_current, with the pending revisions (`result["behind"]`: not at head)."""
    return await _schema().check(resolved(settings))


def migrate_history() -> list[dict[str, Any]]:
    """The revisions, oldest first (no connection)."""
    return _schema().history()


def migrate_sql(revision: str = "head", *, start: str | None = None) -> str:
    """The SQL of an upgrade (or downgrade) from `start` (None: base) to `revision`, without connecting."""
    return _schema().sql(revision, start=start)


async def migrate_stamp(revision: str, *, lock_timeout: float | None = None,
                        settings: Settings | None = None) -> dict[str, Any]:
    """Record `revision` as the database's without running anything."""
    return await _schema().stamp(resolved(settings), revision, lock_timeout=lock_timeout)


async def migrate_adopt(*, dry_run: bool = False, lock_timeout: float | None = None,
                        settings: Settings | None = None) -> dict[str, Any]:
    """Match a LightRAG-created database to a revision and stamp it (`result["matched"]`; no stamp when
    it matches none, or with `dry_run`)."""
    return await _schema().adopt(resolved(settings), dry_run=dry_run, lock_timeout=lock_timeout)


async def migrate_vectors_move(*, embedding_model: str | None = None, embedding_dim: int | None = None,
                               lock_timeout: float | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Copy the rows of legacy unsuffixed vector tables into the model's tables, verified by counts."""
    return await _schema().move_vectors(resolved(settings), embedding_model=embedding_model,
                                        embedding_dim=embedding_dim, lock_timeout=lock_timeout)
