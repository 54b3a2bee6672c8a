"""`ragstore workspace list|show|create|drop|copy|rename|grant|revoke|grants`.

Each returns the document `--json` prints (a dict; docs/workspace.md and docs/access.md show them).
`profile` names the backends per role as --profile does (None: LIGHTRAG_*_STORAGE).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragstore_cli.api.calling import resolved
from ragstore_cli.api.documents import (WorkspaceCopied, WorkspaceCreated, WorkspaceDropped, WorkspaceListing,
                                        WorkspaceShown)
from ragstore_cli.config import Settings
from ragstore_cli.engine import workspace_ops
from ragstore_cli.engine.observer import NOTHING, Observer


async def workspace_list(*, profile: str | None = None, settings: Settings | None = None) -> WorkspaceListing:
    """Every workspace in every backend of the profile, with record counts per role."""
    return await workspace_ops.list_workspaces(resolved(settings), profile)


async def workspace_show(name: str, *, profile: str | None = None, settings: Settings | None = None) -> WorkspaceShown:
    """Counts per namespace, vector model and dimension, sizes and last update of one workspace."""
    return await workspace_ops.show_workspace(resolved(settings), profile, name)


async def workspace_create(name: str, *, profile: str | None = None,
                           settings: Settings | None = None) -> WorkspaceCreated:
    """Prepare an empty workspace LightRAG can start on (folder, tables, vector tables and indexes)."""
    return await workspace_ops.create_workspace(resolved(settings), profile, name)


async def workspace_drop(name: str, *, yes: bool = False, profile: str | None = None,
                         lock_timeout: float | None = None, settings: Settings | None = None) -> WorkspaceDropped:
    """Delete a workspace from every backend of the profile with ragstore's traces of it; without
    `yes=True` it is refused, as a name found nowhere is."""
    return await workspace_ops.drop_workspace(resolved(settings), profile, name, yes=yes, lock_timeout=lock_timeout)


async def workspace_copy(source: str, target: str, *, profile: str | None = None, lock_timeout: float | None = None,
                         settings: Settings | None = None, observer: Observer = NOTHING) -> WorkspaceCopied:
    """Copy a workspace inside each backend (natively where it can); running it again finishes an
    interrupted copy."""
    return await workspace_ops.copy_workspace(resolved(settings), profile, source, target, lock_timeout=lock_timeout,
                                              observer=observer)


async def workspace_rename(source: str, target: str, *, profile: str | None = None,
                           lock_timeout: float | None = None, settings: Settings | None = None,
                           observer: Observer = NOTHING) -> WorkspaceCopied:
    """Rename a workspace in each backend; running it again finishes an interrupted rename."""
    return await workspace_ops.copy_workspace(resolved(settings), profile, source, target, move=True,
                                              lock_timeout=lock_timeout, observer=observer)


async def workspace_grant(name: str, *, role: str, backends: list[str] | None = None, write_env: str | Path | None = None,
                          adopt: bool = False, force: bool = False, new: bool = False, shared_db: bool = False,
                          rotate_password: bool = False, group: str | None = None, print_cypher: bool = False,
                          dry_run: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    """Let login `role` use workspace `name`, enforced by PostgreSQL row-level security, Redis ACLs and
    folder modes; a generated password goes to `write_env` (mode 0600) only."""
    from ragstore_cli.access import api as access

    return await access.grant(resolved(settings), name, role, backends=backends, adopt=adopt, force=force,
                              allow_new=new, shared_db=shared_db, rotate=rotate_password, group=group,
                              write_env=None if write_env is None else Path(write_env), dry_run=dry_run,
                              print_cypher=print_cypher)


async def workspace_revoke(name: str, *, role: str, backends: list[str] | None = None, dry_run: bool = False,
                           settings: Settings | None = None) -> dict[str, Any]:
    """Take workspace `name` back from `role`; a login left with no grant is removed."""
    from ragstore_cli.access import api as access

    return await access.revoke(resolved(settings), name, role, backends=backends, dry_run=dry_run)


async def workspace_grants(name: str | None = None, *, backends: list[str] | None = None,
                           settings: Settings | None = None) -> dict[str, Any]:
    """Who may use which workspace (or only `name`), per backend, and what is not enforced."""
    from ragstore_cli.access import api as access

    return await access.grants(resolved(settings), name, backends=backends)
