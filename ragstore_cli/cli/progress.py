"""Progress bars drawn from the engine's Observer: one bar per section, on a terminal only."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ragstore_cli.cli.output import CliState
from ragstore_cli.api import Observer


class _BytesRate(ProgressColumn):
    """MB/s of stored bytes, whatever unit the bar itself counts in."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.fields.get("bytes", 0) / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate / 1e6:6.1f} MB/s" if task.fields.get("bytes") else "", style="progress.data.speed")


def bars_wanted(cli: CliState) -> bool:
    return not cli.json and sys.stderr.isatty()


class BarObserver(Observer):
    """A bar per section: measured in records when the engine announced how many (so it has an ETA),
    else in stored bytes when it announced those (an archive's check), else counting without an ETA."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.records: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self.tasks: dict[str, TaskID] = {}
        self.by_records: dict[str, bool] = {}
        self.sent: dict[str, int] = {}

    def section(self, key: str, records: int | None = None, nbytes: int | None = None) -> None:
        if records is not None:
            self.records[key] = records
            if key in self.tasks and self.by_records[key]:
                self.bars.update(self.tasks[key], total=records)
        elif nbytes is not None:
            self.sizes[key] = nbytes

    def progress(self, key: str, records: int, nbytes: int) -> None:
        if key not in self.tasks:
            counted = key in self.records
            size = None if counted else self.sizes.get(key)
            self.by_records[key] = counted or size is None
            self.tasks[key] = self.bars.add_task(key, total=self.records[key] if counted else size, bytes=0,
                                                 unit="rec" if self.by_records[key] else "bytes")
        self.sent[key] = self.sent.get(key, 0) + nbytes
        self.bars.update(self.tasks[key], advance=records if self.by_records[key] else nbytes, bytes=self.sent[key])


@contextmanager
def progress_observer(cli: CliState) -> Iterator[Observer]:
    """The observer a command passes to the engine: bars on a TTY, nothing under --json or in pipes."""
    if not bars_wanted(cli):
        yield Observer()
        return
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[unit]}"), _BytesRate(), TimeRemainingColumn())
    with Progress(*columns, console=cli.err_console, transient=False) as bars:
        yield BarObserver(bars)
