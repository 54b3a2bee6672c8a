"""Progress drawn from the engine's Observer: one row per phase, whatever the number of sections.

A run goes through a few phases (engine/observer.py: verify, read, load, index, commit, copy), so
no more rows than those are drawn, on any terminal: the running phase names its current section, shows
its amount in its unit (records, human-readable bytes, indexes) against a total only where the
engine knows one — a count that outgrows its total drops the total rather than show 8/4 — with an
ETA only then; a phase without a total (an index build, the commit) shows its elapsed time. A
finished phase collapses to a one-line summary (✓, what went through, how long); one a failure
stopped is marked ✗, so no half-finished bar is left behind.

Drawn only when stdout and stderr are both terminals (`--progress auto`); `--quiet` or `--progress
none` draws nothing; `--progress json` writes one JSON object per event on stderr instead
(docs/progress.md holds the schema).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator

from rich.progress import BarColumn, Progress, ProgressColumn, Task
from rich.spinner import Spinner
from rich.table import Column
from rich.text import Text

from ragstore_cli.cli.output import CliState, human_bytes
from ragstore_cli.api import Observer
from ragstore_cli.errors import UsageError

TIMED = ("records", "bytes")  # units an ETA and a rate make sense for


@dataclass
class Tally:
    """One phase as far as it went: amounts in its unit, the section it is at, the time it ran."""

    name: str
    unit: str
    total: int | None
    done: int = 0
    nbytes: int = 0
    section: str = ""
    state: str = "running"  # running | done | stopped
    spent: float = 0.0  # seconds of earlier runs of the phase (an index rebuilt per vector section)
    since: float | None = None

    def elapsed(self, now: float | None = None) -> float:
        running = (now or time.monotonic()) - self.since if self.since is not None else 0.0
        return self.spent + running

    def eta(self) -> float | None:
        """Seconds left at the rate so far: only when the total is known and the unit is timed."""
        if self.state != "running" or self.total is None or self.unit not in TIMED or self.done <= 0:
            return None
        spent = self.elapsed()
        return (self.total - self.done) * spent / self.done if spent > 0 else None

    def amount(self) -> str:
        """`1,234/5,000 records`, `1.2 MB/4.5 MB`, `2 indexes`: a total only while it runs (and only a
        true one); a finished phase counted in records adds the archive bytes it read or wrote."""
        if not self.unit:
            return ""
        show = human_bytes if self.unit == "bytes" else (lambda n: f"{n:,}")
        unit = "" if self.unit == "bytes" else f" {self.unit}"
        text = show(self.done)
        if self.state == "running" and self.total is not None:
            text += f"/{show(self.total)}"
        if self.nbytes and self.unit != "bytes" and self.state != "running":  # the summary only: the bar needs the room
            return f"{text}{unit} · {human_bytes(self.nbytes)}"
        return text + unit


class PhaseTracker(Observer):
    """The phases of a run, tallied (the innermost running phase takes the sections and progress);
    subclasses render each change."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.running: list[str] = []

    def phase(self, name: str, total: int | None = None, unit: str = "records") -> None:
        tally = self.tallies.get(name)
        if tally is None:
            tally = self.tallies[name] = Tally(name, unit, total)
        else:  # started again (an index rebuilt for the next vector section): its totals add up
            tally.spent, tally.section = tally.elapsed(), ""
            tally.total = None if tally.total is None or total is None else tally.total + total
        tally.state, tally.since = "running", time.monotonic()
        self.running = [n for n in self.running if n != name] + [name]
        self.changed("phase", tally)

    def phase_done(self, name: str) -> None:
        self._end(name, "done")

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        tally = self._current()
        if tally is not None:
            tally.section = key.removeprefix(f"{tally.name} ")  # `verify kv/full_docs`: the phase is the row's
            self.changed("section", tally, records if tally.unit != "bytes" else nbytes)

    def progress(self, key: str, records: int, nbytes: int) -> None:
        tally = self._current()
        if tally is None:
            return
        tally.nbytes += nbytes if tally.unit != "bytes" else 0
        step = nbytes if tally.unit == "bytes" else records
        if step:
            tally.done += step
            if tally.total is not None and tally.done > tally.total:
                tally.total = None  # a wrong total is worse than none
            self.changed("progress", tally)

    def close(self, failed: bool) -> None:
        """The run ended: a phase still running was stopped by the failure (or, after a success, is over)."""
        for name in list(reversed(self.running)):
            self._end(name, "stopped" if failed else "done")

    def _current(self) -> Tally | None:
        return self.tallies[self.running[-1]] if self.running else None

    def _end(self, name: str, state: str) -> None:
        tally = self.tallies.get(name)
        if tally is None or tally.state != "running":
            return
        tally.spent, tally.since, tally.state, tally.section = tally.elapsed(), None, state, ""
        self.running.remove(name)
        self.changed("phase_done" if state == "done" else "phase_stopped", tally)

    def changed(self, event: str, tally: Tally, section_total: int | None = None) -> None:
        """Render one change (nothing here)."""


# ---------------------------------------------------------------------------------- Rich rows
class _Mark(ProgressColumn):
    """A spinner while the phase runs, ✓ once done, ✗ when a failure stopped it."""

    def __init__(self) -> None:
        super().__init__(Column(no_wrap=True))
        self.spinner = Spinner("dots", style="progress.spinner")

    def render(self, task: Task) -> Text:
        state = task.fields["tally"].state
        if state == "done":
            return Text("✓", style="green")
        if state == "stopped":
            return Text("✗", style="red")
        return self.spinner.render(task.get_time())  # type: ignore[return-value]


class _Name(ProgressColumn):
    """The phase and its current section; once it ended, its one-line summary."""

    def render(self, task: Task) -> Text:
        tally: Tally = task.fields["tally"]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{tally.name:<7}", style="bold")
        if tally.state != "running":
            what = tally.amount()
            if tally.state == "stopped":
                text.append(" stopped" + (f" at {what}" if what else "") + " after ", style="red")
            else:
                text.append(f" {what or 'done'} in ")
            text.append(_clock(tally.elapsed()), style="progress.elapsed")
        elif tally.section:
            section = tally.section if len(tally.section) <= 22 else tally.section[:21] + "…"
            text.append(f" {section:<22}", style="dim")
        return text


class _Bar(BarColumn):
    """The bar of a running phase counted in records or bytes (pulsing without a total); none else."""

    def render(self, task: Task):  # type: ignore[override]
        tally: Tally = task.fields["tally"]
        if tally.state != "running" or tally.unit not in TIMED:
            return Text("")
        task.total, task.completed = tally.total, tally.done  # what the bar draws is the tally
        return super().render(task)


class _Amount(ProgressColumn):
    def render(self, task: Task) -> Text:
        tally: Tally = task.fields["tally"]
        if tally.state != "running":
            return Text("")
        return Text(tally.amount(), style="progress.download", no_wrap=True)


class _Time(ProgressColumn):
    """Elapsed time, and the ETA where one is known."""

    def render(self, task: Task) -> Text:
        tally: Tally = task.fields["tally"]
        if tally.state != "running":
            return Text("")
        text = Text(_clock(tally.elapsed()), style="progress.elapsed", no_wrap=True)
        eta = tally.eta()
        if eta is not None:
            text.append(f" eta {_clock(eta)}", style="progress.remaining")
        return text


def _clock(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class BarObserver(PhaseTracker):
    """One Rich row per phase (rows are Rich tasks carrying their Tally)."""

    def __init__(self, bars: Progress) -> None:
        super().__init__()
        self.bars = bars
        self.rows: set[str] = set()

    def changed(self, event: str, tally: Tally, section_total: int | None = None) -> None:
        if tally.name not in self.rows:
            self.rows.add(tally.name)
            self.bars.add_task(tally.name, total=None, tally=tally)
        if event != "progress":
            self.bars.refresh()


# ---------------------------------------------------------------------------------- JSON lines
class JsonEvents(PhaseTracker):
    """One JSON object per line on `stream` for every phase, section and progress event."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self.lock = threading.Lock()  # an archive's bytes are counted in a reader thread

    def changed(self, event: str, tally: Tally, section_total: int | None = None) -> None:
        line = {"event": event, "phase": tally.name, "section": tally.section or None, "done": tally.done,
                "total": tally.total, "unit": tally.unit or None, "elapsed": round(tally.elapsed(), 3)}
        if event == "section":
            line["section_total"] = section_total
        if tally.nbytes:
            line["bytes"] = tally.nbytes
        with self.lock:
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()


def progress_mode(cli: CliState) -> str:
    """bars | json | none: --progress, else bars only when stdout and stderr are terminals and no
    --json or --quiet asks for silence."""
    if cli.quiet and cli.progress == "json":
        raise UsageError("--quiet and --progress json contradict each other: give one of them")
    if cli.progress == "json":
        return "json"
    if cli.progress == "none" or cli.quiet or cli.json:
        return "none"
    return "bars" if sys.stdout.isatty() and sys.stderr.isatty() else "none"


@contextmanager
def progress_observer(cli: CliState) -> Iterator[Observer]:
    """The observer a command passes to the engine (see the module docstring)."""
    mode = progress_mode(cli)
    if mode == "none":
        yield Observer()
        return
    if mode == "json":
        events = JsonEvents(sys.stderr)
        with _closing(events):
            yield events
        return
    # On a narrow terminal Rich narrows the columns that may wrap first: the name and the bar (their
    # text never wraps, it ends in …); the amounts and times keep their width, a number is never cut.
    columns = [_Mark(), _Name(Column(overflow="ellipsis")), _Bar(bar_width=None, table_column=Column(ratio=1)),
               _Amount(Column(no_wrap=True)), _Time(Column(no_wrap=True))]
    with Progress(*columns, console=cli.err_console, transient=False, expand=True) as bars:
        rows = BarObserver(bars)
        with _closing(rows):
            yield rows


@contextmanager
def _closing(tracker: PhaseTracker) -> Iterator[None]:
    try:
        yield
    except BaseException:
        tracker.close(failed=True)
        raise
    tracker.close(failed=False)
