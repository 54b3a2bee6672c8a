"""What the engine tells whoever runs it, as it runs: an explicit object the caller passes in.

The CLI's observer draws progress from it (cli/progress.py); a library caller may log, or stop
nothing at all (this base class does nothing). A run goes through **phases**, each announced by
`phase(name, total, unit)` and closed by `phase_done(name)`:

| phase    | what runs                                                     | unit      | total        |
|----------|---------------------------------------------------------------|-----------|--------------|
| `verify` | an archive checked whole before an import (stored bytes), or  | `bytes`   | known        |
|          | a transfer's target read back and compared (records)          | `records` | known        |
| `read`   | the preflight's one pass over the sections its checks want    | `records` | known        |
| `load`   | the section loop: every record read, written, committed       | `records` | when counted |
| `index`  | a backend rebuilding indexes it dropped for the load          | `indexes` | known        |
| `commit` | the target's commit (a transaction, a swap, a manifest)       | —         | none         |
| `copy`   | a backend copying or renaming a workspace natively            | —         | none         |

A phase may start inside another (a PostgreSQL index is rebuilt while its section commits, in the
load): `section` and `progress` belong to the innermost running phase. `section(key, records,
bytes)` names the section it moves on to; `progress(key, records, bytes)` says how much more of it
went through (a phase counted in bytes advances by `bytes`, any other by `records`). In the load a
key is the section's own (`kv/full_docs`), as it always was; in any other phase it starts with the
phase's name (`verify kv/full_docs`, `read vectors/chunks`, `index <index>`, `copy <backend>`), so
a caller that counts loaded records by section key sees the load only.

`point(name)` marks the named points of a run — `batch:<section>:<n>` before batch n of a section is
written, `commit:<section>` after a section is committed, `swap:before` / `swap:during` around a
staged files target's swap — where the fault tests stop a child process (they wrap this method from
outside: tests/faults/faultwrap.py).
"""

from __future__ import annotations

from typing import Callable

#: The phases a run can go through (docs/progress.md).
PHASES = ("verify", "read", "load", "index", "commit", "copy")


class Observer:
    """Every method is a no-op; override what you need."""

    def phase(self, name: str, total: int | None = None, unit: str = "records") -> None:
        """Phase `name` starts: `total` units of `unit` when known (None: it shows elapsed time only)."""

    def phase_done(self, name: str) -> None:
        """Phase `name` ended: everything it announced went through."""

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        """The running phase moves on to section `key`: how many records (or stored bytes) it holds, if known."""

    def progress(self, key: str, records: int, nbytes: int) -> None:
        """`records` more records (and `nbytes` more stored bytes) of section `key` went through."""

    def point(self, name: str) -> None:
        """A named point of the run was reached."""


NOTHING = Observer()


class Callbacks(Observer):
    """An Observer made of plain callbacks, for scripts: `Callbacks(progress=print)`."""

    def __init__(self, progress: Callable[[str, int, int], None] | None = None,
                 section: Callable[[str, int | None, int | None], None] | None = None,
                 phase: Callable[[str, int | None, str], None] | None = None) -> None:
        self._progress, self._section, self._phase = progress, section, phase

    def phase(self, name: str, total: int | None = None, unit: str = "records") -> None:
        if self._phase is not None:
            self._phase(name, total, unit)

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        if self._section is not None:
            self._section(key, records, nbytes)

    def progress(self, key: str, records: int, nbytes: int) -> None:
        if self._progress is not None:
            self._progress(key, records, nbytes)
