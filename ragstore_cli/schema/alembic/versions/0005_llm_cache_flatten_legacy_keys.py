"""LLM cache: legacy keys (no `:`) become `mode:cache_type:md5(original_prompt)`, using `mode` while it exists.

LightRAG 1.5.7 drops `mode` first and then fails to flatten (docs/lightrag-formats.md, PostgreSQL), leaving legacy rows
unreachable forever. Here the flattening runs before `mode` is dropped (next revision). Legacy rows that
would land on the same key (same workspace, mode and prompt, or an existing flat row) keep one row:
the existing flat row, else the most recently updated legacy row. Batches of short transactions.
Downgrade keeps the flat keys: the old layout accepts them (newer LightRAG wrote them with `mode`).

Revision ID: 0005
Revises: 0004
"""

import logging

from alembic import op
from sqlalchemy import text

from ragstore_cli.schema.ops import backfill

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LEGACY = "id NOT LIKE '%:%'"


def cache_type(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return f"CASE WHEN {p}mode = 'default' THEN 'extract' ELSE 'unknown' END"


def new_id(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return f"{p}mode || ':' || {cache_type(alias)} || ':' || COALESCE(md5({p}original_prompt), {p}id)"

log = logging.getLogger("ragstore.migrate")


def upgrade() -> None:
    duplicates = f"""
        DELETE FROM LIGHTRAG_LLM_CACHE WHERE ctid IN (
          SELECT ctid FROM (
            SELECT l.ctid, row_number() OVER (
                     PARTITION BY l.workspace, l.mode, {new_id('l')}
                     ORDER BY l.update_time DESC NULLS LAST, l.id) AS rank,
                   EXISTS (SELECT 1 FROM LIGHTRAG_LLM_CACHE f
                           WHERE f.workspace = l.workspace AND f.mode = l.mode
                             AND f.id = {new_id('l')}) AS taken
            FROM LIGHTRAG_LLM_CACHE l WHERE l.{LEGACY}) ranked
          WHERE rank > 1 OR taken)"""
    result = op.execute(text(duplicates)) if op.get_context().as_sql else op.get_bind().execute(text(duplicates))
    merged = getattr(result, "rowcount", 0) or 0
    if merged:
        log.warning("LLM cache: %d legacy rows duplicated another row's flattened key; kept one per key", merged)
    backfill("LIGHTRAG_LLM_CACHE", f"id = {new_id()}, cache_type = {cache_type()}", LEGACY)


def downgrade() -> None:
    """Nothing to undo: flat keys are valid in the layout with `mode`."""
