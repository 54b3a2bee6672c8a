"""Workspace grants: per-workspace credentials that LightRAG can run with, enforced by the servers.

PostgreSQL: row-level security over LightRAG's tables (`coverage`), tenant logins and grant rows
(`postgres`). Redis: one ACL user per tenant (`redis_acl`). Files: the workspace folder's owner and
mode (`files`). Neo4j: not enforceable on Community (`neo4j`). `api` is what the CLI calls.
"""

from ragstore_cli.access.api import choose_backends, grant, grants, revoke

__all__ = ["choose_backends", "grant", "grants", "revoke"]
