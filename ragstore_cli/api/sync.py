"""Blocking twins of ragstore_cli.api's verbs, same names, same arguments, same results.

For scripts with no event loop: `from ragstore_cli.api import sync; sync.export("ws.ragstore", workspace="ws")`.
A twin refuses to run inside a running event loop (UsageError naming the `await` to use instead).
"""

from __future__ import annotations

from ragstore_cli.api import archives, checks, locks, moving, schema, servers, vectors, workspaces
from ragstore_cli.api.calling import blocking, guarded

check_connections = blocking(checks.check_connections)

migrate_upgrade = blocking(schema.migrate_upgrade)
migrate_downgrade = blocking(schema.migrate_downgrade)
migrate_current = blocking(schema.migrate_current)
migrate_history = guarded(schema.migrate_history)
migrate_check = blocking(schema.migrate_check)
migrate_stamp = blocking(schema.migrate_stamp)
migrate_sql = guarded(schema.migrate_sql)
migrate_adopt = blocking(schema.migrate_adopt)
migrate_vectors_move = blocking(schema.migrate_vectors_move)

workspace_list = blocking(workspaces.workspace_list)
workspace_show = blocking(workspaces.workspace_show)
workspace_create = blocking(workspaces.workspace_create)
workspace_drop = blocking(workspaces.workspace_drop)
workspace_copy = blocking(workspaces.workspace_copy)
workspace_rename = blocking(workspaces.workspace_rename)
workspace_grant = blocking(workspaces.workspace_grant)
workspace_revoke = blocking(workspaces.workspace_revoke)
workspace_grants = blocking(workspaces.workspace_grants)

export = blocking(moving.export)
import_archive = blocking(moving.import_archive)
transfer = blocking(moving.transfer)
archive_verify = guarded(archives.archive_verify)
archive_inspect = guarded(archives.archive_inspect)
archive_recode = blocking(archives.archive_recode)

vectors_stats = guarded(vectors.vectors_stats)
vectors_compress = guarded(vectors.vectors_compress)
vectors_decompress = guarded(vectors.vectors_decompress)
vectors_verify = guarded(vectors.vectors_verify)
vectors_export = guarded(vectors.vectors_export)

locks_list = blocking(locks.locks_list)
locks_show = blocking(locks.locks_show)
locks_break = blocking(locks.locks_break)
locks_wait = blocking(locks.locks_wait)

dev_up = guarded(servers.dev_up)
dev_down = guarded(servers.dev_down)
dev_status = guarded(servers.dev_status)
demo = blocking(servers.demo)

__all__ = ["archive_inspect", "archive_recode", "archive_verify", "check_connections", "demo", "dev_down",
           "dev_status", "dev_up", "export", "import_archive", "locks_break", "locks_list", "locks_show", "locks_wait",
           "migrate_adopt", "migrate_check", "migrate_current", "migrate_downgrade", "migrate_history",
           "migrate_sql", "migrate_stamp", "migrate_upgrade", "migrate_vectors_move", "transfer", "vectors_compress",
           "vectors_decompress", "vectors_export", "vectors_stats", "vectors_verify", "workspace_copy",
           "workspace_create", "workspace_drop", "workspace_grant", "workspace_grants", "workspace_list",
           "workspace_rename", "workspace_revoke", "workspace_show"]
