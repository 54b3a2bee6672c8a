"""LLM cache: `chunk_id` (which chunk an extraction entry belongs to).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from ragstore_cli.schema.ops import guard_all

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AT_RISK = [("LIGHTRAG_LLM_CACHE", "chunk_id", None)]


def upgrade() -> None:
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE ADD COLUMN IF NOT EXISTS chunk_id VARCHAR(255) NULL")


def downgrade() -> None:
    guard_all(AT_RISK)
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE DROP COLUMN IF EXISTS chunk_id")
