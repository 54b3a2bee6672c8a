"""ragstore's Python API: every CLI command is one call here (docs/python-api.md shows each).

The name is the command's words joined by `_` (`ragstore workspace copy` → `workspace_copy`,
`ragstore migrate upgrade` → `migrate_upgrade`); `ragstore import` is `import_archive`. Every verb is
a coroutine function taking keyword arguments (the command's options, typed) and `settings=` (a
Settings from load_settings; None: the environment's, as the CLI resolves them); `observer=`, where
a verb moves records, hears its progress. ragstore_cli.api.sync holds a blocking twin of each, under
the same name, for scripts without an event loop. Errors are ragstore_cli.errors' RagstoreError
subclasses, each with the exit code the CLI ends with. The CLI itself calls nothing but this package
(an import-linter contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.api import sync
from ragstore_cli.api.archives import ArchiveCheck, archive_recode, describe_archive
from ragstore_cli.api.archives import archive_inspect as _archive_inspect
from ragstore_cli.api.archives import archive_verify as _archive_verify
from ragstore_cli.api.calling import off_loop, run_command
from ragstore_cli.api.checks import check_connections
from ragstore_cli.api.documents import (BackendCopy, NamespaceRow, SchemaState, WorkspaceCopied, WorkspaceCreated,
                                        WorkspaceDropped, WorkspaceEntry, WorkspaceListing, WorkspaceShown)
from ragstore_cli.api.locks import (LockBreak, LockHolder, LockList, LockWait, locks_backend, locks_break, locks_list,
                                    locks_show, locks_wait)
from ragstore_cli.api.moving import export, import_archive, transfer
from ragstore_cli.api.schema import (migrate_adopt, migrate_check, migrate_current, migrate_downgrade, migrate_stamp,
                                     migrate_upgrade, migrate_vectors_move)
from ragstore_cli.api.schema import migrate_history as _migrate_history
from ragstore_cli.api.schema import migrate_sql as _migrate_sql
from ragstore_cli.api.servers import DemoReport, DevServers, demo
from ragstore_cli.api.servers import dev_down as _dev_down
from ragstore_cli.api.servers import dev_status as _dev_status
from ragstore_cli.api.servers import dev_up as _dev_up
from ragstore_cli.api import vectors as _vectors
from ragstore_cli.api.workspaces import (workspace_copy, workspace_create, workspace_drop, workspace_grant,
                                         workspace_grants, workspace_list, workspace_rename, workspace_revoke,
                                         workspace_show)
from ragstore_cli.archive import Manifest
from ragstore_cli.config import Settings, load_settings
from ragstore_cli.coordination import HolderRecord
from ragstore_cli.engine import ExportReport, ImportReport, TransferReport
from ragstore_cli.engine.observer import Callbacks, Observer

# Verbs that only touch local files (or start local processes) are plain functions underneath: here
# they run in a worker thread, so an event loop keeps serving its other tasks meanwhile.
archive_inspect = off_loop(_archive_inspect)
archive_verify = off_loop(_archive_verify)
migrate_history = off_loop(_migrate_history)
migrate_sql = off_loop(_migrate_sql)
dev_up = off_loop(_dev_up)
dev_down = off_loop(_dev_down)
dev_status = off_loop(_dev_status)
vectors_stats = off_loop(_vectors.vectors_stats)
vectors_compress = off_loop(_vectors.vectors_compress)
vectors_decompress = off_loop(_vectors.vectors_decompress)
vectors_verify = off_loop(_vectors.vectors_verify)
vectors_export = off_loop(_vectors.vectors_export)

#: One verb per CLI command, in the order of `ragstore --help`.
VERBS = [
    "check_connections", "migrate_upgrade", "migrate_downgrade", "migrate_current", "migrate_history",
    "migrate_check", "migrate_stamp", "migrate_sql", "migrate_adopt", "migrate_vectors_move",
    "workspace_list", "workspace_show", "workspace_create", "workspace_drop", "workspace_copy", "workspace_rename",
    "workspace_grant", "workspace_revoke", "workspace_grants",
    "export", "import_archive", "transfer", "archive_verify", "archive_inspect", "archive_recode",
    "vectors_stats", "vectors_compress", "vectors_decompress", "vectors_verify", "vectors_export",
    "locks_list", "locks_show", "locks_break", "locks_wait",
    "dev_up", "dev_down", "dev_status", "demo",
]

__all__ = [
    *VERBS, "sync", "VERBS",
    # arguments and helpers
    "Settings", "load_settings", "Observer", "Callbacks", "locks_backend", "describe_archive", "run_command",
    # results
    "CheckResult", "ExportReport", "ImportReport", "TransferReport", "ArchiveCheck", "Manifest", "LockList", "LockHolder", "LockBreak",
    "LockWait", "HolderRecord", "DevServers", "DemoReport",
    # the shapes of the workspace and migrate documents (plain dicts at run time)
    "WorkspaceListing", "WorkspaceEntry", "WorkspaceShown", "NamespaceRow", "WorkspaceCreated", "WorkspaceDropped",
    "WorkspaceCopied", "BackendCopy", "SchemaState",
]


def __getattr__(name: str) -> Any:
    """CheckResult on first use: importing the checks package loads every driver (asyncpg, neo4j,
    redis), which `ragstore --help` must not wait for."""
    if name == "CheckResult":
        from ragstore_cli.checks import CheckResult

        return CheckResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
