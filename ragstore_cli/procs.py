"""Process liveness on this host, for pid files and leftovers named after a pid."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` runs on this host: leftovers named after a dead pid are safe to remove.

    Conservative: a process we may not signal counts as alive; a zombie (exited, not reaped) as dead.
    """
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")
