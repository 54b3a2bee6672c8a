"""LightRAG's model-suffixed vector tables: create or upgrade them exactly as LightRAG 1.5.7 would.

Same DDL, constraint and index names (`names.py`), the index type and parameters from settings, so a
LightRAG process starting afterwards finds everything in place. Moving rows out of legacy unsuffixed
tables is a separate, explicit step verified by counts.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.config import Settings
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.schema import names

HNSW_VECTOR_MAX = 2000  # pgvector: hnsw / ivfflat on `vector`
HALFVEC_MAX = 4000  # pgvector: hnsw on `halfvec`

COLUMNS = {
    names.VDB_CHUNKS: """id VARCHAR(255), workspace VARCHAR(255), full_doc_id VARCHAR(256), chunk_order_index INTEGER,
        tokens INTEGER, content TEXT, content_vector {vtype}, file_path TEXT NULL,
        create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP""",
    names.VDB_ENTITY: """id VARCHAR(255), workspace VARCHAR(255), entity_name VARCHAR(512), content TEXT,
        content_vector {vtype}, create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
        update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, chunk_ids VARCHAR(255)[] NULL, file_path TEXT NULL""",
    names.VDB_RELATION: """id VARCHAR(255), workspace VARCHAR(255), source_id VARCHAR(512), target_id VARCHAR(512),
        content TEXT, content_vector {vtype}, create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
        update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, chunk_ids VARCHAR(255)[] NULL, file_path TEXT NULL""",
}


def index_spec(settings: Settings, dim: int) -> dict[str, Any]:
    """Column type, index suffix and USING clause for POSTGRES_VECTOR_INDEX_TYPE; UsageError when impossible."""
    kind = settings.postgres.vector_index_type
    m, ef, lists = settings.postgres.hnsw_m, settings.postgres.hnsw_ef, settings.postgres.ivfflat_lists
    if kind == "VCHORDRQ":
        raise UsageError("POSTGRES_VECTOR_INDEX_TYPE=VCHORDRQ is not supported by ragstore migrate; "
                         "use HNSW, HNSW_HALFVEC or IVFFLAT")
    if kind in ("HNSW", "IVFFLAT") and dim > HNSW_VECTOR_MAX:
        raise UsageError(f"EMBEDDING_DIM={dim} exceeds pgvector's {HNSW_VECTOR_MAX}-dimension limit for "
                         f"{kind} on `vector`; set POSTGRES_VECTOR_INDEX_TYPE=HNSW_HALFVEC (up to {HALFVEC_MAX})")
    if kind == "HNSW_HALFVEC" and dim > HALFVEC_MAX:
        raise UsageError(f"EMBEDDING_DIM={dim} exceeds pgvector's {HALFVEC_MAX}-dimension limit for HNSW_HALFVEC")
    using = {
        "HNSW": f"USING hnsw (content_vector vector_cosine_ops) WITH (m = {m}, ef_construction = {ef})",
        "HNSW_HALFVEC": f"USING hnsw (content_vector halfvec_cosine_ops) WITH (m = {m}, ef_construction = {ef})",
        "IVFFLAT": f"USING ivfflat (content_vector vector_cosine_ops) WITH (lists = {lists})",
    }[kind]
    vtype = f"{'HALFVEC' if kind == 'HNSW_HALFVEC' else 'VECTOR'}({dim})"
    return {"type": kind, "suffix": names.VECTOR_INDEX_SUFFIXES[kind], "using": using, "column_type": vtype}


def plan(settings: Settings, model: str | None, dim: int) -> list[dict[str, Any]]:
    """What `ensure` would create, per table (no connection)."""
    spec = index_spec(settings, dim)
    out = []
    for base in names.VECTOR_BASES:
        table = names.vector_table_name(base, model, dim)
        out.append({"table": table, "base": base, "column_type": spec["column_type"],
                    "index": names.safe_index_name(table, spec["suffix"]), "index_type": spec["type"]})
    return out


async def pgvector(conn) -> dict[str, Any]:  # noqa: ANN001
    row = await conn.fetchrow("""SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed,
                                        (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available""")
    return {"installed": row["installed"], "available": row["available"]}


async def _index_exists(conn, name: str) -> bool:  # noqa: ANN001
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def ensure(conn, settings: Settings, model: str | None, dim: int) -> dict[str, Any]:  # noqa: ANN001
    """Create/upgrade the three vector tables and their indexes; skip (with a note) without pgvector."""
    steps = plan(settings, model, dim)
    state = await pgvector(conn)
    if state["installed"] is None:
        if state["available"] is None:
            return {"skipped": True, "tables": [s["table"] for s in steps],
                    "note": "pgvector is not available on this server: vector tables skipped"}
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    spec = index_spec(settings, dim)
    done = []
    for step in steps:
        table, base = step["table"], step["base"]
        created = not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table.lower())
        if created:
            ddl = COLUMNS[base].format(vtype=spec["column_type"])
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl}, CONSTRAINT {table}_PK PRIMARY KEY (workspace, id))")
        else:
            await _upgrade_columns(conn, table, base)
        await conn.execute(f"CREATE INDEX IF NOT EXISTS {names.safe_index_name(table, 'id')} ON {table}(id)")
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {names.safe_index_name(table, 'workspace_id')} ON {table}(workspace, id)")
        changed = False
        if not await _index_exists(conn, step["index"]):
            await _check_dimension(conn, table, dim)
            for suffix in names.VECTOR_INDEX_SUFFIXES.values():
                if suffix != spec["suffix"]:
                    await conn.execute(f"DROP INDEX IF EXISTS {names.safe_index_name(table, suffix)}")
            await conn.execute(f"ALTER TABLE {table} ALTER COLUMN content_vector TYPE {spec['column_type']}")
            # A populated table gets its index CONCURRENTLY, so writers are not blocked while it builds.
            populated = await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})")
            how = "CONCURRENTLY " if populated else ""
            await conn.execute(f"CREATE INDEX {how}{step['index']} ON {table} {spec['using']}")
            changed = True
        done.append({**step, "created": created, "index_built": changed})
    from ragstore_cli.schema.coverage import cover_new_tables  # workspace grants reach new tables at once

    return {"skipped": False, "tables": done, "access_covered": await cover_new_tables(conn)}


#: Column types older LightRAG versions gave the (legacy, bare) vector tables, and today's.
WIDENED = {
    names.VDB_ENTITY: {"entity_name": "VARCHAR(512)"},
    names.VDB_RELATION: {"source_id": "VARCHAR(512)", "target_id": "VARCHAR(512)"},
    names.VDB_CHUNKS: {"file_path": "TEXT"},
}


async def _upgrade_columns(conn, table: str, base: str) -> list[str]:  # noqa: ANN001
    """Bring an existing (legacy) vector table's columns to 1.5.7's types, as LightRAG's start-up would.

    Widening VARCHAR or VARCHAR → TEXT does not rewrite; timestamptz → TIMESTAMP(0) is read as UTC.
    """
    rows = await conn.fetch("SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute "
                            "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped", table.lower())
    current = {r["attname"]: r["t"] for r in rows}
    changes = [f"ALTER COLUMN {c} TYPE {t}" for c, t in WIDENED[base].items()
               if c in current and current[c] != t.lower().replace("varchar", "character varying")]
    for column in ("create_time", "update_time"):
        if current.get(column, "").endswith("with time zone"):
            changes.append(f"ALTER COLUMN {column} TYPE TIMESTAMP(0), ALTER COLUMN {column} SET DEFAULT CURRENT_TIMESTAMP")
    if changes:
        async with conn.transaction():
            await conn.execute("SET LOCAL TIME ZONE 'UTC'")
            await conn.execute(f"ALTER TABLE {table} {', '.join(changes)}")
    return changes


async def _check_dimension(conn, table: str, dim: int) -> None:  # noqa: ANN001
    """Refuse to retype a column whose stored vectors have another dimension (a legacy bare table)."""
    found = await conn.fetchval(f"SELECT vector_dims(content_vector::vector) FROM {table} "
                                "WHERE content_vector IS NOT NULL AND vector_dims(content_vector::vector) <> $1 LIMIT 1", dim)
    if found:
        raise DataError(f"{table} holds {found}-dimension vectors but EMBEDDING_DIM is {dim}: refusing to retype it")


async def drop(conn, settings: Settings, model: str | None, dim: int, *, force: bool) -> list[str]:  # noqa: ANN001
    """Drop this model's vector tables (downgrade to base); refuses tables with rows unless forced."""
    dropped = []
    for base in names.VECTOR_BASES:
        table = names.vector_table_name(base, model, dim)
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table.lower()):
            continue
        if not force and await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise UsageError(f"downgrade would drop table {table.lower()}, which holds data; pass --force")
        dropped.append(table)
    for table in dropped:
        await conn.execute(f"DROP TABLE {table}")
    return dropped


async def move_legacy(conn, model: str | None, dim: int, *, batch: int = 1000) -> list[dict[str, Any]]:  # noqa: ANN001
    """Copy rows from legacy unsuffixed tables into this model's tables, keyset-paged, verified by counts.

    Legacy rows are left in place (the operator drops them once satisfied). DataError on any mismatch.
    """
    if not isinstance(model, str) or not model.strip():
        raise UsageError("vectors-move needs an embedding model name (EMBEDDING_MODEL or --embedding-model)")
    report = []
    for base in names.VECTOR_BASES:
        target = names.vector_table_name(base, model, dim)
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", base.lower()):
            report.append({"legacy": base, "target": target, "skipped": "no legacy table"})
            continue
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", target.lower()):
            raise UsageError(f"{target} does not exist; run `ragstore migrate upgrade` first")
        await _check_dimension(conn, base, dim)
        columns = [r["attname"] for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped "
            "AND attname IN (SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($2) AND attnum > 0) "
            "ORDER BY attnum", base.lower(), target.lower())]
        cols = ", ".join(columns)
        copied, last = 0, ("", "")
        while True:
            rows = await conn.fetch(
                f"WITH page AS (SELECT {cols} FROM {base} WHERE (workspace, id) > ($1, $2) ORDER BY workspace, id LIMIT {batch}),"
                f" ins AS (INSERT INTO {target} ({cols}) SELECT {cols} FROM page ON CONFLICT (workspace, id) DO NOTHING"
                f" RETURNING 1) SELECT (SELECT count(*) FROM ins) AS n, (SELECT workspace FROM page ORDER BY workspace DESC, id DESC LIMIT 1) AS w,"
                f" (SELECT id FROM page ORDER BY workspace DESC, id DESC LIMIT 1) AS i", *last)
            row = rows[0]
            if row["w"] is None:
                break
            copied += row["n"]
            last = (row["w"], row["i"])
        legacy = await conn.fetchval(f"SELECT count(*) FROM {base}")
        present = await conn.fetchval(
            f"SELECT count(*) FROM {base} l WHERE EXISTS (SELECT 1 FROM {target} t WHERE t.workspace = l.workspace AND t.id = l.id)")
        if present != legacy:
            raise DataError(f"{base} → {target}: {legacy} legacy rows but only {present} present in the target")
        report.append({"legacy": base, "target": target, "legacy_rows": legacy, "copied": copied, "verified": present})
    return report
