"""`ragstore export`, `import`, `transfer` and `archive verify|inspect`: parse, call the engine, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import PROFILE, one_profile, run, settings, state
from ragstore_cli.cli.output import CliState, emit, human_bytes, info, table, workspace_label
from ragstore_cli.cli.progress import progress_observer
from ragstore_cli.errors import UsageError

archive_app = typer.Typer(help="Check and look inside .ragstore archives.", no_args_is_help=True)


STREAM = "-"
SPOOL_DIR = typer.Option(None, "--spool-dir", envvar="RAGSTORE_SPOOL_DIR", metavar="DIR",
                         help="Where an archive on stdin/stdout (-) is held while it is checked or assembled "
                              "(default: the system's temporary folder).")
ARCHIVE_IN = typer.Argument(..., help="The .ragstore archive, or - for stdin.")


def verify(
    ctx: typer.Context,
    file: Path = ARCHIVE_IN,
    spool_dir: Optional[Path] = SPOOL_DIR,
) -> None:
    """Read the whole archive: checksums, counts, the shape of every record, vector dimension and finiteness.

    Exit 0 when it is sound, 1 (one-line reason) when it is not. Example: ragstore archive verify ws.ragstore
    """
    cli = state(ctx)
    with progress_observer(cli) as observer:
        checked = api.sync.archive_verify(_archive_in(ctx, file), observer=observer, spool_dir=spool_dir)
    document = checked.to_dict()

    def render(console) -> None:
        console.print(f"[green]ok[/] {_shown(file)}: {checked.records} records in {len(checked.stats)} sections, "
                      f"{human_bytes(document['total_stored_bytes'])}; every checksum and count matches")

    emit(cli, document, render)


def inspect(
    ctx: typer.Context,
    file: Path = ARCHIVE_IN,
    spool_dir: Optional[Path] = SPOOL_DIR,
) -> None:
    """Show the manifest and per-namespace statistics (reads only the manifest; use verify to check data).

    Example: ragstore archive inspect --json backup.ragstore
    """
    cli = state(ctx)
    manifest = api.sync.archive_inspect(_archive_in(ctx, file), spool_dir=spool_dir)
    document = api.describe_archive(manifest)

    def render(console) -> None:
        src = manifest.source
        emb = manifest.embedding
        console.print(f"[bold]{_shown(file)}[/]  format v{manifest.format_version}, ragstore {manifest.ragstore_version}, "
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


IF_EXISTS = typer.Option("fail", "--if-exists", help="fail | replace | merge, when the target workspace holds data.")
DRY_RUN = typer.Option(False, "--dry-run", help="Run every check that can refuse, write nothing.")
EMBEDDING_MODEL = typer.Option(None, "--embedding-model", help="Relabel the vectors' model (never re-embeds).")
BATCH_SIZE = typer.Option(1000, "--batch-size", min=1, max=100000, help="Records per batch.")
LOCK_TIMEOUT = typer.Option(None, "--lock-timeout", min=0.0,
                            help="Seconds to wait for another ragstore holding the workspace (default "
                                 "RAGSTORE_LOCK_TIMEOUT); then exit 3 naming it.")


def export_cmd(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="The .ragstore file to write, or - for stdout."),
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", help="Workspace to export (default: WORKSPACE)."),
    profile: Optional[str] = PROFILE,
    source: Optional[str] = typer.Option(None, "--from", hidden=True, help="Old spelling of --profile."),
    vectors: str = typer.Option("f32", "--vectors", help="Vector precision in the archive: f32 (lossless) or f16."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100000, help="Records per read batch."),
    lock_timeout: Optional[float] = LOCK_TIMEOUT,
    allow_empty: bool = typer.Option(False, "--allow-empty",
                                     help="Write an archive even when the workspace holds no record (else exit 2)."),
    force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists (never without)."),
    spool_dir: Optional[Path] = SPOOL_DIR,
) -> None:
    """Write one workspace into a verified, portable .ragstore archive (a consistent snapshot).

    -o - writes it to stdout (a pipe or a file, never a terminal); messages go to stderr then.
    Example: ragstore export --profile files --workspace ws1 -o ws1.ragstore
    """
    cli = state(ctx)
    dtype = {"f32": "float32", "f16": "float16"}.get(vectors)
    if dtype is None:
        raise UsageError(f"--vectors must be f32 or f16, not {vectors!r}")
    with progress_observer(cli) as observer:
        report = run(api.export(_archive_out(cli, output), workspace=workspace,
                                profile=one_profile(profile, source, "--from"), vector_dtype=dtype,
                                batch_size=batch_size, lock_timeout=lock_timeout, allow_empty=allow_empty,
                                overwrite=force, spool_dir=spool_dir, observer=observer, settings=settings(ctx)))
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
    file: Path = ARCHIVE_IN,
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", help="Target workspace (default: the archive's)."),
    profile: Optional[str] = PROFILE,
    target: Optional[str] = typer.Option(None, "--to", hidden=True, help="Old spelling of --profile."),
    if_exists: str = IF_EXISTS,
    dry_run: bool = DRY_RUN,
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted import of this archive."),
    embedding_model: Optional[str] = EMBEDDING_MODEL,
    batch_size: int = BATCH_SIZE,
    lock_timeout: Optional[float] = LOCK_TIMEOUT,
    spool_dir: Optional[Path] = SPOOL_DIR,
) -> None:
    """Verify an archive, then load it into a workspace (atomic per backend, resumable).

    An archive on stdin (-) is held in a spool file while it is verified, removed however the import ends.
    Example: ragstore import ws1.ragstore --profile neo4j,postgres --if-exists replace
    """
    cli = state(ctx)
    with progress_observer(cli) as observer:
        report = run(api.import_archive(_archive_in(ctx, file), workspace=workspace,
                                        profile=one_profile(profile, target, "--to"), if_exists=if_exists,
                                        dry_run=dry_run, resume=resume, embedding_model=embedding_model,
                                        batch_size=batch_size, lock_timeout=lock_timeout, spool_dir=spool_dir,
                                        observer=observer, settings=settings(ctx)))
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


def transfer_cmd(
    ctx: typer.Context,
    source: str = typer.Option(..., "--from", metavar="PROFILE", help="Backends the workspace is read from."),
    target: str = typer.Option(..., "--to", metavar="PROFILE", help="Backends it is written to."),
    workspace: str = typer.Option(..., "--workspace", "-w", help='The workspace ("" for the default).'),
    target_workspace: Optional[str] = typer.Option(None, "--target-workspace",
                                                   help="Name it has in the target (default: the same)."),
    if_exists: str = IF_EXISTS,
    dry_run: bool = DRY_RUN,
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted transfer."),
    embedding_model: Optional[str] = EMBEDDING_MODEL,
    batch_size: int = BATCH_SIZE,
    lock_timeout: Optional[float] = LOCK_TIMEOUT,
) -> None:
    """Move a workspace directly between backends, streaming, with no archive on disk (import's checks,
    atomic per backend or resumable; the target is read back and compared before it commits).

    Example: ragstore transfer --from files --to neo4j,postgres --workspace ws1
    """
    cli = state(ctx)
    with progress_observer(cli) as observer:
        report = run(api.transfer(source=source, target=target, workspace=workspace,
                                  target_workspace=target_workspace, if_exists=if_exists,
                                  dry_run=dry_run, resume=resume, embedding_model=embedding_model,
                                  batch_size=batch_size, lock_timeout=lock_timeout, observer=observer,
                                  settings=settings(ctx)))
    for warning in report.warnings:
        info(cli, f"[yellow]warning:[/] {warning}")

    def render(console) -> None:
        total = sum(report.counts.values())
        verb = "would transfer" if report.dry_run else "transferred"
        console.print(f"[green]{verb}[/] {total} records of workspace {workspace_label(report.workspace)} "
                      f"({report.source}) to {workspace_label(report.target_workspace)} ({report.profile}, "
                      f"--if-exists {report.mode}) in {report.seconds:.1f} s")
        if report.verified:
            console.print(f"read back from the target: {sum(report.verified.values())} records in "
                          f"{len(report.verified)} sections, every count and record id as in the source")
        if report.dry_run and report.existing_records:
            console.print(f"the target already holds {report.existing_records} records")
        if report.skipped:
            console.print(f"resumed: {len(report.skipped)} sections were already committed")
        for section, fields in report.dropped_fields.items():
            console.print(f"[yellow]field loss:[/] {section}: the target cannot store {', '.join(fields)}")

    emit(cli, report.to_dict(), render)


def _archive_out(cli: CliState, output: Path) -> Path | BinaryIO:
    """The file to export to, or stdout for `-o -`: never a terminal, and then nothing else goes there."""
    if str(output) != STREAM:
        return output
    if sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal: redirect stdout (-o - > FILE, -o - | ssh …) "
                         "or name a file with -o")
    cli.stdout_taken = True
    sys.stdout.flush()
    # unbuffered: nothing of the archive is left to flush at exit when its reader has gone
    return open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)


def _archive_in(ctx: typer.Context, file: Path) -> Path | BinaryIO:
    """The archive file, or stdin for `-`: never a terminal (nobody types an archive)."""
    if str(file) != STREAM:
        return file
    if sys.stdin.isatty():
        raise UsageError(f"stdin is a terminal: pipe an archive in (… | {ctx.command_path} -) or name a file")
    return sys.stdin.buffer


def _shown(file: Path) -> str:
    return "stdin" if str(file) == STREAM else str(file)


def register(root: typer.Typer) -> None:
    """Add `export`, `import` and the `archive` group to the root application."""
    root.command("export")(export_cmd)
    root.command("import")(import_cmd)
    root.command("transfer")(transfer_cmd)
    archive_app.command("verify")(verify)
    archive_app.command("inspect")(inspect)
    root.add_typer(archive_app, name="archive")
