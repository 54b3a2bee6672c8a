"""LLM cache: `cache_type`, backfilled in batches.

Flat ids `mode:cache_type:hash` give their second field; legacy ids (no `:`) get what LightRAG's
flattening meant for them: `extract` for mode `default`, `unknown` for query modes (LightRAG itself
labels every legacy row `extract`). ADD COLUMN without a default: no table rewrite.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from ragstore_cli.schema.ops import backfill, guard_all

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AT_RISK = [("LIGHTRAG_LLM_CACHE", "cache_type", None)]


def upgrade() -> None:
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE ADD COLUMN IF NOT EXISTS cache_type VARCHAR(32) NULL")
    backfill(
        "LIGHTRAG_LLM_CACHE",
        "cache_type = CASE WHEN id ~ '^[^:]+:[^:]+:' THEN split_part(id, ':', 2)"
        " WHEN mode = 'default' THEN 'extract' ELSE 'unknown' END",
        "cache_type IS NULL",
    )


def downgrade() -> None:
    # cache_type is derivable from the id for flat keys, but not for every row: guard it.
    guard_all(AT_RISK)
    op.execute("ALTER TABLE LIGHTRAG_LLM_CACHE DROP COLUMN IF EXISTS cache_type")
