"""Timestamps without time zone, as LightRAG 1.5.7 declares them (stored values are UTC).

Converted with the session in UTC, so instants are kept; same precision, so PostgreSQL 12+ does not
rewrite the table. Text chunks get TIMESTAMP(0) with CURRENT_TIMESTAMP defaults, doc status TIMESTAMP.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("LIGHTRAG_DOC_CHUNKS", "create_time", "TIMESTAMP(0)"),
    ("LIGHTRAG_DOC_CHUNKS", "update_time", "TIMESTAMP(0)"),
    ("LIGHTRAG_DOC_STATUS", "created_at", "TIMESTAMP"),
    ("LIGHTRAG_DOC_STATUS", "updated_at", "TIMESTAMP"),
)


def upgrade() -> None:
    op.execute("SET LOCAL TIME ZONE 'UTC'")
    for table, column, kind in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}, "
                   f"ALTER COLUMN {column} SET DEFAULT CURRENT_TIMESTAMP")


def downgrade() -> None:
    op.execute("SET LOCAL TIME ZONE 'UTC'")
    for table, column, kind in COLUMNS:
        tz = kind + " WITH TIME ZONE"
        default = "DROP DEFAULT" if table == "LIGHTRAG_DOC_CHUNKS" else "SET DEFAULT CURRENT_TIMESTAMP"
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {tz}, ALTER COLUMN {column} {default}")
