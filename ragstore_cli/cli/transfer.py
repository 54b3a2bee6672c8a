"""`ragstore export`, `ragstore import` and `ragstore archive verify|inspect`: parse, call, render."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.archive.summary import describe, human_bytes
from ragstore_cli.cli.common import PROFILE, one_profile, run, settings, state
from ragstore_cli.cli.output import CliState, emit, info, table, workspace_label
from ragstore_cli.errors import RagstoreError, UsageError

archive_app = typer.Typer(help="Check and look inside .ragstore archives.", no_args_is_help=True)

ProgressFn = Callable[[str, int, int], None]


class _BytesRate(ProgressColumn):
    """MB/s of archive bytes, whatever unit the bar itself counts in."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.fields.get("bytes", 0) / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate / 1e6:6.1f} MB/s" if task.fields.get("bytes") else "", style="progress.data.speed")


def bars_wanted(cli: CliState) -> bool:
    return not cli.json and sys.stderr.isatty()


@contextmanager
def progress_bars(cli: CliState, totals: dict[str, int] | None = None,
                  byte_totals: dict[str, int] | None = None) -> Iterator[ProgressFn | None]:
    """Per-section bars on a TTY (records, MB/s, ETA); nothing under --json or in pipes.

    A section with a known record count (`totals`, or announced by the library through the
    callback's `total(key, records)`) is measured in records; else one with a known size
    (`byte_totals`) in bytes; else it counts without an ETA.
    """
    if not bars_wanted(cli):
        yield None
        return
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[unit]}"), _BytesRate(), TimeRemainingColumn())
    known = dict(totals or {})
    tasks: dict[str, TaskID] = {}
    by_records: dict[str, bool] = {}
    sent: dict[str, int] = {}
    with Progress(*columns, console=cli.err_console, transient=False) as bars:
        def task(key: str) -> TaskID:
            if key not in tasks:
                records = key in known
                size = None if records else (byte_totals or {}).get(key)
                by_records[key] = records or size is None
                tasks[key] = bars.add_task(key, total=known[key] if records else size, bytes=0,
                                           unit="rec" if by_records[key] else "bytes")
            return tasks[key]

        def update(key: str, records: int, nbytes: int) -> None:
            tid = task(key)
            sent[key] = sent.get(key, 0) + nbytes
            bars.update(tid, advance=records if by_records[key] else nbytes, bytes=sent[key])

        def total(key: str, records: int) -> None:
            known[key] = records
            if key in tasks and by_records[key]:
                bars.update(tasks[key], total=records)

        update.total = total  # type: ignore[attr-defined]
        yield update


def _import_totals(file: Path) -> tuple[dict[str, int], dict[str, int]] | None:
    """Records per section and stored bytes per `verify <section>`, from the manifest (None if unreadable:
    the import reports that itself)."""
    try:
        reader = ArchiveReader(file)
    except RagstoreError:
        return None
    return ({s.key: s.records for s in reader.manifest.sections},
            {f"verify {k}": v for k, v in _stored_totals(reader).items()})


def verify(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The .ragstore archive."),
) -> None:
    """Read the whole archive: checksums, counts, the shape of every record, vector dimension and finiteness.

    Exit 0 when it is sound, 1 (one-line reason) when it is not. Example: ragstore archive verify ws.ragstore
    """
    cli = state(ctx)
    reader = ArchiveReader(file)
    totals = _stored_totals(reader)
    with progress_bars(cli, byte_totals=totals) as bar:
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
) -> None:
    """Show the manifest and per-namespace statistics (reads only the manifest; use verify to check data).

    Example: ragstore archive inspect --json backup.ragstore
    """
    cli = state(ctx)
    manifest = ArchiveReader(file).manifest
    document = describe(manifest)

    def render(console) -> None:
        src = manifest.source
        emb = manifest.embedding
        console.print(f"[bold]{file}[/]  format v{manifest.format_version}, ragstore {manifest.ragstore_version}, "
                      f"created {manifest.created_at}")
        console.print(f"source: workspace {workspace_label(src.get('workspace'))}, backends "
                      + ", ".join(f"{k}={v}" for k, v in (src.get("backends") or {}).items()))
        console.print(f"embedding: model {emb.get('model')!r}, dimension {emb.get('dim')}")
        rows = [[r["section"], r["records"], r["members"], human_bytes(r["stored_bytes"]),
                 human_bytes(r["raw_bytes"]), r["compression_ratio"] or "",
                 f"{r.get('dtype')} × {r.get('dim')}" if r.get("dtype") else ""] for r in document["sections"]]
        console.print(table(None, ["section", "records", "members", "stored", "raw", "ratio", "vectors"], rows))
        for section, fields in (src.get("not_carried") or {}).items():
            console.print(f"[yellow]not carried by the source[/] {section}: {', '.join(fields)}")

    emit(cli, document, render)


LOCK_TIMEOUT = typer.Option(None, "--lock-timeout", min=0.0,
                            help="Seconds to wait for another ragstore holding the workspace (default "
                                 "RAGSTORE_LOCK_TIMEOUT); then exit 3 naming it.")


def export_cmd(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="The .ragstore file to write."),
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", help="Workspace to export (default: WORKSPACE)."),
    profile: Optional[str] = PROFILE,
    source: Optional[str] = typer.Option(None, "--from", hidden=True, help="Old spelling of --profile."),
    vectors: str = typer.Option("f32", "--vectors", help="Vector precision in the archive: f32 (lossless) or f16."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100000, help="Records per read batch."),
    lock_timeout: Optional[float] = LOCK_TIMEOUT,
    allow_empty: bool = typer.Option(False, "--allow-empty",
                                     help="Write an archive even when the workspace holds no record (else exit 2)."),
    force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists (never without)."),
) -> None:
    """Write one workspace into a verified, portable .ragstore archive (a consistent snapshot).

    Example: ragstore export --profile files --workspace ws1 -o ws1.ragstore
    """
    from ragstore_cli.transfer import export_workspace

    cli = state(ctx)
    dtype = {"f32": "float32", "f16": "float16"}.get(vectors)
    if dtype is None:
        raise UsageError(f"--vectors must be f32 or f16, not {vectors!r}")
    chosen = one_profile(profile, source, "--from")
    with progress_bars(cli) as bar:
        report = run(export_workspace(settings(ctx), output, workspace=workspace, profile=chosen,
                                      vector_dtype=dtype, progress=bar, batch_size=batch_size,
                                      lock_timeout=lock_timeout, allow_empty=allow_empty, overwrite=force))
    for warning in report.warnings:
        info(cli, f"[yellow]warning:[/] {warning}")
    document = report.to_dict()

    def render(console) -> None:
        total = sum(report.counts.values())
        console.print(f"[green]exported[/] workspace {workspace_label(report.workspace)} ({report.profile}) to {report.output}: "
                      f"{total} records, {human_bytes(report.bytes)} in {report.seconds:.1f} s")
        if report.embedding.get("dim"):
            console.print(f"embedding recorded: model {report.embedding.get('model')!r}, "
                          f"dimension {report.embedding['dim']} (the data's)")

    emit(cli, document, render)


def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The .ragstore archive."),
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", help="Target workspace (default: the archive's)."),
    profile: Optional[str] = PROFILE,
    target: Optional[str] = typer.Option(None, "--to", hidden=True, help="Old spelling of --profile."),
    if_exists: str = typer.Option("fail", "--if-exists", help="fail | replace | merge, when the workspace holds data."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Verify and check everything, write nothing."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted import of this archive."),
    embedding_model: Optional[str] = typer.Option(None, "--embedding-model", help="Relabel the vectors' model (never re-embeds)."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100000, help="Records per write batch."),
    lock_timeout: Optional[float] = LOCK_TIMEOUT,
) -> None:
    """Verify an archive, then load it into a workspace (atomic per backend, resumable).

    Example: ragstore import ws1.ragstore --profile neo4j,postgres --if-exists replace
    """
    from ragstore_cli.transfer import import_archive

    cli = state(ctx)
    chosen = one_profile(profile, target, "--to")
    records, stored = (_import_totals(file) if bars_wanted(cli) else None) or ({}, {})
    with progress_bars(cli, records, stored) as bar:
        report = run(import_archive(settings(ctx), file, workspace=workspace, profile=chosen, if_exists=if_exists,
                                    dry_run=dry_run, resume=resume, embedding_model=embedding_model, progress=bar,
                                    batch_size=batch_size, lock_timeout=lock_timeout))
    for warning in report.warnings:
        info(cli, f"[yellow]warning:[/] {warning}")
    document = report.to_dict()

    def render(console) -> None:
        total = sum(report.counts.values())
        verb = "would import" if report.dry_run else "imported"
        console.print(f"[green]{verb}[/] {total} records into workspace {workspace_label(report.workspace)} ({report.profile}, "
                      f"--if-exists {report.mode}) in {report.seconds:.1f} s")
        if report.dry_run:
            console.print("roles: " + ", ".join(part.replace("=", " → ") for part in report.profile.split(",")))
        if report.dry_run and report.existing_records:
            console.print(f"the target already holds {report.existing_records} records")
        if report.skipped:
            console.print(f"resumed: {len(report.skipped)} sections were already committed")

    emit(cli, document, render)


def _stored_totals(reader: ArchiveReader) -> dict[str, int]:
    totals: dict[str, int] = {}
    for m in reader.manifest.members:
        totals[m.section] = totals.get(m.section, 0) + m.size
    return totals


def register(root: typer.Typer) -> None:
    """Add `export`, `import` and the `archive` group to the root application."""
    root.command("export")(export_cmd)
    root.command("import")(import_cmd)
    archive_app.command("verify")(verify)
    archive_app.command("inspect")(inspect)
    root.add_typer(archive_app, name="archive")
