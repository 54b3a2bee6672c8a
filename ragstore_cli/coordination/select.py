"""Which backend holds the locks for a given set of settings (`RAGSTORE_LOCK_BACKEND`).

`auto` puts the lock where the data lives, so every host that can write the data sees the lock:
postgres when any LightRAG storage class is a PG one, else redis when any is a Redis one, else a
file lock under WORKING_DIR (the embedded default: one host).
"""

from __future__ import annotations

from ragstore_cli.config import LOCK_BACKENDS, Settings
from ragstore_cli.coordination.base import Coordinator, LockBackend
from ragstore_cli.errors import OperationFailed, UsageError


def resolve_backend(settings: Settings, backend: str | None = None) -> str:
    """The concrete backend name for `backend` (or the setting), `auto` resolved."""
    choice = (backend or settings.ragstore.lock_backend or "auto").lower()
    if choice not in LOCK_BACKENDS:
        raise UsageError(f"unknown lock backend {backend!r}; expected one of: {', '.join(LOCK_BACKENDS)}")
    if choice != "auto":
        return choice
    classes = settings.storage_classes.values()
    if any(name.startswith("PG") for name in classes):
        return "postgres"
    if any(name.startswith("Redis") for name in classes):
        return "redis"
    return "file"


_MEMORY: dict[int, LockBackend] = {}


def make_backend(settings: Settings, backend: str | None = None, *, lease: float | None = None) -> LockBackend:
    """Build (without connecting yet) the backend for these settings."""
    name = resolve_backend(settings, backend)
    if name == "memory":
        from ragstore_cli.coordination.memory import MemoryBackend

        return _MEMORY.setdefault(0, MemoryBackend())  # one per process: that is what "in-process" means
    if name == "file":
        try:
            from ragstore_cli.coordination.file import FileBackend
        except ImportError as exc:  # not Linux: no OFD locks
            raise OperationFailed(f"{exc}; use RAGSTORE_LOCK_BACKEND=postgres or redis here") from None
        return FileBackend(settings.working_dir)
    if name == "postgres":
        from ragstore_cli.coordination.postgres import PostgresBackend

        return PostgresBackend(settings)
    from ragstore_cli.coordination.redis import DEFAULT_LEASE, RedisBackend

    return RedisBackend(settings, lease=lease or DEFAULT_LEASE)


def open_coordinator(settings: Settings, backend: str | None = None, *, command: str = "",
                     lease: float | None = None) -> Coordinator:
    """A Coordinator over the chosen backend; use it as `async with` to close it."""
    return Coordinator(make_backend(settings, backend, lease=lease), command=command)
