"""`ragstore vectors`: stats, compress/decompress, verify and export of embeddings (library: ragstore_cli.vectors)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ragstore_cli.cli.common import run, settings, state
from ragstore_cli.cli.output import emit, info, table
from ragstore_cli.errors import EXIT_FAILED, UsageError
from ragstore_cli.workspace import files_dir

vectors_app = typer.Typer(help="Inspect, compress, verify and export embeddings (NanoVectorDB files, .npy).",
                          no_args_is_help=True)


class OnErrorChoice(str, Enum):
    stop = "stop"
    skip = "skip"


ON_ERROR_HELP = "A record whose JSON or `vector` payload is corrupt: stop with its id, or skip it and report it."


@vectors_app.command("stats")
def stats_cmd(
    ctx: typer.Context,
    path: Optional[Path] = typer.Argument(None, help="A NanoVectorDB file (vdb_<namespace>.json)."),
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w",
                                            help='Every vdb_*.json of this workspace under WORKING_DIR ("" for the default workspace, '
                                                 'WORKING_DIR itself; default: WORKSPACE).'),
    on_error: OnErrorChoice = typer.Option(OnErrorChoice.skip, "--on-error", help=ON_ERROR_HELP),
    embedding_dim: Optional[int] = typer.Option(None, "--embedding-dim", help="Fail if the file's dimension differs."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when anything is wrong (for CI)."),
) -> None:
    """What a NanoVectorDB file holds and what is wrong with it; streams, never writes.

    Count, dimension, dtype, norms, NaN/Inf/zero vectors, duplicate ids, records without `vector`, matrix
    rows that disagree with their record's `vector`, corrupt records, bytes per vector of each part.

    Example: ragstore vectors stats rag_storage/vdb_chunks.json
    """
    from ragstore_cli.vectors.stats import nano_stats, workspace_files

    cli = state(ctx)
    if path is not None and workspace is not None:
        raise UsageError("give either a PATH or --workspace, not both")
    if path is not None:
        reports = [nano_stats(path, on_error=on_error.value, expected_dim=embedding_dim)]
        document: Any = reports[0]
    else:
        resolved = settings(ctx)
        workspace = (resolved.lightrag.workspace or "") if workspace is None else workspace
        folder = files_dir(resolved.working_dir, workspace)
        files = workspace_files(folder)
        if not files:
            raise UsageError(f"no vdb_*.json files in {folder}")
        reports = [nano_stats(p, on_error=on_error.value, expected_dim=embedding_dim) for p in files]
        document = {"workspace": workspace, "directory": str(folder), "files": reports,
                    "ok": all(r["ok"] for r in reports)}
    emit(cli, document, lambda console: [_render_stats(console, r) for r in reports])
    if check and not all(r["ok"] for r in reports):
        raise typer.Exit(EXIT_FAILED)


def _render_stats(console: Any, r: dict[str, Any]) -> None:
    v, m = r["vectors"], r["matrix"]
    norms = v["norms"] if v["norms"]["min"] is not None else m["norms"]
    fmt = lambda x: "-" if x is None else f"{x:.4g}"  # noqa: E731
    rows = [
        ["records / matrix rows", f"{r['count']} / {r['matrix_rows']}"],
        ["dimension", r["embedding_dim"]],
        ["norms min / mean / max", " / ".join(fmt(norms[k]) for k in ("min", "mean", "max"))],
        ["NaN / Inf / zero vectors", f"{v['nan_vectors']} / {v['inf_vectors']} / {v['zero_vectors']}"],
        ["records without `vector`", r["records_without_vector"]["count"]],
        ["duplicate ids", _with_samples(r["duplicate_ids"])],
        ["matrix rows disagreeing", _with_samples(r["matrix_disagreements"])],
        ["bad records", r["bad_records"]],
        ["file size", f"{r['file_bytes']:,} B ({r['bytes_per_vector']:,} B/vector)"],
    ]
    rows += [[f"  {name}", f"{p['bytes']:,} B ({p['bytes_per_vector']:,} B/vector)"] for name, p in r["parts"].items()]
    console.print(table(r["path"], ["", ""], rows))
    for problem in r["problems"]:
        console.print(f"[yellow]problem:[/] {problem}")
    console.print("[green]ok[/]" if r["ok"] else "[red]problems found[/]")


def _with_samples(d: dict[str, Any]) -> str:
    return f"{d['count']}" + (f" (e.g. {', '.join(d['samples'][:3])})" if d["samples"] else "")


@vectors_app.command("compress")
def compress_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A NanoVectorDB file (vdb_<namespace>.json) or a .ragstore archive."),
    codec: Optional[str] = typer.Option(None, "--codec", help="NanoVectorDB: compact (default). "
                                        "Archive: f16 (default) or f32."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of replacing PATH."),
    on_error: OnErrorChoice = typer.Option(OnErrorChoice.stop, "--on-error", help=ON_ERROR_HELP),
    allow_chunks: bool = typer.Option(False, "--allow-chunks", help="Compact vdb_chunks.json too (see above)."),
) -> None:
    """Shrink the vectors of a NanoVectorDB file or an archive, rewriting it atomically.

    NanoVectorDB (--codec compact): drops the per-record float16 `vector` copies, about a third of the
    file. LightRAG loads the result (tested with lightrag-hku 1.5.7 / nano-vectordb 0.0.4.3; releases
    from before the per-record field wrote this very shape) and queries the float32 matrix, kept bit
    for bit. Traded: 1.5.x's get_vectors_by_ids skips records without `vector`, so the default chunk
    picker (KG_CHUNK_PICK_METHOD=VECTOR) falls back to WEIGHT with a compacted vdb_chunks.json: that file
    needs --allow-chunks. The raw norms are kept so `decompress` restores the vectors. Stop LightRAG first:
    it never notices files changed under it.

    Archive (--codec f16): stores every vector section as float16 (lossy: LightRAG's own precision).

    Example: ragstore vectors compress rag_storage/vdb_entities.json
    """
    cli = state(ctx)
    if _is_archive(path):
        from ragstore_cli.engine.recode import recode_archive

        report = run(recode_archive(path, output, codec or "f16"))
        for note in report["notes"]:  # vectors float16 cannot hold, kept as float32
            info(cli, f"[yellow]note:[/] {note}")
        emit(cli, report, lambda console: console.print(
            f"[green]re-encoded[/] vectors as {report['dtype']}: {report['bytes_before']:,} -> "
            f"{report['bytes_after']:,} B ({report['target']})"))
        return
    from ragstore_cli.vectors.ops import NANO_CODECS, compact_nano

    _nano_only(path)
    if (codec or "compact") not in NANO_CODECS:
        raise UsageError(f"NanoVectorDB files take --codec {', '.join(NANO_CODECS)} (archives take f16/f32)")
    if path.name == "vdb_chunks.json" and not allow_chunks:
        raise UsageError("a compacted vdb_chunks.json makes LightRAG's default chunk picker "
                         "(KG_CHUNK_PICK_METHOD=VECTOR) fall back to WEIGHT; pass --allow-chunks to compact it anyway")
    report = compact_nano(path, output, on_error=on_error.value)
    emit(cli, report, lambda console: console.print(
        f"[green]compacted[/] {report['records']} records: {report['bytes_before']:,} -> {report['bytes_after']:,} B"
        f" ({report['target']})" + (f"; skipped {report['skipped_records']}" if report["skipped_records"] else "")))


@vectors_app.command("decompress")
def decompress_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A compacted NanoVectorDB file or a .ragstore archive."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of replacing PATH."),
    on_error: OnErrorChoice = typer.Option(OnErrorChoice.stop, "--on-error", help=ON_ERROR_HELP),
) -> None:
    """Undo `compress`: per-record vectors back into a NanoVectorDB file, float32 back into an archive.

    NanoVectorDB: every record without `vector` gets one again: float16 of the matrix row times the norm
    `compress` kept for its id (unit length when none was kept); existing `vector` fields stay as they are.
    Archive: store the vectors as float32 again (widening only: dropped precision does not come back).

    Example: ragstore vectors decompress rag_storage/vdb_chunks.json -o /tmp/vdb_chunks.json
    """
    cli = state(ctx)
    if _is_archive(path):
        from ragstore_cli.engine.recode import recode_archive

        report = run(recode_archive(path, output, "f32"))
        emit(cli, report, lambda console: console.print(
            f"[green]re-encoded[/] vectors as float32 -> {report['target']}"))
        return
    from ragstore_cli.vectors.ops import expand_nano

    _nano_only(path)
    report = expand_nano(path, output, on_error=on_error.value)
    emit(cli, report, lambda console: console.print(
        f"[green]expanded[/] {report['records']} records: {report['vector_fields_added']} vectors added "
        f"({report['norms_restored']} with their norm, {report['unit_length']} unit length) -> {report['target']}"))


def _is_archive(path: Path) -> bool:
    return path.suffix == ".ragstore"


def _nano_only(path: Path) -> None:
    if path.suffix != ".json":
        raise UsageError(f"{path}: expected a NanoVectorDB file (vdb_<namespace>.json)")


@vectors_app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    a: Path = typer.Argument(..., help="Reference: NanoVectorDB .json or exported .npy."),
    b: Path = typer.Argument(..., help="Candidate: NanoVectorDB .json or exported .npy."),
    min_recall: float = typer.Option(0.99, "--min-recall", min=0.0, max=1.0, help="Fail below this recall@k."),
    k: int = typer.Option(10, "--k", min=1, help="Neighbours per query."),
    queries: int = typer.Option(200, "--queries", min=1, help="Sampled query vectors (taken from A)."),
    exact: bool = typer.Option(False, "--exact", help="Require bit-identical vectors (lossless codecs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the query sample."),
    on_error: OnErrorChoice = typer.Option(OnErrorChoice.stop, "--on-error", help=ON_ERROR_HELP),
) -> None:
    """Compare two vector sets: exact equality, or error and recall@k against --min-recall.

    Bit-identical (same ids, same vectors) passes. Otherwise report max abs error and recall@k of cosine
    kNN on queries sampled from A, and fail (exit 1) below --min-recall, or at once with --exact.

    Example: ragstore vectors verify before/vdb_chunks.json after/vdb_chunks.json --min-recall 0.995
    """
    from ragstore_cli.vectors.verify import verify

    cli = state(ctx)
    report = verify(str(a), str(b), min_recall=min_recall, k=k, queries=queries, exact=exact, seed=seed,
                    on_error=on_error.value)

    def render(console: Any) -> None:
        rows = [[key, report[key]] for key in ("count", "dim", "aligned", "identical", "max_abs_error",
                                               "max_abs_error_normalised", "min_cosine", "recall") if key in report]
        if report.get("matrix_identical"):
            rows.append(["matrix (what LightRAG queries)", "identical"])
        console.print(table(f"{a} vs {b}", ["", ""], rows))
        console.print(("[green]ok[/] " if report["ok"] else "[red]FAIL[/] ") + report["reason"])

    emit(cli, report, render)
    if not report["ok"]:
        raise typer.Exit(EXIT_FAILED)


@vectors_app.command("export")
def export_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A NanoVectorDB file."),
    output: Path = typer.Option(..., "--output", "-o", help="The .npy to write; ids go to <stem>.ids.jsonl beside it."),
    source: str = typer.Option("raw", "--source", help="raw: the records' vectors (matrix row if missing); "
                                                      "matrix: the normalised rows LightRAG queries."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float16."),
    meta: bool = typer.Option(True, "--meta/--no-meta", help="Copy each record's metadata into the ids file."),
    on_error: OnErrorChoice = typer.Option(OnErrorChoice.stop, "--on-error", help=ON_ERROR_HELP),
) -> None:
    """Write the vectors as a .npy (rows in file order) plus ids as JSON Lines, for numpy or pandas.

    Example: ragstore vectors export rag_storage/vdb_chunks.json -o chunks.npy
             python -c "import numpy, pandas; m = numpy.load('chunks.npy'); ids = pandas.read_json('chunks.ids.jsonl', lines=True)"
    """
    from ragstore_cli.vectors.ops import check_dtype, export_nano

    cli = state(ctx)
    _nano_only(path)
    report = export_nano(path, output, source=source, dtype=check_dtype(dtype), with_meta=meta,
                         on_error=on_error.value)
    emit(cli, report, lambda console: console.print(
        f"[green]exported[/] {report['rows']} x {report['dim']} {report['dtype']} -> {report['npy']} + {report['ids']}"))


def register(root: typer.Typer) -> None:
    """Add the `vectors` group to the root application."""
    root.add_typer(vectors_app, name="vectors")
