"""`ragstore archive verify|inspect` and the archive half of `vectors compress|decompress`."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ragstore_cli.archive import ArchiveReader, Manifest, SectionStats
from ragstore_cli.archive.source import verify_observed
from ragstore_cli.archive.spool import spooled
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


@contextlib.contextmanager
def _reader(file: str | Path | BinaryIO, spool_dir: str | Path | None) -> Iterator[tuple[ArchiveReader, Path]]:
    """A reader of the archive file, or of a stream (stdin) held in a private spool file for the block;
    with the name to report ("-" for a stream)."""
    if isinstance(file, (str, os.PathLike)):
        yield ArchiveReader(Path(file)), Path(file)
        return
    with spooled(file, spool_dir) as path:
        yield ArchiveReader(path, label="stdin"), Path("-")


def archive_verify(file: str | Path | BinaryIO, *, observer: Observer = NOTHING,
                   spool_dir: str | Path | None = None) -> ArchiveCheck:
    """Read the whole archive: checksums, counts, every record's shape, vector dimension and finiteness.
    `observer` hears a `verify` phase counted in stored bytes. `file` may be a binary stream."""
    with _reader(file, spool_dir) as (reader, name):
        return ArchiveCheck(name, reader.manifest, verify_observed(reader, observer))


def archive_inspect(file: str | Path | BinaryIO, *, spool_dir: str | Path | None = None) -> Manifest:
    """The archive's manifest (checked; the data is not read: use archive_verify for that).
    `ragstore_cli.api.describe_archive(manifest)` gives the per-section table `--json` prints."""
    with _reader(file, spool_dir) as (reader, _):
        return reader.manifest


def describe_archive(manifest: Manifest) -> dict[str, Any]:
    """The manifest's header and one row per section (records, stored/raw bytes, ratio, members)."""
    return describe(manifest)


async def archive_recode(file: str | Path, *, output: str | Path | None = None,
                         vector_dtype: str = "float16", observer: Observer = NOTHING) -> dict[str, Any]:
    """Store every vector section of an archive as `vector_dtype` (float16 or f16, float32 or f32) (`ragstore vectors compress|decompress
    x.ragstore`), atomically, into `output` or in place; float16 is lossy, float32 only widens."""
    from ragstore_cli.engine.recode import recode_archive

    return await recode_archive(Path(file), None if output is None else Path(output), vector_dtype, observer)
