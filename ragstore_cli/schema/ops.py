"""Building blocks the revisions share: batched backfills, guarded drops, concurrent indexes.

Why here and not inline: every revision must behave the same way on big tables (short transactions,
no long writer-blocking locks), online and in offline `migrate sql` output.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from ragstore_cli.errors import UsageError
from ragstore_cli.schema.alembic_env import DDL_LOCK_TIMEOUT

BATCH_ROWS = 5000


def _offline() -> bool:
    return op.get_context().as_sql


def force_given() -> bool:
    """True when the operator passed --force (set by schema.migrator on the Alembic config)."""
    return bool(op.get_context().config.attributes.get("force")) if op.get_context().config else False


def table_exists(table: str) -> bool:
    if _offline():
        return True
    bind = op.get_bind()
    return bind.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table.lower()}).scalar()


def column_exists(table: str, column: str) -> bool:
    if _offline():
        return True
    bind = op.get_bind()
    return bool(bind.execute(text(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attname = :c AND NOT attisdropped"),
        {"t": table.lower(), "c": column}).scalar())


def holds_data_sql(table: str, column: str | None = None, default: str | None = None) -> str:
    """SELECT EXISTS(...) that is true when dropping `table` (or its `column`) would lose data."""
    where = f"WHERE {column} IS NOT NULL" if column else ""
    if column and default is not None:
        where += f" AND {column} <> {default}"
    return f"SELECT EXISTS (SELECT 1 FROM {table} {where})"


def guard_data_loss(table: str, column: str | None = None, *, default: str | None = None) -> None:
    """Refuse (UsageError) to drop a table/column that holds data, unless --force was given.

    A column whose every value is NULL or its `default` (e.g. `'[]'::jsonb`) holds nothing to lose.
    """
    if _offline() or force_given() or not table_exists(table):
        return
    if column is not None and not column_exists(table, column):
        return
    has = op.get_bind().execute(text(holds_data_sql(table, column, default))).scalar()
    if has:
        what = f"column {table.lower()}.{column}" if column else f"table {table.lower()}"
        raise UsageError(f"downgrade would drop {what}, which holds data; pass --force to drop it anyway")


def guard_all(at_risk: list[tuple[str, str | None, str | None]]) -> None:
    """guard_data_loss for each (table, column, default) a revision's downgrade would drop."""
    for table, column, default in at_risk:
        guard_data_loss(table, column, default=default)


def backfill(table: str, set_sql: str, where_sql: str, *, batch: int | None = None) -> int:
    """UPDATE `table` SET … WHERE … in keyset batches, each its own short transaction (autocommit block).

    Batches walk the `(workspace, id)` index every LightRAG table has, taking only rows that still
    match (an updated row must stop matching, and may move to a later key, as flattening does), so
    the cost stays linear and a writer waits at most for one batch's row locks. Offline: one UPDATE.
    """
    batch = batch or BATCH_ROWS
    statement = f"UPDATE {table} SET {set_sql} WHERE {where_sql}"
    if _offline():
        op.execute(statement)
        return 0
    bind = op.get_bind()
    if not bind.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where_sql})")).scalar():
        return 0
    rows = bind.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0
    step = text(
        f"WITH keys AS (SELECT workspace AS k_ws, id AS k_id FROM {table}"
        f" WHERE (workspace, id) > (:ws, :id) AND ({where_sql}) ORDER BY workspace, id LIMIT {int(batch)}),"
        f" changed AS (UPDATE {table} SET {set_sql} FROM keys"
        f" WHERE workspace = k_ws AND id = k_id AND ({where_sql}) RETURNING 1)"
        f" SELECT (SELECT count(*) FROM changed) AS n, last.k_ws, last.k_id"
        f" FROM (SELECT k_ws, k_id FROM keys ORDER BY k_ws DESC, k_id DESC LIMIT 1) last")
    done, position = 0, ("", "")
    with op.get_context().autocommit_block():
        # the first batch must include a row keyed ('', ''), which `>` would skip
        done += bind.execute(text(f"UPDATE {table} SET {set_sql} WHERE workspace = '' AND id = '' AND ({where_sql})")).rowcount
        for _ in range(rows // batch + 2):
            row = bind.execute(step, {"ws": position[0], "id": position[1]}).first()
            if row is None:
                break
            done += row[0]
            position = (row[1], row[2])
    return done


def create_index_concurrently(name: str, table: str, definition: str, *, unique: bool = False) -> None:
    """CREATE INDEX CONCURRENTLY IF NOT EXISTS outside any transaction; rebuilds a leftover invalid one."""
    with op.get_context().autocommit_block():
        if not _offline():
            # CONCURRENTLY never blocks writers, but waits for older transactions: let it wait
            op.execute("SET lock_timeout = 0")
            invalid = op.get_bind().execute(text(
                "SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:n)"), {"n": name}).scalar()
            if invalid:  # an interrupted earlier run left an unusable index behind
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {definition}")
        if not _offline():
            op.execute(f"SET lock_timeout = '{DDL_LOCK_TIMEOUT}'")


def drop_index_concurrently(name: str) -> None:
    with op.get_context().autocommit_block():
        if not _offline():
            op.execute("SET lock_timeout = 0")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        if not _offline():
            op.execute(f"SET lock_timeout = '{DDL_LOCK_TIMEOUT}'")


def kv_indexes(table: str) -> None:
    """The `(id)` and `(workspace, id)` indexes LightRAG's check_tables adds to every KV table."""
    low = table.lower()
    op.execute(f"CREATE INDEX IF NOT EXISTS idx_{low}_id ON {table}(id)")
    op.execute(f"CREATE INDEX IF NOT EXISTS idx_{low}_workspace_id ON {table}(workspace, id)")
