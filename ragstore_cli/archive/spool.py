"""An archive arriving on a stream (`ragstore import -`), held in a private file while it is checked.

Why a file: `import` verifies the whole archive before it writes anything, then reads it again to
load it (and reads each vector part's ids twice), so a stream that can be read only once is first
copied whole into a spool file and imported from there exactly as from any archive file. A stream
cut short or damaged on the way fails that verify pass with the same one-line messages as a file
(damage.py), before the first write.

The spool file is owner-only (0600, whatever the umask), lives in the folder the caller names
(`--spool-dir`, RAGSTORE_SPOOL_DIR) or the system's temporary folder, and is removed on every way
out: success, failure, Ctrl-C (the copy runs in a worker thread that stops within POLL seconds of
being told). A SIGKILLed process cannot remove it, so its name carries the pid and the next spool
in that folder removes those of dead processes. Free space is checked before the copy (a stream
that is a regular file says its size) and as it goes: the copy stops with a one-line error while
RESERVE bytes are still free, rather than filling the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator

from ragstore_cli.errors import OperationFailed, UsageError

SPOOL_PREFIX = "ragstore-stdin-"
CHUNK = 1 << 20  # bytes read from the stream at a time
RESERVE = 64 << 20  # free bytes the spool leaves on its file system
WINDOW = 16 << 20  # bytes the copy may write between two looks at the free space
POLL = 0.2  # seconds between looks at the stop flag while the stream sends nothing
Progress = Callable[[int], None]  # bytes received since the last call


def spool_folder(folder: Path | str | None) -> Path:
    """The folder a spool goes to: `folder`, else the system's temporary folder (TMPDIR)."""
    where = Path(folder) if folder else Path(tempfile.gettempdir())
    if not where.is_dir():
        raise UsageError(f"spool folder {where} does not exist or is not a folder",
                         hint="point --spool-dir or RAGSTORE_SPOOL_DIR at an existing folder")
    return where


@contextlib.contextmanager
def spooled(stream: BinaryIO, folder: Path | str | None = None, progress: Progress | None = None) -> Iterator[Path]:
    """Copy `stream` to its end into a new spool file and yield the file's path; the file is removed
    when the block ends, however it ends."""
    with _spool_file(folder) as (path, out, where):
        _copy(stream, out, where, progress, threading.Event())
        out.close()
        _not_empty(path)
        yield path


@contextlib.asynccontextmanager
async def spooled_async(stream: BinaryIO, folder: Path | str | None = None,
                        progress: Progress | None = None) -> AsyncIterator[Path]:
    """`spooled` for a coroutine: the copy runs in a worker thread; a cancelled coroutine (Ctrl-C
    under the CLI's guard) tells the thread to stop and removes the file at once."""
    stop = threading.Event()
    with _spool_file(folder) as (path, out, where):
        try:
            await asyncio.to_thread(_copy, stream, out, where, progress, stop)
        finally:
            stop.set()  # a thread still copying (cancelled) ends within POLL seconds
        out.close()
        _not_empty(path)
        yield path


@contextlib.contextmanager
def _spool_file(folder: Path | str | None) -> Iterator[tuple[Path, BinaryIO, Path]]:
    """A new owner-only spool file (path, open for writing, its folder), removed when the block ends."""
    where = spool_folder(folder)
    remove_leftovers(where)
    fd, name = tempfile.mkstemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", suffix=".ragstore", dir=where)
    path = Path(name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp's mode already; said here because the archive holds a whole workspace
        with os.fdopen(fd, "wb") as out:
            yield path, out, where
    finally:
        path.unlink(missing_ok=True)


def _not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise OperationFailed("the archive stream is empty (0 bytes): the command sending it wrote no archive "
                              "(did it fail?)")


def _copy(stream: BinaryIO, out: BinaryIO, folder: Path, progress: Progress | None, stop: threading.Event) -> None:
    """Copy until the stream ends, keeping RESERVE bytes free; stop (OperationFailed) when told."""
    fileno = _fileno(stream)
    if fileno is not None:
        info = os.fstat(fileno)
        if stat.S_ISREG(info.st_mode):  # `import - < file`: its size is known before the copy
            _room(folder, max(0, info.st_size - _tell(fileno)), 0)
    written = checked = 0  # free space was last seen to allow writing up to `checked` bytes
    while True:
        data = _read(stream, fileno, stop)
        if not data:
            return
        if written + len(data) > checked:  # statvfs once per WINDOW, not per pipe-sized read
            _room(folder, WINDOW, written)
            checked = written + WINDOW
        try:
            out.write(data)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _full(folder, written) from None
            raise
        written += len(data)
        if progress is not None:
            progress(len(data))


def _read(stream: BinaryIO, fileno: int | None, stop: threading.Event) -> bytes:
    """The next chunk of the stream (b"" at its end); waits in POLL steps so that `stop` is seen.
    A stream with a file descriptor is read through it (what a Python reader already buffered is not
    seen: hand over a stream nothing has read from, such as stdin)."""
    if fileno is None:
        return stream.read(CHUNK)
    while True:
        if stop.is_set():
            raise OperationFailed("interrupted while receiving the archive stream")
        ready, _, _ = select.select([fileno], [], [], POLL)
        if ready:
            return os.read(fileno, CHUNK)


def _room(folder: Path, need: int, written: int) -> None:
    """Refuse `need` more bytes when they would leave less than RESERVE free in `folder`."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return  # a file system that does not say: the write itself reports a full disk
    if info.f_bavail * info.f_frsize - need < RESERVE:
        raise _full(folder, written)


def _full(folder: Path, written: int) -> OperationFailed:
    return OperationFailed(f"not enough free space in the spool folder {folder} for the archive stream "
                           f"({written >> 20} MiB received; a spool keeps {RESERVE >> 20} MiB free); nothing was "
                           "written to the target",
                           hint="point --spool-dir or RAGSTORE_SPOOL_DIR at a folder with room for the archive")


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _tell(fileno: int) -> int:
    try:
        return os.lseek(fileno, 0, os.SEEK_CUR)
    except OSError:
        return 0


def remove_leftovers(folder: Path) -> list[str]:
    """Remove spool files that SIGKILLed processes left in `folder` (a live process's are kept)."""
    from ragstore_cli.procs import pid_alive

    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        pid, _, _ = entry.name[len(SPOOL_PREFIX):].partition("-")
        if not entry.name.startswith(SPOOL_PREFIX) or not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid():
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            pass
    return removed
