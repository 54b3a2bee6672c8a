"""`ragstore locks list|show|break|wait`: the locks ragstore commands hold, on any lock backend.

`backend` is auto, file, postgres, redis or memory (None: RAGSTORE_LOCK_BACKEND); keys look like
`workspace:books`. Results are typed; `to_dict()` is what `--json` prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ragstore_cli.api.calling import resolved
from ragstore_cli.config import Settings
from ragstore_cli.coordination import HolderRecord, LightRAGPresence, open_coordinator, probe_lightrag, resolve_backend
from ragstore_cli.errors import UsageError


@dataclass(frozen=True)
class LockList:
    """Every held ragstore lock (stale ones marked); PostgreSQL also lists other tools' advisory locks,
    the file backend whether LightRAG seems to run on the working dir."""

    backend: str
    locks: list[HolderRecord]
    other_advisory_locks: list[dict[str, Any]] | None = None
    lightrag: LightRAGPresence | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"backend": self.backend, "locks": [r.to_dict() for r in self.locks]}
        if self.other_advisory_locks is not None:
            document["other_advisory_locks"] = self.other_advisory_locks
        if self.lightrag is not None:
            document["lightrag"] = self.lightrag.to_dict()
        return document


@dataclass(frozen=True)
class LockHolder:
    """Who holds `key` (`holder` None: nobody); `held` is False for a stale holder too."""

    backend: str
    key: str
    holder: HolderRecord | None

    @property
    def held(self) -> bool:
        return self.holder is not None and not self.holder.stale

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "key": self.key, "held": self.held,
                "holder": self.holder.to_dict() if self.holder else None}


@dataclass(frozen=True)
class LockBreak:
    """The holder a break removed (None: there was no holder record) and who broke it."""

    backend: str
    key: str
    broken: HolderRecord | None
    by: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "key": self.key, "broken": self.broken.to_dict() if self.broken else None,
                "by": self.by}


@dataclass(frozen=True)
class LockWait:
    backend: str
    key: str
    waited_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "key": self.key, "free": True, "waited_s": round(self.waited_s, 3)}


def locks_backend(backend: str | None = None, *, settings: Settings | None = None) -> str:
    """The lock backend a locks_* call with these arguments uses (auto resolved); no I/O."""
    return resolve_backend(resolved(settings), backend)


async def locks_list(*, backend: str | None = None, settings: Settings | None = None) -> LockList:
    """Every held lock with its holder and age; stale ones marked (dead pid, expired lease, session gone)."""
    config = resolved(settings)
    name = resolve_backend(config, backend)
    async with open_coordinator(config, name, command="locks list") as coord:
        holders = await coord.holders()
        foreign = await coord.foreign_locks() if name == "postgres" else None
    return LockList(name, holders, foreign, probe_lightrag(config.working_dir) if name == "file" else None)


async def locks_show(key: str, *, backend: str | None = None, settings: Settings | None = None) -> LockHolder:
    """Who holds `key`, if anyone."""
    config = resolved(settings)
    name = resolve_backend(config, backend)
    async with open_coordinator(config, name, command="locks show") as coord:
        return LockHolder(name, key, await coord.holder(key))


async def locks_break(key: str, *, force: bool = False, backend: str | None = None,
                      settings: Settings | None = None) -> LockBreak:
    """Remove a stale lock; a live holder raises LockConflict unless `force` (postgres: ends its
    session). The break is recorded."""
    config = resolved(settings)
    name = resolve_backend(config, backend)
    async with open_coordinator(config, name, command="locks break") as coord:
        result = await coord.break_lock(key, force=force)
    return LockBreak(name, key, result.broken, result.by)


async def locks_wait(key: str, *, timeout: float | None = None, backend: str | None = None,
                     settings: Settings | None = None) -> LockWait:
    """Wait until `key` is free (taken and released at once); LockConflict naming the holder after
    `timeout` seconds (None: RAGSTORE_LOCK_TIMEOUT)."""
    config = resolved(settings)
    name = resolve_backend(config, backend)
    limit = config.ragstore.lock_timeout if timeout is None else timeout
    if limit < 0:
        raise UsageError("--timeout must not be negative")
    started = time.monotonic()
    async with open_coordinator(config, name, command="locks wait") as coord:
        async with coord.lock(key, timeout=limit):
            return LockWait(name, key, time.monotonic() - started)
