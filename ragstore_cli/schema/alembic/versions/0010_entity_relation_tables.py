"""Full-entity/relation "recovery anchors" and the entity/relation chunk-tracking tables.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from ragstore_cli.schema.ops import guard_all, kv_indexes

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = {
    "LIGHTRAG_FULL_ENTITIES": "id VARCHAR(255), workspace VARCHAR(255), entity_names JSONB, count INTEGER",
    "LIGHTRAG_FULL_RELATIONS": "id VARCHAR(255), workspace VARCHAR(255), relation_pairs JSONB, count INTEGER",
    "LIGHTRAG_ENTITY_CHUNKS": "id VARCHAR(512), workspace VARCHAR(255), chunk_ids JSONB, count INTEGER",
    "LIGHTRAG_RELATION_CHUNKS": "id VARCHAR(512), workspace VARCHAR(255), chunk_ids JSONB, count INTEGER",
}

AT_RISK = [(t, None, None) for t in TABLES]


def upgrade() -> None:
    for table, columns in TABLES.items():
        op.execute(f"""CREATE TABLE IF NOT EXISTS {table} ({columns},
            create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT {table}_PK PRIMARY KEY (workspace, id))""")
        kv_indexes(table)


def downgrade() -> None:
    guard_all(AT_RISK)
    for table in reversed(list(TABLES)):
        op.execute(f"DROP TABLE IF EXISTS {table}")
