"""Re-encode the vectors of a `.ragstore` archive (float32 <-> float16), copying everything else as is.

The archive format stores each vector part as a zstd member of plain float32 or float16 rows
(docs/archive-format.md); this is `move()` from the archive to a new one written with the other
dtype. float32 -> float16 is lossy (LightRAG's own per-record precision); float16 -> float32 only
widens, it cannot bring back precision that was dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragstore_cli.archive.manifest import KIND_VECTORS
from ragstore_cli.archive.source import ArchiveSource
from ragstore_cli.archive.target import ArchiveTarget
from ragstore_cli.engine.move import MovePlan, move
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.errors import UsageError

ARCHIVE_DTYPES = {"f16": "float16", "f32": "float32", "float16": "float16", "float32": "float32"}


async def recode_archive(src: str | Path, dst: str | Path | None, dtype: str,
                         observer: Observer = NOTHING) -> dict[str, Any]:
    """Write `dst` (or replace `src` atomically) with every vector section stored as `dtype`."""
    if dtype not in ARCHIVE_DTYPES:
        raise UsageError(f"archives store float32 or float16 vectors (--codec f32 or f16), not {dtype!r}")
    source = ArchiveSource(Path(src), verify=False)  # every member is checked as it is read
    before = {s.key: s.dtype for s in source.manifest.sections if s.kind == KIND_VECTORS}
    out = Path(dst) if dst else source.reader.path
    size_before = source.reader.path.stat().st_size
    target = ArchiveTarget(out, vector_dtype=ARCHIVE_DTYPES[dtype], overwrite=True)
    await move(source, target, MovePlan(op="recode"), observer)
    return {"source": str(source.reader.path), "target": str(out), "dtype": ARCHIVE_DTYPES[dtype],
            "vector_sections": before, "bytes_before": size_before, "bytes_after": out.stat().st_size,
            "notes": target.warnings}
