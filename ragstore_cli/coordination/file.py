"""File backend: flock(2) locks under WORKING_DIR/.ragstore — many processes on one host.

Per key: `<digest>.lock` (the flock target) and `<digest>.json` (the holder record, replaced
atomically). The kernel drops a flock when its holder dies, so a SIGKILLed holder's key is free at
once; its leftover record is overwritten by the next holder or shown as stale. Both files are
unlinked on release while the lock is still held; an acquirer that locked an inode which was
unlinked meanwhile notices (inode differs from the path's) and retries, so files never accumulate
with the number of keys ever locked. flock (not POSIX lockf) because it belongs to the open file,
so two coroutines of one process exclude each other and closing an unrelated descriptor is safe.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from ragstore_cli.coordination.base import BreakResult, Lease, LockBackend
from ragstore_cli.coordination.records import HolderRecord, key_digest
from ragstore_cli.errors import LockConflict, OperationFailed, UsageError

STATE_DIR = ".ragstore"
BREAK_LOG_MAX = 256 * 1024


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except (FileNotFoundError, ValueError):
        return None


class FileBackend(LockBackend):
    name = "file"

    def __init__(self, working_dir: Path) -> None:
        self.root = Path(working_dir) / STATE_DIR
        self.locks = self.root / "locks"
        self.namespaces = self.root / "namespaces"
        self._made = False

    def _ensure(self) -> None:
        if not self._made:
            try:
                self.locks.mkdir(parents=True, exist_ok=True)
                self.namespaces.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OperationFailed(f"cannot create the lock folder {self.root}: {exc.strerror or exc}") from None
            self._made = True

    def _paths(self, key: str) -> tuple[Path, Path]:
        digest = key_digest(key)
        return self.locks / f"{digest}.lock", self.locks / f"{digest}.json"

    # ----------------------------------------------------------------- locks
    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        self._ensure()
        lock_path, record_path = self._paths(key)
        for _ in range(8):  # retry only when the inode we locked was unlinked under us
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                raise
            inode = os.fstat(fd).st_ino
            try:
                same = os.stat(lock_path).st_ino == inode
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                _write_atomic(record_path, json.dumps(record.stored()).encode())
            except BaseException:
                os.close(fd)
                raise
            return Lease(record, handle=(fd, inode))
        return None

    async def release(self, lease: Lease) -> None:
        fd, inode = lease.handle
        lock_path, record_path = self._paths(lease.key)
        try:
            try:
                ours = os.stat(lock_path).st_ino == inode
            except FileNotFoundError:
                ours = False
            if ours:  # not broken meanwhile: remove both files while still holding the lock
                try:
                    os.unlink(record_path)
                except FileNotFoundError:
                    pass
                os.unlink(lock_path)
        finally:
            os.close(fd)

    def _is_locked(self, lock_path: Path) -> bool | None:
        """True when some process holds the flock, False when free, None when the file is gone."""
        try:
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        finally:
            os.close(fd)  # closing drops the probe's shared lock
        return False

    def _judge(self, record_path: Path) -> HolderRecord | None:
        data = _read_json(record_path)
        if data is None:
            return None
        record = HolderRecord.from_stored(data)
        locked = self._is_locked(record_path.with_suffix(".lock"))
        if locked:
            return record  # the kernel says someone holds it: live, whatever the record's age
        if not record_path.exists():
            return None  # released while we looked
        record.judge_local()
        if not record.stale:
            record.stale, record.stale_reason = True, "lock file is not locked (holder exited without releasing)"
        return record

    async def holder(self, key: str) -> HolderRecord | None:
        return self._judge(self._paths(key)[1])

    async def holders(self) -> list[HolderRecord]:
        if not self.locks.is_dir():
            return []
        found = []
        for entry in os.scandir(self.locks):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                record = self._judge(Path(entry.path))
                if record is not None:
                    found.append(record)
        return sorted(found, key=lambda r: r.acquired_at)

    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        lock_path, record_path = self._paths(key)
        record = self._judge(record_path)
        locked = self._is_locked(lock_path)
        if record is None and not locked:
            raise UsageError(f"lock {key!r} is not held")
        if locked and not force:
            who = record.describe() if record else "held by a process that wrote no holder record yet"
            raise LockConflict(f"lock {key!r} is {who}; refusing to break a live holder without --force")
        for path in (record_path, lock_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._log_break({"key": key, "broken": record.stored() if record else None, "by": by,
                         "live": bool(locked), "at": time.time()})
        return BreakResult(key, record, by)

    def _log_break(self, entry: dict[str, Any]) -> None:
        self._ensure()
        log = self.root / "breaks.jsonl"
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if log.stat().st_size > BREAK_LOG_MAX:  # keep the recent half: bounded, still auditable
            lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
            _write_atomic(log, "".join(lines[len(lines) // 2:]).encode())

    def break_log(self) -> list[dict[str, Any]]:
        log = self.root / "breaks.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def file_count(self) -> int:
        return sum(1 for _ in os.scandir(self.locks)) if self.locks.is_dir() else 0

    # ----------------------------------------------------------------- namespace versions
    def _ns_paths(self, namespace: str) -> tuple[Path, Path]:
        digest = key_digest(namespace)
        return self.namespaces / f"{digest}.lock", self.namespaces / f"{digest}.json"

    async def get_version(self, namespace: str) -> int:
        data = _read_json(self._ns_paths(namespace)[1])
        return int(data["version"]) if data else 0

    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        self._ensure()
        lock_path, state_path = self._ns_paths(namespace)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds: a blocking wait is fine
            current = _read_json(state_path) or {"namespace": namespace, "version": 0, "data": {}}
            current["version"] = int(current["version"]) + 1
            if data is not None:
                current["data"] = data
            current["updated_by"] = {"pid": os.getpid(), "at": time.time()}
            _write_atomic(state_path, json.dumps(current).encode())
            return current["version"]
        finally:
            os.close(fd)

    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        data = _read_json(self._ns_paths(namespace)[1])
        return (int(data["version"]), dict(data.get("data") or {})) if data else (0, {})
