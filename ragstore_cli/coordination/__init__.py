"""Coordination for ragstore: locks any operator can inspect, update flags, shared namespace data.

The stable entry points for commands:

    async with workspace_lock(settings, workspace, command="export", timeout=None) as lease:
        ...   # LockConflict (exit 3) naming the holder when not acquired within `timeout`

    presence = probe_lightrag(settings.working_dir)   # verdict: running / possibly-running / cannot-tell

Library users wanting more: `open_coordinator(settings)` → `Coordinator.lock(key)`,
`Coordinator.keyed_lock(keys, namespace)`, `UpdateFlag`, `SharedNamespace`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from ragstore_cli.config import Settings
from ragstore_cli.coordination.base import BreakResult, Coordinator, Lease, LockBackend
from ragstore_cli.coordination.flags import (
    SharedNamespace, UpdateFlag, get_namespace_data, set_namespace_data, update_namespace_data,
)
from ragstore_cli.coordination.probe import LightRAGPresence, probe_lightrag
from ragstore_cli.coordination.records import HolderRecord
from ragstore_cli.coordination.select import make_backend, open_coordinator, resolve_backend
from ragstore_cli.workspace import validate_workspace

__all__ = [
    "BreakResult", "Coordinator", "HolderRecord", "Lease", "LightRAGPresence", "LockBackend", "SharedNamespace",
    "UpdateFlag", "get_namespace_data", "make_backend", "open_coordinator", "probe_lightrag", "resolve_backend",
    "set_namespace_data", "update_namespace_data", "workspace_key", "workspace_lock",
]


def workspace_key(workspace: str | None) -> str:
    """The lock key of a workspace: `workspace` for the default one, `workspace:<name>` otherwise."""
    name = validate_workspace(workspace)
    return f"workspace:{name}" if name else "workspace"


@asynccontextmanager
async def workspace_lock(
    settings: Settings,
    workspace: str | None,
    *,
    command: str,
    timeout: float | None = None,
    backend: str | None = None,
) -> AsyncIterator[Lease]:
    """Hold the workspace's lock for the body; wait up to `timeout` seconds (default
    RAGSTORE_LOCK_TIMEOUT), then raise LockConflict naming the holder (owner, pid, host, command,
    acquired at). `backend` overrides RAGSTORE_LOCK_BACKEND (auto: see `resolve_backend`)."""
    key = workspace_key(workspace)
    wait = settings.ragstore.lock_timeout if timeout is None else timeout
    coordinator = open_coordinator(settings, backend, command=command)
    try:
        async with coordinator.lock(key, timeout=wait) as lease:
            yield lease
    finally:
        await coordinator.close()
