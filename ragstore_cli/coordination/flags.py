"""Update flags and shared namespace data over any backend.

LightRAG keeps one boolean per storage instance per namespace in the Manager and flips them all
on commit. Here a namespace has a version counter in the backend; each process remembers the
version it last loaded, so "my flag is set" means "the counter moved since I loaded". Saves follow
the conflict rule: under the namespace lock, a save that finds its flag set reloads (and replays
its pending change) instead of overwriting what another process wrote.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ragstore_cli.coordination.base import Coordinator

NAMESPACE_LOCK_PREFIX = "namespace:"


class UpdateFlag:
    """This process's view of one namespace's version."""

    def __init__(self, coordinator: Coordinator, namespace: str) -> None:
        self.coordinator = coordinator
        self.namespace = namespace
        self.seen: int | None = None  # None: never loaded, so a load is due

    async def is_set(self) -> bool:
        """True when another process updated the namespace since this one loaded it."""
        return self.seen is None or await self.coordinator.backend.get_version(self.namespace) != self.seen

    async def loaded(self, version: int | None = None) -> None:
        """Clear the flag: this process now has `version` (default: the current one)."""
        self.seen = await self.coordinator.backend.get_version(self.namespace) if version is None else version

    async def mark_updated(self, data: dict[str, Any] | None = None) -> int:
        """Tell every other process to reload (and clear our own flag: we wrote it)."""
        self.seen = await self.coordinator.backend.bump_version(self.namespace, data)
        return self.seen


class SharedNamespace:
    """A namespace whose state lives in storage, loaded by `load` and written by `write`."""

    def __init__(self, coordinator: Coordinator, namespace: str, *, load: Callable[[], Awaitable[None]],
                 write: Callable[[], Awaitable[None]], timeout: float | None = None) -> None:
        self.coordinator = coordinator
        self.namespace = namespace
        self.flag = UpdateFlag(coordinator, namespace)
        self._load, self._write, self.timeout = load, write, timeout
        self.reloads = 0

    async def before_read(self) -> None:
        """Reload when another process saved since our last load."""
        async with self.coordinator.lock(NAMESPACE_LOCK_PREFIX + self.namespace, timeout=self.timeout):
            if await self.flag.is_set():
                await self._reload()

    async def save(self, replay: Callable[[], Awaitable[None]] | None = None) -> bool:
        """Write our state; when the flag is set, reload and `replay` our pending change first.

        Returns True when a reload happened (another process had saved in between)."""
        async with self.coordinator.lock(NAMESPACE_LOCK_PREFIX + self.namespace, timeout=self.timeout):
            reloaded = await self.flag.is_set()
            if reloaded:
                await self._reload()
                if replay is not None:
                    await replay()
            await self._write()
            await self.flag.mark_updated()
            return reloaded

    async def _reload(self) -> None:
        version = await self.coordinator.backend.get_version(self.namespace)
        await self._load()
        self.reloads += 1
        await self.flag.loaded(version)


async def get_namespace_data(coordinator: Coordinator, namespace: str) -> tuple[int, dict[str, Any]]:
    """The shared data of a namespace (visible to every process of the backend) and its version."""
    return await coordinator.backend.get_data(namespace)


async def set_namespace_data(coordinator: Coordinator, namespace: str, data: dict[str, Any]) -> int:
    """Replace the shared data and raise every other process's update flag; returns the new version."""
    return await coordinator.backend.bump_version(namespace, data)


async def update_namespace_data(coordinator: Coordinator, namespace: str, change: Callable[[dict[str, Any]], None],
                                *, timeout: float | None = None) -> tuple[int, dict[str, Any]]:
    """Read-modify-write of the shared data under the namespace lock (no update lost between processes)."""
    async with coordinator.lock(NAMESPACE_LOCK_PREFIX + namespace, timeout=timeout):
        _, data = await coordinator.backend.get_data(namespace)
        change(data)
        return await coordinator.backend.bump_version(namespace, data), data
