"""Local servers for trying ragstore out and for the test suite: PostgreSQL + pgvector, FalkorDB (Bolt)."""
