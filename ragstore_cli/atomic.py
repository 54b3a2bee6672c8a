"""Publishing a finished file: same-directory rename, durable, owner-only unless it replaces one.

Every writer of LightRAG files and archives fills a sibling temporary file, fsyncs it, then calls
`publish`: the reader sees the old file or the new one, never a mix, and the rename survives a
power loss (LightRAG itself does not fsync). A new file holds workspace data, so it is created
owner-only (0600); a file that replaces another keeps the old one's permission bits, as LightRAG does.
"""

from __future__ import annotations

import os
from pathlib import Path

NEW_FILE_MODE = 0o600


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


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished, fsynced `tmp` over `path` with the right mode, durably."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)
