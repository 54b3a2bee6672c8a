"""Rendering shared by every command: one JSON document under --json, Rich otherwise.

Rich decides on its own whether stdout is a terminal and honours NO_COLOR; everything printed
passes through `redact` so that no secret reaches the screen.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import sys
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from ragstore_cli.redact import redact


class ProgressMode(str, enum.Enum):
    """--progress: drawn on a terminal (auto), one JSON event per line on stderr (json), or none."""

    auto = "auto"
    json = "json"
    none = "none"


@dataclasses.dataclass
class CliState:
    """Global options, stored on the Click context object."""

    env_file: Path | None = None
    json: bool = False
    debug: bool = False
    stdout_taken: bool = False  # stdout carries data (`export -o -`): summaries and errors go to stderr
    quiet: bool = False  # no progress drawn (cli/progress.py)
    progress: str = "auto"  # auto | json | none

    @property
    def console(self) -> Console:
        return Console(highlight=False, soft_wrap=True)

    @property
    def err_console(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True)


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def to_json(document: Any) -> str:
    return redact(json.dumps(document, default=_default, ensure_ascii=False, indent=2))


def emit(state: CliState, document: Any, render: Callable[[Console], None] | None = None) -> None:
    """Print `document` as JSON under --json, else call `render` with a console (or print it)."""
    if state.json:
        out = sys.stderr if state.stdout_taken else sys.stdout
        out.write(to_json(document) + "\n")
        out.flush()
        return
    console = state.err_console if state.stdout_taken else state.console
    if render is not None:
        render(console)
    else:
        console.print(redact(str(document)))


def table(title: str | None, columns: list[str], rows: list[list[Any]], *, whole: int = 0) -> Table:
    """A Rich table whose cells are redacted strings; boxes and styles only on a terminal.

    The first `whole` columns (names: a namespace, a lock key) are never folded mid-word; on a
    narrow terminal the others wrap instead."""
    header = any(columns)  # a key/value table has no header line
    if sys.stdout.isatty():
        tbl = Table(title=title, show_lines=False, header_style="bold", show_header=header)
    else:  # pipes and files get plain aligned columns, easy to grep
        tbl = Table(title=title, box=None, show_edge=False, header_style="", title_style="", pad_edge=False,
                    show_header=header)
    for number, column in enumerate(columns):
        tbl.add_column(column, overflow="fold", no_wrap=number < whole)
    for row in rows:
        tbl.add_row(*[redact("" if cell is None else str(cell)) for cell in row])
    return tbl


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def workspace_label(name: str | None) -> str:
    """`'team_a'`, or `(default)` for the default workspace "" (never a bare `''`)."""
    return "(default)" if not name else repr(name)


def info(state: CliState, message: str) -> None:
    """A progress/status line for people, on stderr (never pollutes --json stdout)."""
    if not state.json:
        state.err_console.print(redact(message))
