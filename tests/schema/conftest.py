"""Helpers for the schema tests: settings for a test database, a catalog snapshot, PG15 databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Iterator

import asyncpg
import pytest

from ragstore_cli.config import load_settings


def settings_for(env: dict[str, str], **extra: str):
    """ragstore Settings for a test database (no machine config: the autouse fixture cleared it)."""
    return load_settings(environ={**env, **extra})


async def pg(env: dict[str, str]) -> asyncpg.Connection:
    return await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"], timeout=10)


SNAPSHOT_SQL = {
    "columns": """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                         pg_get_expr(d.adbin, d.adrelid)
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
                  WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1, 2""",
    "constraints": """SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k
                      JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


async def snapshot(env: dict[str, str], queries: dict[str, str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every table, column (type, nullability, default), constraint and index of schema public."""
    conn = await pg(env)
    try:
        return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in (queries or SNAPSHOT_SQL).items()}
    finally:
        await conn.close()


#: The same catalog with object identities: a table or index that is dropped and recreated, or a table
#: rewritten (new relfilenode), shows up here even when its definition comes back the same.
STRICT_SQL = {
    **SNAPSHOT_SQL,
    "relations": """SELECT c.relname, c.relkind, c.oid::int8, c.relfilenode::int8 FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1""",
    "constraint_oids": """SELECT c.relname, k.conname, k.oid::int8, k.convalidated FROM pg_constraint k
                          JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "index_state": """SELECT i.relname, x.indisvalid, x.indisready, x.indislive FROM pg_index x
                      JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
                      WHERE n.nspname = 'public' ORDER BY 1""",
    "triggers": """SELECT c.relname, t.tgname, t.oid::int8 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "functions": """SELECT p.proname, p.oid::int8 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' ORDER BY 1""",
    "types": """SELECT t.typname, t.oid::int8 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'public' ORDER BY 1""",
}


async def strict_snapshot(env: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """`snapshot` plus the oid and file node of every relation, constraint, trigger, function and type."""
    return await snapshot(env, STRICT_SQL)


def catalog_changes(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Readable differences between two snapshots ("+" appeared, "-" went away)."""
    out = []
    for key in before:
        old, new = set(before[key]), set(after[key])
        out += [f"{key} -{row}" for row in sorted(old - new, key=repr)]
        out += [f"{key} +{row}" for row in sorted(new - old, key=repr)]
    return out


def user_tables(snap: dict[str, list[tuple[Any, ...]]]) -> set[str]:
    return {row[0] for row in snap["columns"]}


@pytest.fixture
def pg15_database(pg15_env) -> Iterator[dict[str, str]]:
    """A fresh database on the machine's PostgreSQL 15 (no pgvector), dropped afterwards."""
    name = "rs_schema_" + uuid.uuid4().hex[:10]

    async def admin(sql: str) -> None:
        conn = await pg(pg15_env)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield {**pg15_env, "POSTGRES_DATABASE": name}
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
