"""LLM cache: `queryparam` (the query parameters a query-cache entry was made with).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from ragstore_cli.schema.ops import guard_all

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AT_RISK = [("LIGHTRAG_LLM_CACHE", "queryparam", None)]


def upgrade() -> None:
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE ADD COLUMN IF NOT EXISTS queryparam JSONB NULL")


def downgrade() -> None:
    guard_all(AT_RISK)
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE DROP COLUMN IF EXISTS queryparam")
