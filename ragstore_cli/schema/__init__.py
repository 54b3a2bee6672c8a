"""ragstore's ownership of LightRAG's PostgreSQL schema: Alembic revisions, vector tables, adopt."""
