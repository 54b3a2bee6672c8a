"""`ragstore vectors stats|compress|decompress|verify|export` on NanoVectorDB files and .npy exports.

These only read and write local files, so they are plain functions here; ragstore_cli.api offers
them as coroutines run in a worker thread, ragstore_cli.api.sync as they are. Each returns the
document `--json` prints (docs/vectors.md shows them). numpy loads on the first call.
(`vectors compress|decompress` of a .ragstore archive is archive_recode.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragstore_cli.api.calling import resolved
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.workspace import files_dir

if TYPE_CHECKING:
    from ragstore_cli.vectors.nanofile import OnError


def vectors_stats(path: str | Path | None = None, *, workspace: str | None = None, on_error: OnError = "skip",
                  embedding_dim: int | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """What one NanoVectorDB file (`path`) or every vdb_*.json of `workspace` under WORKING_DIR holds and
    what is wrong with it (`ok`, `problems`); streams, never writes. Neither given: WORKSPACE's files.
    A workspace's document lists one report per file under `files`."""
    from ragstore_cli.vectors.stats import nano_stats, workspace_files

    if path is not None and workspace is not None:
        raise UsageError("give either a PATH or --workspace, not both")
    if path is not None:
        return nano_stats(Path(path), on_error=on_error, expected_dim=embedding_dim)
    config = resolved(settings)
    workspace = (config.lightrag.workspace or "") if workspace is None else workspace
    folder = files_dir(config.working_dir, workspace)
    files = workspace_files(folder)
    if not files:
        raise UsageError(f"no vdb_*.json files in {folder}")
    reports = [nano_stats(p, on_error=on_error, expected_dim=embedding_dim) for p in files]
    return {"workspace": workspace, "directory": str(folder), "files": reports, "ok": all(r["ok"] for r in reports)}


def _nano_only(path: Path) -> None:
    if path.suffix != ".json":
        raise UsageError(f"{path}: expected a NanoVectorDB file (vdb_<namespace>.json)")


def vectors_compress(path: str | Path, *, codec: str = "compact", output: str | Path | None = None,
                     on_error: OnError = "stop", allow_chunks: bool = False) -> dict[str, Any]:
    """Drop a NanoVectorDB file's per-record float16 `vector` copies (about a third of it), atomically,
    into `output` or in place; the float32 matrix LightRAG queries stays bit for bit. vdb_chunks.json
    needs `allow_chunks` (LightRAG's default chunk picker falls back to WEIGHT without those copies)."""
    from ragstore_cli.vectors.ops import NANO_CODECS, compact_nano

    path = Path(path)
    _nano_only(path)
    if codec not in NANO_CODECS:
        raise UsageError(f"NanoVectorDB files take --codec {', '.join(NANO_CODECS)} (archives take f16/f32)")
    if path.name == "vdb_chunks.json" and not allow_chunks:
        raise UsageError("a compacted vdb_chunks.json makes LightRAG's default chunk picker "
                         "(KG_CHUNK_PICK_METHOD=VECTOR) fall back to WEIGHT; pass --allow-chunks to compact it anyway")
    return compact_nano(path, output, on_error=on_error)


def vectors_decompress(path: str | Path, *, output: str | Path | None = None,
                       on_error: OnError = "stop") -> dict[str, Any]:
    """Undo vectors_compress: every record without `vector` gets one again (float16 of its matrix row
    times the norm compress kept), atomically, into `output` or in place."""
    from ragstore_cli.vectors.ops import expand_nano

    path = Path(path)
    _nano_only(path)
    return expand_nano(path, output, on_error=on_error)


def vectors_verify(a: str | Path, b: str | Path, *, min_recall: float = 0.99, k: int = 10, queries: int = 200,
                   exact: bool = False, seed: int = 0, on_error: OnError = "stop") -> dict[str, Any]:
    """Compare two vector sets (NanoVectorDB .json or exported .npy): bit-identical passes; else max
    error and recall@k of cosine kNN on `queries` vectors sampled from `a` (`ok`: at least `min_recall`)."""
    from ragstore_cli.vectors.verify import verify

    return verify(str(a), str(b), min_recall=min_recall, k=k, queries=queries, exact=exact, seed=seed,
                  on_error=on_error)


def vectors_export(path: str | Path, *, output: str | Path, source: str = "raw", dtype: str = "float32",
                   meta: bool = True, on_error: OnError = "stop") -> dict[str, Any]:
    """Write a NanoVectorDB file's vectors as a .npy (rows in file order) and the ids (with each
    record's metadata unless `meta=False`) as <stem>.ids.jsonl beside it."""
    from ragstore_cli.vectors.ops import check_dtype, export_nano

    path = Path(path)
    _nano_only(path)
    return export_nano(path, output, source=source, dtype=check_dtype(dtype), with_meta=meta, on_error=on_error)
