"""Doc-status indexes (track id, content hash, pagination, keyset sweep), built CONCURRENTLY.

Each runs outside a transaction so writers are never blocked while it builds; an invalid leftover of
an interrupted run is dropped and rebuilt. The keyset index supersedes `…_ws_status_created_id`,
which is dropped only after the new one exists.

Revision ID: 0011
Revises: 0010
"""

from ragstore_cli.schema.ops import create_index_concurrently, drop_index_concurrently

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

T = "LIGHTRAG_DOC_STATUS"
P = "idx_lightrag_doc_status_"
INDEXES = (
    (P + "track_id", "(track_id)"),
    (P + "workspace_content_hash", "(workspace, content_hash) WHERE content_hash IS NOT NULL AND content_hash <> ''"),
    (P + "workspace_status_updated_at", "(workspace, status, updated_at DESC)"),
    (P + "workspace_status_created_at", "(workspace, status, created_at DESC)"),
    (P + "workspace_updated_at", "(workspace, updated_at DESC)"),
    (P + "workspace_created_at", "(workspace, created_at DESC)"),
    (P + "workspace_id", "(workspace, id)"),
    (P + "workspace_file_path", "(workspace, file_path)"),
    (P + "ws_status_created_nf_id", "(workspace, status, created_at NULLS FIRST, id)"),
)
SUPERSEDED = P + "ws_status_created_id"


def upgrade() -> None:
    for name, definition in INDEXES:
        create_index_concurrently(name, T, definition)
    drop_index_concurrently(SUPERSEDED)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        if name != P + "workspace_id":  # the (workspace, id) index predates this revision (check_tables)
            drop_index_concurrently(name)
