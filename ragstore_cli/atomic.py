"""The one way ragstore writes a file: whole or not at all (a sibling temporary file, then a rename).

`AtomicFile` streams into a temporary file beside the target; `commit()` renames it over the target,
`abort()` (or an exception inside `with`) removes it and leaves the target as it was. `write_atomic`
does the same for content already in memory. What callers choose:

- mode: None (the default) gives LightRAG's modes (docs/lightrag-formats.md, "Atomic writes"): a new
  file gets what a plain `open()` gives, 0666 minus the umask, so a LightRAG server running as another
  user can read what an import wrote; a file that replaces another takes the old one's permission bits.
  An explicit mode (OWNER_ONLY for secrets and archives) is set on the temporary file before the first
  byte is written, whatever the umask, and kept.
- durable: fsync the file before the rename and the folder after it, so the rename survives a power
  loss (LightRAG itself does not fsync). Off only for state that means nothing after a reboot (locks).
- tmp: the temporary name. By default LightRAG's own pattern (`tmp_sibling`), so LightRAG's orphan
  reaper also removes what a killed ragstore left in a working dir; a caller with its own leftover
  clean-up (the archive's `.partial`) or a reason to stay out of that pattern names its own.
- replace: False publishes only if nothing took the name meanwhile (link(2) never replaces):
  FileExistsError otherwise, the temporary file is left for the caller's abort().
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path
from typing import IO, Any

OWNER_ONLY = 0o600


def tmp_sibling(path: Path) -> Path:
    """LightRAG's temporary name for `path` (`<file>.tmp.<pid>.<tid>.<ns>`): unique per writer."""
    return path.with_name(f"{path.name}.tmp.{os.getpid()}.{threading.get_ident()}.{time.time_ns()}")


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


def fsync_file(path: Path) -> None:
    """Flush a finished file's data before a rename publishes it (a crash must not expose a short file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def keep_mode(new: Path, old: Path) -> None:
    """Give `new` the permission bits of `old`, the file it is about to replace (if there is one)."""
    try:
        mode = stat.S_IMODE(old.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(new, mode)


def _publish_new(tmp: Path, path: Path) -> None:
    """Rename `tmp` to `path` unless `path` exists (FileExistsError); `tmp` is gone only on success."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: check, then rename (a short race)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


class AtomicFile:
    """A file written through a temporary sibling; nothing is visible at `path` before `commit()`."""

    def __init__(self, path: str | os.PathLike[str], *, text: bool = False, mode: int | None = None,
                 durable: bool = True, tmp: Path | None = None, replace: bool = True) -> None:
        self.path = Path(path)
        self.tmp = tmp if tmp is not None else tmp_sibling(self.path)
        self.mode, self.durable, self.replace = mode, durable, replace
        # a name of our own is new (O_EXCL: never a file or link someone placed there); a caller's
        # fixed name may hold what a killed writer left
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if tmp is not None else os.O_EXCL)
        fd = os.open(self.tmp, flags, 0o666 if mode is None else mode)
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # the umask neither widens nor narrows an explicit mode
            self.file: IO[Any] = (open(fd, "w", encoding="utf-8", newline="") if text else open(fd, "wb"))
        except BaseException:
            os.close(fd)
            self.tmp.unlink(missing_ok=True)
            raise
        self.committed = False

    def write(self, data: Any) -> int:
        return self.file.write(data)

    def commit(self) -> None:
        """Flush (and fsync), then publish: the target is the new file from here on."""
        if self.committed:
            return
        self.file.flush()
        if self.durable:
            os.fsync(self.file.fileno())
        self.file.close()
        if self.mode is None:
            keep_mode(self.tmp, self.path)
        if self.replace:
            os.replace(self.tmp, self.path)
        else:
            _publish_new(self.tmp, self.path)
        self.committed = True
        if self.durable:
            fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop what was written; the target is as it was (nothing to do after a commit)."""
        if not self.file.closed:
            self.file.close()
        if not self.committed:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 durable: bool = True, tmp: Path | None = None) -> None:
    """Replace `path` with `data` (text is written as UTF-8), whole or not at all (see the module docstring)."""
    with AtomicFile(path, text=isinstance(data, str), mode=mode, durable=durable, tmp=tmp) as out:
        out.write(data)
