"""Re-encode the vectors of a `.ragstore` archive (float32 <-> float16), copying everything else as is.

The archive format stores each vector part as a zstd member of plain float32 or float16 rows
(docs/archive-format.md); this streams the archive section by section through its own reader and
writer with the other dtype. float32 -> float16 is lossy (LightRAG's own per-record precision);
float16 -> float32 only widens, it cannot bring back precision that was dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragstore_cli.archive import ArchiveReader, ArchiveWriter
from ragstore_cli.archive.manifest import KIND_DOC_STATUS, KIND_EDGES, KIND_KV, KIND_NODES, KIND_VECTORS
from ragstore_cli.errors import UsageError

ARCHIVE_DTYPES = {"f16": "float16", "f32": "float32", "float16": "float16", "float32": "float32"}


def recode_archive(src: str | Path, dst: str | Path | None, dtype: str) -> dict[str, Any]:
    """Write `dst` (or replace `src` atomically) with every vector section stored as `dtype`."""
    if dtype not in ARCHIVE_DTYPES:
        raise UsageError(f"archives store float32 or float16 vectors (--codec f32 or f16), not {dtype!r}")
    target_dtype = ARCHIVE_DTYPES[dtype]
    reader = ArchiveReader(Path(src))
    manifest = reader.manifest
    before = {s.key: s.dtype for s in manifest.sections if s.kind == KIND_VECTORS}
    out = Path(dst) if dst else reader.path
    size_before = reader.path.stat().st_size
    writer = ArchiveWriter(out, workspace=manifest.source.get("workspace", ""),
                           backends=manifest.source.get("backends"), embedding_model=manifest.embedding.get("model"),
                           embedding_dim=manifest.embedding.get("dim"), vector_dtype=target_dtype)
    with writer:
        for section in reader.sections():
            s = section.section
            opener = {KIND_KV: lambda: writer.kv(s.namespace), KIND_DOC_STATUS: writer.doc_status,
                      KIND_NODES: lambda: writer.graph_nodes(s.namespace),
                      KIND_EDGES: lambda: writer.graph_edges(s.namespace),
                      KIND_VECTORS: lambda: writer.vectors(s.namespace)}[s.kind]
            with opener() as w:
                for batch in section.batches():
                    w.write(batch)
        for key, fields in manifest.source.get("not_carried", {}).items():
            writer.not_carried(key, fields)
        writer.finish()
    return {"source": str(reader.path), "target": str(out), "dtype": target_dtype, "vector_sections": before,
            "bytes_before": size_before, "bytes_after": out.stat().st_size, "notes": writer.notes}
