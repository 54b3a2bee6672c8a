"""Publishing a finished file: same-directory rename, durable, with the mode LightRAG would give it.

Every writer of LightRAG files fills a sibling temporary file, fsyncs it, then calls `publish`: the
reader sees the old file or the new one, never a mix, and the rename survives a power loss
(LightRAG itself does not fsync). The modes are LightRAG's own (its `atomic_write`, reference §2.7):
a new file keeps what a plain `open()` gave the temporary file, 0666 minus the process umask, so a
LightRAG server running as another user can read what an import wrote; a file that replaces another
takes the old one's permission bits. Files that hold secrets (env files, the dev servers' state) and
archives (a whole workspace, meant to travel) are written owner-only by their own writers, not here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort where the platform refuses)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def keep_mode(new: Path, old: Path) -> None:
    """Give `new` the permission bits of `old`, the file it is about to replace (if there is one)."""
    try:
        mode = stat.S_IMODE(old.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(new, mode)


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished, fsynced `tmp` over `path` with the right mode, durably."""
    keep_mode(tmp, path)
    os.replace(tmp, path)
    fsync_dir(path.parent)
