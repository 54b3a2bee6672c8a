"""LLM cache: drop `mode`, primary key becomes (workspace, id).

The new key's unique index is built CONCURRENTLY first, then swapped in with ADD PRIMARY KEY USING
INDEX, so the ACCESS EXCLUSIVE part is catalog-only and does not grow with the row count.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from sqlalchemy import text

from ragstore_cli.errors import DataError
from ragstore_cli.schema.ops import backfill, column_exists, create_index_concurrently

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

T = "LIGHTRAG_LLM_CACHE"
TMP = "lightrag_llm_cache_pk_next"


def _refuse_duplicates(columns: str) -> None:
    if op.get_context().as_sql:
        return
    rows = op.get_bind().execute(text(
        f"SELECT workspace, id FROM {T} GROUP BY {columns} HAVING count(*) > 1 LIMIT 3")).fetchall()
    if rows:
        sample = ", ".join(f"{w}/{i}" for w, i, *_ in rows)
        raise DataError(f"{T.lower()} has ids repeated across modes ({sample}); "
                        "they cannot be keyed on (workspace, id) - delete or rename them first")


def upgrade() -> None:
    if not column_exists(T, "mode"):
        return
    _refuse_duplicates("workspace, id")
    create_index_concurrently(TMP, T, "(workspace, id)", unique=True)
    op.execute(f"ALTER TABLE {T} DROP CONSTRAINT IF EXISTS LIGHTRAG_LLM_CACHE_PK")
    op.execute(f"ALTER TABLE {T} DROP COLUMN mode")
    op.execute(f"ALTER TABLE {T} ADD CONSTRAINT LIGHTRAG_LLM_CACHE_PK PRIMARY KEY USING INDEX {TMP}")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {T} ADD COLUMN IF NOT EXISTS mode VARCHAR(32)")
    backfill(T, "mode = CASE WHEN id LIKE '%:%' THEN split_part(id, ':', 1) ELSE 'default' END", "mode IS NULL")
    create_index_concurrently(TMP, T, "(workspace, mode, id)", unique=True)
    op.execute(f"ALTER TABLE {T} ALTER COLUMN mode SET NOT NULL")
    op.execute(f"ALTER TABLE {T} DROP CONSTRAINT IF EXISTS LIGHTRAG_LLM_CACHE_PK")
    op.execute(f"ALTER TABLE {T} ADD CONSTRAINT LIGHTRAG_LLM_CACHE_PK PRIMARY KEY USING INDEX {TMP}")
