"""Text chunks: `llm_cache_list`, `heading`, `sidecar`, `file_path` as TEXT; full docs: pipeline fields.

VARCHAR(n) → TEXT is binary-compatible (no rewrite); new columns have constant defaults (no rewrite).

Revision ID: 0008
Revises: 0007
"""

from alembic import op
from sqlalchemy import text

from ragstore_cli.schema.ops import force_given, guard_all

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHUNKS = "LIGHTRAG_DOC_CHUNKS"
FULL = "LIGHTRAG_DOC_FULL"
CHUNK_COLUMNS = (
    ("llm_cache_list", "JSONB NULL DEFAULT '[]'::jsonb", "'[]'::jsonb"),
    ("heading", "JSONB NULL DEFAULT '{}'::jsonb", "'{}'::jsonb"),
    ("sidecar", "JSONB NULL DEFAULT '{}'::jsonb", "'{}'::jsonb"),
)
FULL_COLUMNS = (
    ("sidecar_location", "TEXT NULL", None),
    ("parse_format", "VARCHAR(32) NULL DEFAULT 'raw'", "'raw'"),
    ("content_hash", "TEXT NULL", None),
    ("process_options", "TEXT NULL", None),
    ("chunk_options", "JSONB NULL DEFAULT '{}'::jsonb", "'{}'::jsonb"),
    ("parse_engine", "TEXT NULL", None),
)

AT_RISK = [(FULL, n, d) for n, _, d in FULL_COLUMNS] + [(CHUNKS, n, d) for n, _, d in CHUNK_COLUMNS]


def upgrade() -> None:
    for name, ddl, _ in CHUNK_COLUMNS:
        op.execute(f"ALTER TABLE {CHUNKS} ADD COLUMN IF NOT EXISTS {name} {ddl}")
    op.execute(f"ALTER TABLE {CHUNKS} ALTER COLUMN file_path TYPE TEXT")
    for name, ddl, _ in FULL_COLUMNS:
        op.execute(f"ALTER TABLE {FULL} ADD COLUMN IF NOT EXISTS {name} {ddl}")


def downgrade() -> None:
    guard_all(AT_RISK)
    if not op.get_context().as_sql and not force_given():
        longest = op.get_bind().execute(text(f"SELECT max(length(file_path)) FROM {CHUNKS}")).scalar()
        if longest and longest > 256:
            from ragstore_cli.errors import UsageError

            raise UsageError(f"downgrade would truncate {CHUNKS.lower()}.file_path values of {longest} "
                             "characters to 256; pass --force to truncate them")
    for name, _, _ in reversed(FULL_COLUMNS):
        op.execute(f"ALTER TABLE {FULL} DROP COLUMN IF EXISTS {name}")
    op.execute(f"ALTER TABLE {CHUNKS} ALTER COLUMN file_path TYPE VARCHAR(256) USING left(file_path, 256)")
    for name, _, _ in reversed(CHUNK_COLUMNS):
        op.execute(f"ALTER TABLE {CHUNKS} DROP COLUMN IF EXISTS {name}")
