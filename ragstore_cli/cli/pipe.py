"""A reader that closes ragstore's stdout early (`ragstore … | head`) ends the command quietly.

What other CLIs do: git and gh are ended by SIGPIPE, which a shell shows as exit status 141 (128 +
13), with nothing printed. Python instead raises BrokenPipeError on the next write (or on the final
flush, printing "Exception ignored … BrokenPipeError" and exiting 120); Rich and click catch it and
exit 1, which reads as a failure. ragstore ends with status 141
and prints nothing, so `set -o pipefail` sees what it sees for git; the command's own clean-up has run
while the error unwound it (an export's partial file is removed as on any failure).
"""

from __future__ import annotations

import os
import select
import sys

from ragstore_cli.errors import EXIT_BROKEN_PIPE



def stdout_closed() -> bool:
    """Has every reader of stdout gone (a pipe whose read end is closed)? False when unknowable."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else -1
        if fd < 0:
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def leave_quietly() -> None:
    """Exit with status 141 and nothing printed; later writes and the final flush go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    raise SystemExit(EXIT_BROKEN_PIPE)


def stdout_identity() -> tuple[int, int] | None:
    """What stdout is now (device, inode), to tell later whether a library swapped /dev/null in."""
    try:
        info = os.fstat(sys.__stdout__.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def handled_elsewhere(started_on: tuple[int, int] | None) -> bool:
    """Did Rich (every table and help page) or typer's click meet the closed pipe and exit 1 itself?
    Rich puts /dev/null on stdout first; click wraps sys.stdout."""
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":
        return True
    now, devnull = stdout_identity(), os.stat(os.devnull)
    return started_on is not None and now != started_on and now == (devnull.st_dev, devnull.st_ino)


def flush_stdout() -> None:
    """Flush what stdout still buffers; a reader gone by now also ends the command quietly."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        leave_quietly()
    except (OSError, ValueError):  # a closed or odd stream: nothing more to say on it
        pass
