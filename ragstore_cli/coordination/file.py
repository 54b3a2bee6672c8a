"""File backend: Linux open-file-description (OFD) byte-range locks under WORKING_DIR/.ragstore.

Why not one lock file per key: creating or renaming a file costs ~0.5 ms on a journaled disk (and
per-key files must be deleted again so storage does not grow), which alone made that design several
times slower than LightRAG's in-memory locks. Instead, two fixed files:

- `locks/keys.lock` (empty): a key is held by an OFD write lock on one byte at a 62-bit hash of the
  key. Locks cost no storage, so nothing grows with the number of keys ever locked.
- `locks/holders.slots` (SLOTS × 512 B): holder records. A holder also locks one slot byte, found by
  probing from the key's home slot, and writes its record there in one pwrite (a slot never
  straddles a page; readers check a CRC and retry). Release clears the record, then unlocks.

The kernel drops OFD locks when the holder dies, so a SIGKILLed holder's key is free at once; its
record stays and is shown as stale (slot not locked) until reused or broken. OFD locks belong to
the open file, so two Coordinators in one process exclude each other; a fork reopens the files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import struct
import time
import weakref
import zlib
from pathlib import Path
from typing import Any

from ragstore_cli.atomic import write_atomic
from ragstore_cli.coordination.base import BreakResult, Lease, LockBackend
from ragstore_cli.coordination.records import HolderRecord, key_digest, process_start
from ragstore_cli.errors import LockConflict, OperationFailed, UsageError

STATE_DIR = ".ragstore"
SLOTS = 4096
SLOT = 512
PROBE = 64
HEADER = struct.Struct("<4sQHI")  # magic, key hash, json length, crc32
MAGIC = b"RSH1"
BREAK_LOG_MAX = 256 * 1024
_FLOCK = "hhqqi"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (native alignment)

if not hasattr(fcntl, "F_OFD_SETLK"):  # pragma: no cover - non-Linux
    raise ImportError("the file lock backend needs Linux open-file-description locks (F_OFD_SETLK)")

_OPEN: "weakref.WeakSet[FileBackend]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not keep its parent's locks alive: drop its copies of the lock files."""
    for backend in list(_OPEN):
        backend._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _key_hash(key: str) -> int:
    return int(key_digest(key)[:16], 16) & ((1 << 62) - 1)


def _ofd(fd: int, kind: int, start: int, cmd: int = fcntl.F_OFD_SETLK) -> bytes:
    return fcntl.fcntl(fd, cmd, struct.pack(_FLOCK, kind, os.SEEK_SET, start, 1, 0))


def _try_lock(fd: int, start: int) -> bool:
    try:
        _ofd(fd, fcntl.F_WRLCK, start)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def _is_locked(fd: int, start: int) -> bool:
    """Whether another open file holds a lock on this byte (F_OFD_GETLK)."""
    answer = _ofd(fd, fcntl.F_WRLCK, start, fcntl.F_OFD_GETLK)
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK


def _encode(record: HolderRecord, key_hash: int) -> bytes:
    data = {k: v for k, v in record.stored().items() if v not in (None, {})}
    body = json.dumps(data, separators=(",", ":")).encode()
    if len(body) > SLOT - HEADER.size:  # long keys/commands are shortened in the record only
        data.update(key=record.key[:200] + "…", command=record.command[:60], extra={"key_truncated": True})
        body = json.dumps(data, separators=(",", ":")).encode()[: SLOT - HEADER.size]
    return HEADER.pack(MAGIC, key_hash, len(body), zlib.crc32(body)) + body


def _decode(block: bytes) -> tuple[int, HolderRecord] | None:
    if len(block) < HEADER.size:
        return None
    magic, key_hash, length, crc = HEADER.unpack_from(block)
    body = block[HEADER.size:HEADER.size + length]
    if magic != MAGIC or len(body) != length or zlib.crc32(body) != crc:
        return None
    try:
        return key_hash, HolderRecord.from_stored(json.loads(body))
    except (ValueError, TypeError):
        return None


def _write_atomic(path: Path, payload: bytes) -> None:
    """Not durable: lock state means nothing after a reboot. The temporary name stays out of LightRAG's
    `*.tmp.*` pattern, which the LightRAG probe (probe.py) reads as a sign of a live LightRAG writer."""
    write_atomic(path, payload, durable=False, tmp=path.with_name(f".{path.name}.{os.getpid()}.tmp"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except (FileNotFoundError, ValueError):
        return None


class FileBackend(LockBackend):
    name = "file"
    release_is_instant = True

    def __init__(self, working_dir: Path) -> None:
        self.root = Path(working_dir) / STATE_DIR
        self.locks = self.root / "locks"
        self.namespaces = self.root / "namespaces"
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._mine: set[int] = set()  # slots this backend holds (our own OFD locks are invisible to GETLK)

    def _open(self) -> tuple[int, int]:
        if self._fds is None or self._pid != os.getpid():
            try:
                self.locks.mkdir(parents=True, exist_ok=True)
                self.namespaces.mkdir(parents=True, exist_ok=True)
                keys = os.open(self.locks / "keys.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                slots = os.open(self.locks / "holders.slots", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OperationFailed(f"cannot open the lock files in {self.locks}: {exc.strerror or exc}") from None
            if os.fstat(slots).st_size < SLOTS * SLOT:
                os.ftruncate(slots, SLOTS * SLOT)  # sparse; blocks get allocated once, then reused
            self._fds, self._pid, self._mine = (keys, slots), os.getpid(), set()
            _OPEN.add(self)
        return self._fds

    def _forget_inherited(self) -> None:
        if self._fds is not None and self._pid != os.getpid():
            for fd in self._fds:
                try:
                    os.close(fd)  # the parent's copy keeps its locks; ours must not outlive it
                except OSError:
                    pass
            self._fds, self._mine = None, set()

    # ----------------------------------------------------------------- locks
    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        keys, slots = self._open()
        key_hash = _key_hash(key)
        if not _try_lock(keys, key_hash):
            return None
        home, slot = key_hash % SLOTS, None
        for step in range(PROBE):
            candidate = (home + step) % SLOTS
            if candidate not in self._mine and _try_lock(slots, candidate * SLOT):
                slot = candidate
                break
        if slot is not None:  # with > SLOTS held locks a holder may go unrecorded; the lock still holds
            self._mine.add(slot)
            os.pwrite(slots, _encode(record, key_hash), slot * SLOT)
        return Lease(record, handle=(key_hash, slot, self._pid))

    async def release(self, lease: Lease) -> None:
        key_hash, slot, pid = lease.handle
        if pid != os.getpid() or self._fds is None:
            return  # a forked child never held its parent's locks
        keys, slots = self._fds
        if slot is not None:
            os.pwrite(slots, bytes(HEADER.size), slot * SLOT)  # clear the record before unlocking
            _ofd(slots, fcntl.F_UNLCK, slot * SLOT)
            self._mine.discard(slot)
        _ofd(keys, fcntl.F_UNLCK, key_hash)

    def _scan(self) -> list[tuple[int, int, HolderRecord]]:
        """(slot, key hash, record) of every non-empty slot, judged: live when its slot is locked."""
        path = self.locks / "holders.slots"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            data = os.pread(fd, SLOTS * SLOT, 0)
            found = []
            for slot in range(len(data) // SLOT):
                if data[slot * SLOT:slot * SLOT + 4] != MAGIC:
                    continue
                decoded = _decode(data[slot * SLOT:(slot + 1) * SLOT])
                if decoded is None:
                    continue
                key_hash, record = decoded
                if slot in self._mine and self._pid == os.getpid() or _is_locked(fd, slot * SLOT):
                    found.append((slot, key_hash, record))
                    continue
                again = _decode(os.pread(fd, SLOT, slot * SLOT))  # released while we looked?
                if again is None or again[1].owner != record.owner:
                    continue
                record.judge_local()
                if not record.stale:
                    record.stale, record.stale_reason = True, "holder exited without releasing (slot not locked)"
                found.append((slot, key_hash, record))
            return found
        finally:
            os.close(fd)

    def _visible(self) -> list[tuple[int, int, HolderRecord]]:
        entries = self._scan()
        live = {h for _, h, r in entries if not r.stale}
        return [e for e in entries if not (e[2].stale and e[1] in live)]  # a stale record superseded by a live one

    async def holder(self, key: str) -> HolderRecord | None:
        key_hash = _key_hash(key)
        matches = [r for _, h, r in self._visible() if h == key_hash]
        return sorted(matches, key=lambda r: r.stale)[0] if matches else None

    async def holders(self) -> list[HolderRecord]:
        return sorted((r for _, _, r in self._visible()), key=lambda r: r.acquired_at)

    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        key_hash = _key_hash(key)
        entries = [(slot, r) for slot, h, r in self._scan() if h == key_hash]
        if not entries:
            raise UsageError(f"lock {key!r} is not held (or its holder wrote no record)")
        live = [r for _, r in entries if not r.stale]
        if live and not force:
            raise LockConflict(f"lock {key!r} is {live[0].describe()}; refusing to break a live holder without --force")
        for record in live:  # a kernel lock ends with its process: stop the holder (same host only)
            self._stop_holder(record)
        _, slots = self._open()
        for slot, record in entries:
            if _try_lock(slots, slot * SLOT):
                current = _decode(os.pread(slots, SLOT, slot * SLOT))
                if current is not None and current[1].owner == record.owner:
                    os.pwrite(slots, bytes(HEADER.size), slot * SLOT)
                _ofd(slots, fcntl.F_UNLCK, slot * SLOT)
        record = live[0] if live else entries[0][1]
        self._log_break({"key": key, "broken": record.stored(), "by": by, "live": bool(live), "at": time.time()})
        return BreakResult(key, record, by)

    def _stop_holder(self, record: HolderRecord, wait: float = 10.0) -> None:
        if record.host != os.uname().nodename:
            raise OperationFailed(f"holder of {record.key!r} runs on {record.host}, not here: stop it there")
        if record.pid_start is not None and process_start(record.pid) != record.pid_start:
            return  # already gone (or the pid now belongs to someone else: never signal it)
        try:
            os.kill(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        except PermissionError:
            raise OperationFailed(f"not allowed to stop pid {record.pid} holding {record.key!r}") from None
        deadline = time.monotonic() + wait
        while process_start(record.pid) == record.pid_start and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_start(record.pid) == record.pid_start:
            raise OperationFailed(f"pid {record.pid} holding {record.key!r} did not exit within {wait:g} s of SIGTERM")

    def _log_break(self, entry: dict[str, Any]) -> None:
        self._open()
        log = self.root / "breaks.jsonl"
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if log.stat().st_size > BREAK_LOG_MAX:  # keep the recent half: bounded, still auditable
            lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
            _write_atomic(log, "".join(lines[len(lines) // 2:]).encode())

    # ----------------------------------------------------------------- namespace versions
    def _ns_paths(self, namespace: str) -> tuple[Path, Path]:
        digest = key_digest(namespace)
        return self.namespaces / f"{digest}.lock", self.namespaces / f"{digest}.json"

    async def get_version(self, namespace: str) -> int:
        data = _read_json(self._ns_paths(namespace)[1])
        return int(data["version"]) if data else 0

    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        self._open()
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

    async def forget(self, namespace: str) -> None:
        lock_path, state_path = self._ns_paths(namespace)
        if not state_path.exists():
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # not while a bump_version writes it
            state_path.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        data = _read_json(self._ns_paths(namespace)[1])
        return (int(data["version"]), dict(data.get("data") or {})) if data else (0, {})

    async def close(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            for fd in self._fds:
                os.close(fd)  # drops every OFD lock still held through them
        self._fds, self._mine = None, set()
