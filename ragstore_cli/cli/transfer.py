"""`ragstore export`, `ragstore import` and `ragstore archive verify|inspect`: parse, call, render."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import typer
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.archive.summary import describe, human_bytes
from ragstore_cli.cli.common import state
from ragstore_cli.cli.output import CliState, emit, table

archive_app = typer.Typer(help="Check and look inside .ragstore archives.", no_args_is_help=True)

ProgressFn = Callable[[str, int, int], None]


@contextmanager
def progress_bars(cli: CliState, totals: dict[str, int] | None = None) -> Iterator[ProgressFn | None]:
    """Per-section progress bars (records or bytes, rate, ETA) on a TTY; nothing under --json or in pipes."""
    if cli.json or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description:<22}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TextColumn("{task.fields[records]} rec"), TimeRemainingColumn())
    tasks: dict[str, TaskID] = {}
    counts: dict[str, int] = {}
    with Progress(*columns, console=cli.err_console, transient=False) as bars:
        def update(key: str, records: int, nbytes: int) -> None:
            if key not in tasks:
                tasks[key] = bars.add_task(key, total=(totals or {}).get(key), records=0)
            counts[key] = counts.get(key, 0) + records
            bars.update(tasks[key], advance=nbytes, records=counts[key])
        yield update


def _local_json(ctx: typer.Context, json_output: bool) -> CliState:
    cli = state(ctx)
    if json_output:
        cli.json = True
    return cli


def verify(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The .ragstore archive."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Read the whole archive: checksums, counts, the shape of every record, vector dimension and finiteness.

    Exit 0 when it is sound, 1 (one-line reason) when it is not. Example: ragstore archive verify ws.ragstore
    """
    cli = _local_json(ctx, json_output)
    reader = ArchiveReader(file)
    totals = _stored_totals(reader)
    with progress_bars(cli, totals) as bar:
        reader._progress = bar
        stats = reader.verify()
    document = {"ok": True, "file": str(file), **describe(reader.manifest, stats)}

    def render(console) -> None:
        total = sum(s.records for s in stats.values())
        console.print(f"[green]ok[/] {file}: {total} records in {len(stats)} sections, "
                      f"{human_bytes(document['total_stored_bytes'])}; every checksum and count matches")

    emit(cli, document, render)


def inspect(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The .ragstore archive."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the manifest and per-namespace statistics (reads only the manifest; use verify to check data)."""
    cli = _local_json(ctx, json_output)
    manifest = ArchiveReader(file).manifest
    document = describe(manifest)

    def render(console) -> None:
        src = manifest.source
        emb = manifest.embedding
        console.print(f"[bold]{file}[/]  format v{manifest.format_version}, ragstore {manifest.ragstore_version}, "
                      f"created {manifest.created_at}")
        console.print(f"source: workspace {src.get('workspace')!r}, backends "
                      + ", ".join(f"{k}={v}" for k, v in (src.get("backends") or {}).items()))
        console.print(f"embedding: model {emb.get('model')!r}, dimension {emb.get('dim')}")
        rows = [[r["section"], r["records"], r["members"], human_bytes(r["stored_bytes"]),
                 human_bytes(r["raw_bytes"]), r["compression_ratio"] or "",
                 f"{r.get('dtype')} × {r.get('dim')}" if r.get("dtype") else ""] for r in document["sections"]]
        console.print(table(None, ["section", "records", "members", "stored", "raw", "ratio", "vectors"], rows))
        for section, fields in (src.get("not_carried") or {}).items():
            console.print(f"[yellow]not carried by the source[/] {section}: {', '.join(fields)}")

    emit(cli, document, render)


def _stored_totals(reader: ArchiveReader) -> dict[str, int]:
    totals: dict[str, int] = {}
    for m in reader.manifest.members:
        totals[m.section] = totals.get(m.section, 0) + m.size
    return totals


def register(root: typer.Typer) -> None:
    """Add `export`, `import` and the `archive` group to the root application."""
    archive_app.command("verify")(verify)
    archive_app.command("inspect")(inspect)
    root.add_typer(archive_app, name="archive")
