"""LightRAG's PostgreSQL graph tables (PGTableGraphStorage): lightrag_graph_nodes / lightrag_graph_edges.

Created exactly as LightRAG 1.5.7 creates them at start-up (schema/graph_tables.py), under its own
schema lock, so a LightRAG process starting with PGTableGraphStorage after `migrate upgrade head`
changes nothing in the catalog. Tables LightRAG already made are left as they are.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

from ragstore_cli.schema.graph_tables import EDGES, NODES, STATEMENTS
from ragstore_cli.schema.ops import guard_all

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

AT_RISK = [(EDGES, None, None), (NODES, None, None)]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    guard_all(AT_RISK)
    op.execute(f"DROP TABLE IF EXISTS {EDGES}")
    op.execute(f"DROP TABLE IF EXISTS {NODES}")
