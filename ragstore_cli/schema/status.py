"""Where a database stands: its ragstore schema revision and whether it is behind head.

Read-only and forgiving: a database without ragstore's version table reports revision None.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.schema.alembic_env import VERSION_TABLE


async def current_revision(conn) -> str | None:  # noqa: ANN001 - asyncpg connection
    """The stamped revision, or None when the version table is absent or empty."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", VERSION_TABLE)
    if not exists:
        return None
    return await conn.fetchval(f"SELECT version_num FROM {VERSION_TABLE} LIMIT 1")


async def revision_status(conn) -> dict[str, Any]:  # noqa: ANN001
    """{"schema_revision", "schema_head", "schema_behind"} for check-connections; never raises on a fresh DB."""
    from ragstore_cli.schema.migrator import head

    target = head()
    try:
        revision = await current_revision(conn)
    except Exception as exc:  # noqa: BLE001 - e.g. no privilege on the table: report, do not fail the check
        return {"schema_revision": None, "schema_head": target, "schema_behind": None,
                "schema_error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    return {"schema_revision": revision, "schema_head": target, "schema_behind": revision != target}
