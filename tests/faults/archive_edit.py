"""Make a variant of a sound archive, record by record, for the refusal tests: the same sections in
the same order through ragstore's own writer, with `edit(section key, batch)` changing batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ragstore_cli.archive import ArchiveReader, ArchiveWriter
from ragstore_cli.archive.manifest import KIND_DOC_STATUS, KIND_EDGES, KIND_KV, KIND_NODES, KIND_VECTORS


def edit_archive(source: Path, target: Path, edit: Callable[[str, Any], Any]) -> Path:
    reader = ArchiveReader(source)
    manifest = reader.manifest
    writer = ArchiveWriter(target, workspace=manifest.source.get("workspace", ""),
                           backends=manifest.source.get("backends"), embedding_model=manifest.embedding.get("model"),
                           embedding_dim=manifest.embedding.get("dim"),
                           vector_dtype=next((s.dtype for s in manifest.sections if s.dtype), "float32"))
    opener = {KIND_KV: writer.kv, KIND_VECTORS: writer.vectors, KIND_DOC_STATUS: lambda ns: writer.doc_status(),
              KIND_NODES: writer.graph_nodes, KIND_EDGES: writer.graph_edges}
    for section in reader.sections(7):
        with opener[section.section.kind](section.section.namespace) as out:
            for batch in section.batches():
                changed = edit(section.key, batch)
                if changed is not None and len(changed):
                    out.write(changed)
    for key, fields in (manifest.source.get("not_carried") or {}).items():
        writer.not_carried(key, fields)
    writer.finish()
    return target
