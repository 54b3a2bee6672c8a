"""The `redis` backend: LightRAG's KV and doc-status key layout (RedisKVStorage, RedisDocStatusStorage)."""

from __future__ import annotations

from ragstore_cli.backends.redis.backend import ROLES, RedisBackend
from ragstore_cli.config import Settings
from ragstore_cli.workspace import validate_workspace

__all__ = ["ROLES", "RedisBackend", "create"]


def create(settings: Settings, workspace: str) -> RedisBackend:
    """An unopened backend for `workspace` (REDIS_WORKSPACE wins); `await open()` connects."""
    return RedisBackend(settings, validate_workspace(workspace))  # the package's edge; a Workspace passes as is
