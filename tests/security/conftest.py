"""Fixtures for the workspace-isolation tests: a migrated database owned by a non-superuser, a Redis
whose default user is closed, tenant connections, and rows for two workspaces in every table."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path
from typing import Any, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from ragstore_cli.config import load_settings
from ragstore_cli.schema import api as schema_api
from tests.interop.lightrag_builder import EMBEDDING_DIM, EMBEDDING_MODEL
from tests.servers import TEST_PASSWORD, PlainRedis

MODEL_ENV = {"EMBEDDING_MODEL": EMBEDDING_MODEL, "EMBEDDING_DIM": str(EMBEDDING_DIM)}


def unique(prefix: str) -> str:
    """Roles are cluster-wide: every test names its own."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def connect(env: dict[str, str], user: str | None = None, password: str | None = None) -> asyncpg.Connection:
    return await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]),
                                 user=user or env["POSTGRES_USER"], password=password or env["POSTGRES_PASSWORD"],
                                 database=env["POSTGRES_DATABASE"], timeout=10)


def read_env(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@pytest.fixture
def owner_db(pg_server, pg_database) -> Iterator[dict[str, str]]:
    """A fresh database whose LightRAG tables belong to a non-superuser owner with CREATEROLE.

    Migrated to head with the test model's vector tables, plus PGTableGraphStorage's tables (revision
    0012 makes them as LightRAG does). Yields the owner's settings; drops the roles it saw made.
    """
    owner = unique("own")
    database = pg_database["POSTGRES_DATABASE"]
    pg_server.psql(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{TEST_PASSWORD}'")
    pg_server.psql(f"ALTER DATABASE {database} OWNER TO {owner}")
    env = {**pg_database, "POSTGRES_USER": owner}
    settings = load_settings(environ={**env, **MODEL_ENV})
    asyncio.run(schema_api.upgrade(settings))

    async def graph_tables_exist() -> bool:
        conn = await connect(env)
        try:
            return bool(await conn.fetchval("SELECT to_regclass('lightrag_graph_nodes') IS NOT NULL"))
        finally:
            await conn.close()

    assert asyncio.run(graph_tables_exist()), "migrate upgrade head must create LightRAG's graph tables"
    before = set(pg_server.psql("SELECT rolname FROM pg_roles").split())
    yield {**env, **MODEL_ENV}
    after = set(pg_server.psql("SELECT rolname FROM pg_roles").split())
    for role in sorted(after - before) + [owner]:
        pg_server.psql(f"DROP OWNED BY {role}", database=database)
    pg_server.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    for role in sorted(after - before) + [owner]:
        pg_server.psql(f"DROP ROLE IF EXISTS {role}")


# ------------------------------------------------------------------------------------------ rows
async def tables_of(conn: asyncpg.Connection) -> list[str]:
    from ragstore_cli.schema.coverage import workspace_tables

    return await workspace_tables(conn)


async def insert_row(conn: asyncpg.Connection, table: str, workspace: str, key: str) -> None:
    """One row in any LightRAG table, filling the key columns (and a vector where there is one)."""
    columns = {r["attname"]: r["t"] for r in await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass "
        "AND attnum > 0 AND NOT attisdropped", table)}
    values: dict[str, Any] = {"workspace": workspace}
    for name in ("id", "src_id", "tgt_id"):
        if name in columns:
            values[name] = f"{key}-{name}"
    if "content_vector" in columns:
        values["content_vector"] = "[" + ",".join(["0.5"] * EMBEDDING_DIM) + "]"
    if table == "lightrag_graph_edges":
        for end in ("src_id", "tgt_id"):
            await conn.execute("INSERT INTO lightrag_graph_nodes (workspace, id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               workspace, values[end])
    if "original_prompt" in columns:
        values["original_prompt"] = "p"
    names = list(values)
    casts = [f"${i + 1}::{columns[n]}" if n == "content_vector" else f"${i + 1}" for i, n in enumerate(names)]
    await conn.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(casts)}) ON CONFLICT DO NOTHING",
                       *values.values())


async def populate(env: dict[str, str], workspaces: tuple[str, ...] = ("A", "B")) -> dict[str, dict[str, int]]:
    """One row per workspace in every LightRAG table (as the owner); returns counts per table and workspace."""
    conn = await connect(env)
    try:
        tables = await tables_of(conn)
        for table in tables:
            for ws in workspaces:
                await insert_row(conn, table, ws, f"{ws.lower()}1")
        return {t: {r[0]: r[1] for r in await conn.fetch(f"SELECT workspace, count(*) FROM {t} GROUP BY 1")}
                for t in tables}
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------ Redis
#: Not TEST_PASSWORD: LightRAG 1.5.7 logs its REDIS_URI, password included, when it opens a pool, and the
#: suite fails any test whose captured output holds TEST_PASSWORD. ragstore's output is checked for this
#: one by the tests themselves.
REDIS_ADMIN_PASSWORD = "rs-redis-admin-" + secrets.token_hex(6)


class SecureRedis(PlainRedis):
    """A Redis whose default user is off; `admin` (password REDIS_ADMIN_PASSWORD) may do everything."""

    def admin_uri(self, db: int = 0) -> str:
        return f"redis://admin:{REDIS_ADMIN_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> aioredis.Redis:
        return aioredis.from_url(self.admin_uri(db))


@pytest.fixture(scope="session")
def secure_redis(server_root: Path) -> Iterator[SecureRedis]:
    """Its own server: closing the default user would break every other test's plain Redis."""
    import redis as redis_sync

    server = SecureRedis(server_root / "redis-acl")
    server.start()
    plain = redis_sync.Redis(port=server.port)
    plain.execute_command("ACL", "SETUSER", "admin", "on", f">{REDIS_ADMIN_PASSWORD}", "~*", "&*", "+@all")
    plain.execute_command("ACL", "SETUSER", "default", "off")
    plain.close()
    yield server
    server.stop()


@pytest.fixture
def redis_clean(secure_redis: SecureRedis) -> Iterator[SecureRedis]:
    """Empty databases 0-3 and no users but admin and default, before and after the test."""

    async def wipe() -> None:
        client = secure_redis.client()
        try:
            await client.flushall()
            for user in await client.acl_users():
                name = user.decode() if isinstance(user, bytes) else user
                if name not in ("admin", "default"):
                    await client.execute_command("ACL", "DELUSER", name)
        finally:
            await client.aclose()

    asyncio.run(wipe())
    yield secure_redis
    asyncio.run(wipe())
