"""The tables as an older LightRAG created them: LLM cache keyed by (workspace, mode, id).

Revision ID: 0001
Revises:
"""

from alembic import op

from ragstore_cli.schema.ops import guard_all, kv_indexes

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("LIGHTRAG_DOC_FULL", "LIGHTRAG_DOC_CHUNKS", "LIGHTRAG_LLM_CACHE", "LIGHTRAG_DOC_STATUS")

AT_RISK = [(t, None, None) for t in TABLES]


def upgrade() -> None:
    op.execute("""CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_FULL (
        id VARCHAR(255), workspace VARCHAR(255), doc_name VARCHAR(1024), content TEXT, meta JSONB,
        create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT LIGHTRAG_DOC_FULL_PK PRIMARY KEY (workspace, id))""")
    op.execute("""CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_CHUNKS (
        id VARCHAR(255), workspace VARCHAR(255), full_doc_id VARCHAR(256), chunk_order_index INTEGER,
        tokens INTEGER, content TEXT, file_path VARCHAR(256),
        create_time TIMESTAMP(0) WITH TIME ZONE, update_time TIMESTAMP(0) WITH TIME ZONE,
        CONSTRAINT LIGHTRAG_DOC_CHUNKS_PK PRIMARY KEY (workspace, id))""")
    op.execute("""CREATE TABLE IF NOT EXISTS LIGHTRAG_LLM_CACHE (
        workspace VARCHAR(255) NOT NULL, id VARCHAR(255) NOT NULL, mode VARCHAR(32) NOT NULL,
        original_prompt TEXT, return_value TEXT,
        create_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP, update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT LIGHTRAG_LLM_CACHE_PK PRIMARY KEY (workspace, mode, id))""")
    op.execute("""CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_STATUS (
        workspace VARCHAR(255) NOT NULL, id VARCHAR(255) NOT NULL, content_summary VARCHAR(255) NULL,
        content_length INT4 NULL, chunks_count INT4 NULL, status VARCHAR(64) NULL, file_path TEXT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT LIGHTRAG_DOC_STATUS_PK PRIMARY KEY (workspace, id))""")
    for table in TABLES:
        kv_indexes(table)


def downgrade() -> None:
    guard_all(AT_RISK)
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
