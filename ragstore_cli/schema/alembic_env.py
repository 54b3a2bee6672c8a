"""What Alembic's `env.py` does for ragstore: the single place a migration connection is made.

Two ways in: ragstore's own commands hand over an open connection (`config.attributes["connection"]`,
so the advisory lock and the run share one session's view); plain `alembic upgrade head` from the
repository root builds an asyncpg engine from ragstore's settings (flags > env > .env > config.ini)
and runs the revisions through `connection.run_sync`. The password never appears in a URL we print.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

VERSION_TABLE = "ragstore_alembic_version"
#: A DDL statement waiting for its table lock makes every writer queue behind it, so DDL gives up
#: quickly (the run retries it, see schema.api) instead of blocking writers while it waits.
DDL_LOCK_TIMEOUT = "300ms"


def configure_kwargs() -> dict[str, Any]:
    """Options every run shares: our own version table, one transaction per revision."""
    return {
        "version_table": VERSION_TABLE,
        "transaction_per_migration": True,
        "target_metadata": None,
    }


def make_engine(settings: Any, *, application_name: str = "ragstore migrate") -> AsyncEngine:
    """An asyncpg engine whose connections come from ragstore's own connect() (SSL, retries)."""
    from ragstore_cli.connect.postgres import connect

    server = dict(settings.postgres.server_settings or {})
    server.setdefault("application_name", application_name)
    tuned = settings.with_overrides({"POSTGRES_SERVER_SETTINGS": server})

    async def creator():  # noqa: ANN202 - asyncpg connection
        return await connect(tuned, retries=1)

    return create_async_engine("postgresql+asyncpg://", async_creator=creator, poolclass=NullPool)


def _run_with(connection: Connection) -> None:
    connection.exec_driver_sql(f"SET lock_timeout = '{DDL_LOCK_TIMEOUT}'")
    connection.commit()
    context.configure(connection=connection, **configure_kwargs())
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(settings: Any) -> None:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_with)
    finally:
        await engine.dispose()


def run() -> None:
    """Entry point called by both env.py files (package and repository root)."""
    config = context.config
    if context.is_offline_mode():
        context.configure(url="postgresql://", literal_binds=True, dialect_opts={"paramstyle": "named"},
                          **configure_kwargs())
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    settings = config.attributes.get("settings")
    if settings is None:
        from ragstore_cli.config import load_settings

        settings = load_settings()
    asyncio.run(_run_online(settings))
