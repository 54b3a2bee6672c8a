"""The backend contract and the `Coordinator` every caller uses: locks, keyed locks, waiting.

A backend only knows how to *try* once (`try_acquire`) and how to release, list and break. The
coordinator adds what is common: a per-process asyncio gate per key (so coroutines of one process
queue locally instead of polling the backend, as LightRAG's unified lock does), deadlines with
jittered backoff, sorted multi-key acquisition, and LockConflict messages naming the holder.
Gate entries exist only while referenced, so memory does not grow with keys ever locked.
"""

from __future__ import annotations

import abc
import asyncio
import random
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable

from ragstore_cli.coordination.records import HolderRecord
from ragstore_cli.errors import LockConflict, UsageError

POLL_FIRST = 0.0005
POLL_MAX = 0.05
MAX_KEY = 1024


def validate_key(key: str) -> str:
    """Keys are non-empty text without NUL, at most MAX_KEY characters."""
    if not isinstance(key, str) or not key:
        raise UsageError("a lock key must be a non-empty string")
    if "\x00" in key:
        raise UsageError("a lock key cannot contain NUL")
    if len(key) > MAX_KEY:
        raise UsageError(f"a lock key is at most {MAX_KEY} characters (got {len(key)})")
    return key


@dataclass
class Lease:
    """A held lock: its record plus backend-private state needed to release it."""

    record: HolderRecord
    handle: Any = None
    lost: bool = False  # set by lease renewal when the backend no longer recognises us
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.record.key


@dataclass
class BreakResult:
    key: str
    broken: HolderRecord | None
    by: dict[str, Any]


class LockBackend(abc.ABC):
    """One storage for locks, holder records and namespace versions."""

    name: str = ""
    lease: float | None = None  # seconds, for backends whose locks expire
    release_is_instant = False  # True when release() never suspends (local syscalls only)

    @abc.abstractmethod
    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        """Take the lock once if it is free (or held by a dead holder); None when held."""

    @abc.abstractmethod
    async def release(self, lease: Lease) -> None:
        """Release a lease we hold; a lease broken by someone else is left alone."""

    @abc.abstractmethod
    async def holder(self, key: str) -> HolderRecord | None:
        """The current (or stale) holder record of `key`, judged for staleness."""

    @abc.abstractmethod
    async def holders(self) -> list[HolderRecord]:
        """Every held or stale lock this backend can see."""

    @abc.abstractmethod
    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        """Remove a stale holder (or a live one when `force`), recording who broke it."""

    # namespace versions (update flags) and shared data ----------------------------------
    @abc.abstractmethod
    async def get_version(self, namespace: str) -> int:
        """The namespace's update counter (0 when never updated)."""

    @abc.abstractmethod
    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        """Increment the counter (storing `data` as the shared namespace data when given)."""

    @abc.abstractmethod
    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        """The namespace's shared data and the version it belongs to."""

    async def forget(self, namespace: str) -> None:
        """Remove the namespace's record entirely (a note nobody will read again, e.g. a finished
        workspace transfer). Never for a namespace whose version update flags still watch."""
        await self.bump_version(namespace, {})

    async def foreign_locks(self) -> list[dict[str, Any]]:
        """Locks held by other tools that this backend can see (PostgreSQL advisory locks); none elsewhere."""
        return []

    async def close(self) -> None:
        """Free connections and files."""


class Coordinator:
    """Locks and namespace versions over one backend, for one process (or one event loop)."""

    def __init__(self, backend: LockBackend, *, command: str = "") -> None:
        self.backend = backend
        self.command = command
        self._gates: dict[str, list[Any]] = {}  # key -> [asyncio.Lock, refcount]

    @property
    def name(self) -> str:
        return self.backend.name

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> "Coordinator":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ----------------------------------------------------------------- single key
    async def acquire(self, key: str, *, timeout: float | None = None, command: str | None = None) -> Lease:
        """Wait up to `timeout` seconds (None: forever) for `key`; raise LockConflict naming the holder."""
        validate_key(key)
        deadline = None if timeout is None else time.monotonic() + timeout
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = [asyncio.Lock(), 0]
        gate[1] += 1
        try:
            if not gate[0].locked() and not getattr(gate[0], "_waiters", None):
                await gate[0].acquire()  # free and nobody queued: returns at once, no task, no loop round-trip
            else:  # queue behind this process's other holder of the key, within the deadline
                try:
                    await asyncio.wait_for(gate[0].acquire(), None if deadline is None else max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    raise await self._conflict(key, timeout) from None
            try:
                return await self._acquire_backend(key, deadline, timeout, command)
            except BaseException:
                gate[0].release()
                raise
        except BaseException:
            self._unref(key, gate)
            raise

    async def _acquire_backend(self, key: str, deadline: float | None, timeout: float | None,
                               command: str | None) -> Lease:
        delay = POLL_FIRST
        while True:
            record = HolderRecord.mine(key, command if command is not None else self.command,
                                       self.backend.name, self.backend.lease)
            lease = await self.backend.try_acquire(key, record)
            if lease is not None:
                return lease
            if deadline is not None and time.monotonic() >= deadline:
                raise await self._conflict(key, timeout)
            pause = delay * (0.5 + random.random())
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(pause)
            delay = min(delay * 2, POLL_MAX)

    async def release(self, lease: Lease) -> None:
        for task in lease.tasks:
            task.cancel()
        try:
            await self.backend.release(lease)
        finally:
            gate = self._gates.get(lease.key)
            if gate is not None:
                gate[0].release()
                self._unref(lease.key, gate)

    def _unref(self, key: str, gate: list[Any]) -> None:
        gate[1] -= 1
        if gate[1] <= 0 and self._gates.get(key) is gate:
            del self._gates[key]

    async def _conflict(self, key: str, timeout: float | None) -> LockConflict:
        try:
            holder = await self.backend.holder(key)
        except Exception:  # noqa: BLE001 - the conflict is the news; the holder is a bonus
            holder = None
        waited = f" after waiting {timeout:g} s" if timeout is not None else ""
        who = holder.describe() if holder else "held by another process of this or another host"
        return LockConflict(f"lock {key!r} is {who}{waited}",
                            hint=f"see `ragstore locks show {key}`; a stale holder can be removed with `ragstore locks break {key}`")

    @asynccontextmanager
    async def lock(self, key: str, *, timeout: float | None = None, command: str | None = None) -> AsyncIterator[Lease]:
        """Hold `key` for the body of an `async with`."""
        lease = await self.acquire(key, timeout=timeout, command=command)
        try:
            yield lease
        finally:
            await self._release_protected(lease)

    async def _release_protected(self, lease: Lease) -> None:
        """Release even when the caller is being cancelled (a half-done release would strand the lock)."""
        if self.backend.release_is_instant:
            await self.release(lease)  # no await inside: cannot be interrupted, no task needed
        else:
            await asyncio.shield(self.release(lease))

    @asynccontextmanager
    async def keyed_lock(self, keys: Iterable[str], namespace: str, *, timeout: float | None = None,
                         command: str | None = None) -> AsyncIterator[list[Lease]]:
        """Hold several keys of a namespace, taken in sorted order (no deadlock), one shared deadline."""
        combined = sorted({f"{namespace}:{key}" for key in keys})
        deadline = None if timeout is None else time.monotonic() + timeout
        leases: list[Lease] = []
        try:
            for key in combined:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                leases.append(await self.acquire(key, timeout=left, command=command))
            yield leases
        finally:
            for lease in reversed(leases):
                await self._release_protected(lease)

    # ----------------------------------------------------------------- inspection
    async def holder(self, key: str) -> HolderRecord | None:
        return await self.backend.holder(validate_key(key))

    async def holders(self) -> list[HolderRecord]:
        return await self.backend.holders()

    async def foreign_locks(self) -> list[dict[str, Any]]:
        return await self.backend.foreign_locks()

    async def break_lock(self, key: str, *, force: bool = False, by_command: str = "locks break") -> BreakResult:
        me = HolderRecord.mine(validate_key(key), by_command, self.backend.name)
        by = {"owner": me.owner, "pid": me.pid, "host": me.host, "command": by_command, "at": me.acquired_at}
        return await self.backend.break_lock(key, by, force=force)
