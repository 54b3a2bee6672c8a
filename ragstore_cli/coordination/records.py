"""Holder records and the identity of this process: what every backend stores about a lock holder.

A record carries enough to judge it from outside (pid + process start time + host), so a holder
that died — or whose pid was reused — is recognised as stale on the host where it ran.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

_START_TIME: tuple[int, float | None] | None = None


_HOST: str | None = None


def host_name() -> str:
    global _HOST
    if _HOST is None:
        _HOST = socket.gethostname()
    return _HOST


def process_start(pid: int) -> float | None:
    """The kernel's start time of `pid` (seconds since the epoch), None when it is gone (or a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None  # exited; only its parent has not reaped it yet
        return round(proc.create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return None


def my_start() -> float | None:
    """This process's start time, computed once per pid (a fork gets its own)."""
    global _START_TIME
    pid = os.getpid()
    if _START_TIME is None or _START_TIME[0] != pid:
        _START_TIME = (pid, process_start(pid))
    return _START_TIME[1]


def key_digest(key: str) -> str:
    """A file-name-safe, fixed-length name for any key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def advisory_id(key: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock id derived from the key."""
    raw = hashlib.sha256(b"ragstore-lock:" + key.encode("utf-8", "surrogatepass")).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


@dataclass
class HolderRecord:
    """Who holds a lock, as stored by a backend and shown by `ragstore locks`."""

    key: str
    owner: str
    pid: int
    host: str
    command: str
    acquired_at: float
    lease_expires: float | None = None
    backend: str = ""
    token: int | None = None  # redis fencing token
    pid_start: float | None = None
    session_pid: int | None = None  # postgres backend pid of the holding session
    stale: bool = False
    stale_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def mine(cls, key: str, command: str, backend: str, lease: float | None = None) -> "HolderRecord":
        now = time.time()
        return cls(
            key=key, owner=secrets.token_hex(8), pid=os.getpid(), host=host_name(), command=command,
            acquired_at=now, lease_expires=(now + lease) if lease else None, backend=backend, pid_start=my_start(),
        )

    def to_dict(self) -> dict[str, Any]:
        data = self.stored()
        data.update(stale=self.stale, stale_reason=self.stale_reason)
        data["age_s"] = round(max(0.0, time.time() - self.acquired_at), 3)
        return data

    def stored(self) -> dict[str, Any]:
        """The persisted part (no computed staleness); built by hand: asdict deep-copies, on the hot path."""
        return {"key": self.key, "owner": self.owner, "pid": self.pid, "host": self.host, "command": self.command,
                "acquired_at": self.acquired_at, "lease_expires": self.lease_expires, "backend": self.backend,
                "token": self.token, "pid_start": self.pid_start, "session_pid": self.session_pid,
                "extra": dict(self.extra)}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> "HolderRecord":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def describe(self) -> str:
        """One line naming the holder, for LockConflict messages."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.acquired_at))
        age = max(0.0, time.time() - self.acquired_at)
        text = (f"held by {self.command or 'unknown command'} (owner {self.owner}, pid {self.pid} on {self.host}, "
                f"acquired {when}, {age:.0f} s ago)")
        if self.stale:
            text += f" [stale: {self.stale_reason}]"
        return text

    def judge_local(self) -> "HolderRecord":
        """Mark the record stale when its process is gone (or the pid was reused) on this host."""
        if self.lease_expires is not None and self.lease_expires < time.time():
            self.stale, self.stale_reason = True, "lease expired"
        elif self.host == host_name():
            start = process_start(self.pid)
            if start is None:
                self.stale, self.stale_reason = True, f"holder pid {self.pid} is dead on this host"
            elif self.pid_start is not None and abs(start - self.pid_start) > 1.0:
                self.stale, self.stale_reason = True, f"holder pid {self.pid} was reused by another process"
        return self
