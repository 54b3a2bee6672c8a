"""`ragstore archive verify|inspect` and the archive half of `vectors compress|decompress`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragstore_cli.archive import ArchiveReader, Manifest, SectionStats
from ragstore_cli.archive.summary import describe
from ragstore_cli.engine.observer import NOTHING, Observer


@dataclass(frozen=True)
class ArchiveCheck:
    """A sound archive (an unsound one raises DataError naming what is wrong): its manifest and what
    was read of each section."""

    file: Path
    manifest: Manifest
    stats: dict[str, SectionStats]

    @property
    def records(self) -> int:
        return sum(s.records for s in self.stats.values())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "file": str(self.file), **describe(self.manifest, self.stats)}


def archive_verify(file: str | Path, *, observer: Observer = NOTHING) -> ArchiveCheck:
    """Read the whole archive: checksums, counts, every record's shape, vector dimension and finiteness.
    `observer` hears each section's stored size first, then the bytes as they are read."""
    reader = ArchiveReader(Path(file))
    totals: dict[str, int] = {}
    for member in reader.manifest.members:
        totals[member.section] = totals.get(member.section, 0) + member.size
    for key, size in totals.items():
        observer.section(key, None, size)
    return ArchiveCheck(Path(file), reader.manifest, reader.verify(observer.progress))


def archive_inspect(file: str | Path) -> Manifest:
    """The archive's manifest (checked; the data is not read: use archive_verify for that).
    `ragstore_cli.api.describe_archive(manifest)` gives the per-section table `--json` prints."""
    return ArchiveReader(Path(file)).manifest


def describe_archive(manifest: Manifest) -> dict[str, Any]:
    """The manifest's header and one row per section (records, stored/raw bytes, ratio, members)."""
    return describe(manifest)


async def archive_recode(file: str | Path, *, output: str | Path | None = None,
                         vector_dtype: str = "float16") -> dict[str, Any]:
    """Store every vector section of an archive as `vector_dtype` (float16 or f16, float32 or f32) (`ragstore vectors compress|decompress
    x.ragstore`), atomically, into `output` or in place; float16 is lossy, float32 only widens."""
    from ragstore_cli.engine.recode import recode_archive

    return await recode_archive(Path(file), None if output is None else Path(output), vector_dtype)
