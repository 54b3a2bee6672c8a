"""Human- and JSON-friendly summaries of an archive (what `archive inspect` / `archive verify` print)."""

from __future__ import annotations

from typing import Any

from ragstore_cli.archive.manifest import Manifest
from ragstore_cli.archive.reader import SectionStats


def describe(manifest: Manifest, stats: dict[str, SectionStats] | None = None) -> dict[str, Any]:
    """The manifest's header plus one row per section: records, stored/raw bytes, ratio, members."""
    sections = []
    for s in manifest.sections:
        members = [m for m in manifest.members if m.section == s.key]
        stored = sum(m.size for m in members)
        raw = sum(m.raw_size for m in members)
        row: dict[str, Any] = {
            "section": s.key, "kind": s.kind, "namespace": s.namespace, "records": s.records,
            "members": len(members), "stored_bytes": stored, "raw_bytes": raw,
            "compression_ratio": round(raw / stored, 2) if stored else None,
        }
        if s.dim is not None or s.dtype is not None:
            row.update(dim=s.dim, dtype=s.dtype)
            lossless = sum(1 for m in members if m.kind == "matrix" and m.dtype != s.dtype)
            if lossless:  # a float16 section whose parts hold vectors float16 cannot (docs/archive-format.md)
                row["float32_parts"] = lossless
        if stats is not None:
            row["verified_records"] = stats[s.key].records if s.key in stats else 0
        sections.append(row)
    return {
        "format": manifest.format, "format_version": manifest.format_version,
        "ragstore_version": manifest.ragstore_version, "created_at": manifest.created_at,
        "source": manifest.source, "embedding": manifest.embedding,
        "counts": manifest.counts(),
        "total_stored_bytes": sum(m.size for m in manifest.members),
        "total_raw_bytes": sum(m.raw_size for m in manifest.members),
        "sections": sections,
    }
