"""PostgreSQL check: reachable, TLS, authenticated, version, pgvector, may create tables, schema revision."""

from __future__ import annotations

import time
from typing import Any

from ragstore_cli.checks import tls
from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import connect, describe_target
from ragstore_cli.connect.ssl import build_pg_ssl


async def check(settings: Settings, timeout: float) -> dict[str, Any]:
    pg_ssl = build_pg_ssl(settings)
    started = time.perf_counter()
    conn = await connect(settings, timeout=timeout, retries=1, pg_ssl=pg_ssl)
    latency = round((time.perf_counter() - started) * 1000, 1)
    try:
        details: dict[str, Any] = {"target": describe_target(settings), "ssl_mode": pg_ssl.mode, "authenticated": True}
        ssl_object = conn._transport.get_extra_info("ssl_object") if conn._transport else None  # noqa: SLF001
        details.update(tls.describe(ssl_object, hostname_verified=pg_ssl.verifies_hostname,
                                    verified=pg_ssl.verifies_certificate))
        row = await conn.fetchrow(
            """
            SELECT current_setting('server_version') AS version,
                   current_user AS user,
                   current_database() AS database,
                   (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,
                   (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS pgvector_available,
                   has_database_privilege(current_database(), 'CREATE') AS may_create_schema,
                   has_schema_privilege(current_schema(), 'CREATE') AS may_create_tables
            """
        )
        details.update(
            server_version=row["version"],
            user=row["user"],
            database=row["database"],
            pgvector_installed=row["pgvector"] is not None,
            pgvector_version=row["pgvector"],
            pgvector_available=row["pgvector_available"],
            may_create_tables=bool(row["may_create_tables"]),
        )
        details.update(await _schema_status(conn))
        details["access"] = await _access_status(conn)
        details["latency_ms"] = latency
        return details
    finally:
        await conn.close()


async def _schema_status(conn) -> dict[str, Any]:
    """The ragstore schema revision, when the migrations package can tell it."""
    try:
        from ragstore_cli.schema.status import revision_status
    except ImportError:
        return {}
    return await revision_status(conn)


async def _access_status(conn) -> dict[str, Any]:
    """Whether row-level security holds this role to some workspaces (docs/access.md); never fails the check."""
    from ragstore_cli.access.postgres import access_status

    try:
        return await access_status(conn)
    except Exception as exc:  # noqa: BLE001 - report, do not fail the check
        return {"restricted": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
