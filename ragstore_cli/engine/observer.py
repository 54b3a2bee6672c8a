"""What the engine tells whoever runs it, as it runs: an explicit object the caller passes in.

The CLI's observer draws progress bars from it (cli/progress.py); a library caller may log, or stop
nothing at all (this base class does nothing). `point(name)` marks the named points of a run —
`batch:<section>:<n>` before batch n of a section is written, `commit:<section>` after a section is
committed, `swap:before` / `swap:during` around a staged files target's swap — where the fault tests
stop a child process (they wrap this method from outside: tests/faults/faultwrap.py).
"""

from __future__ import annotations

from typing import Callable


class Observer:
    """Every method is a no-op; override what you need."""

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        """Section `key` starts: how many records (or stored bytes, for an archive check) it holds, if known."""

    def progress(self, key: str, records: int, nbytes: int) -> None:
        """`records` more records (and `nbytes` more stored bytes) of section `key` went through."""

    def point(self, name: str) -> None:
        """A named point of the run was reached."""


NOTHING = Observer()


class Callbacks(Observer):
    """An Observer made of plain callbacks, for scripts: `Callbacks(progress=print)`."""

    def __init__(self, progress: Callable[[str, int, int], None] | None = None,
                 section: Callable[[str, int | None, int | None], None] | None = None) -> None:
        self._progress, self._section = progress, section

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        if self._section is not None:
            self._section(key, records, nbytes)

    def progress(self, key: str, records: int, nbytes: int) -> None:
        if self._progress is not None:
            self._progress(key, records, nbytes)
