"""Doc status: `chunks_list`, `track_id`, `metadata`, `error_msg`, `content_hash`.

ADD COLUMN with a constant default is catalog-only since PostgreSQL 11 (no rewrite).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from ragstore_cli.schema.ops import guard_all

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

T = "LIGHTRAG_DOC_STATUS"
COLUMNS = (
    ("chunks_list", "JSONB NULL DEFAULT '[]'::jsonb", "'[]'::jsonb"),
    ("track_id", "VARCHAR(255) NULL", None),
    ("metadata", "JSONB NULL DEFAULT '{}'::jsonb", "'{}'::jsonb"),
    ("error_msg", "TEXT NULL", None),
    ("content_hash", "TEXT NULL", None),
)

AT_RISK = [(T, name, default) for name, _, default in COLUMNS]


def upgrade() -> None:
    for name, ddl, _ in COLUMNS:
        op.execute(f"ALTER TABLE {T} ADD COLUMN IF NOT EXISTS {name} {ddl}")


def downgrade() -> None:
    guard_all(AT_RISK)
    for name, _, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE {T} DROP COLUMN IF EXISTS {name}")
