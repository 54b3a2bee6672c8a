"""In-process backend: holders and namespace versions in this process's memory only.

For single-process use and tests; other processes (and `ragstore locks list` from a shell) cannot
see it — exactly LightRAG's single-worker mode. Entries are dropped on release.
"""

from __future__ import annotations

import time
from typing import Any

from ragstore_cli.coordination.base import BreakResult, Lease, LockBackend
from ragstore_cli.coordination.records import HolderRecord
from ragstore_cli.errors import LockConflict, UsageError


class MemoryBackend(LockBackend):
    name = "memory"
    release_is_instant = True

    def __init__(self) -> None:
        self._held: dict[str, HolderRecord] = {}
        self._versions: dict[str, tuple[int, dict[str, Any]]] = {}
        self.breaks: list[dict[str, Any]] = []

    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        if key in self._held:
            return None
        self._held[key] = record
        return Lease(record)

    async def release(self, lease: Lease) -> None:
        current = self._held.get(lease.key)
        if current is not None and current.owner == lease.record.owner:
            del self._held[lease.key]

    async def holder(self, key: str) -> HolderRecord | None:
        return self._held.get(key)

    async def holders(self) -> list[HolderRecord]:
        return list(self._held.values())

    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        current = self._held.get(key)
        if current is None:
            raise UsageError(f"lock {key!r} is not held")
        if not force:
            raise LockConflict(f"lock {key!r} is {current.describe()}; an in-process holder is always live (use --force)")
        del self._held[key]
        entry = {"key": key, "broken": current.stored(), "by": by, "at": time.time()}
        self.breaks.append(entry)
        return BreakResult(key, current, by)

    async def get_version(self, namespace: str) -> int:
        return self._versions.get(namespace, (0, {}))[0]

    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        version, old = self._versions.get(namespace, (0, {}))
        self._versions[namespace] = (version + 1, dict(data) if data is not None else old)
        return version + 1

    async def forget(self, namespace: str) -> None:
        self._versions.pop(namespace, None)

    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        version, data = self._versions.get(namespace, (0, {}))
        return version, dict(data)
