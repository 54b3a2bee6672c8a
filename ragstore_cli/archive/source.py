"""A `.ragstore` archive as the contract's Source (backends/contract.py): what `import` reads.

`open()` verifies the whole archive before anything else happens — checksums, counts, the shape of
every record, duplicate ids, edges to missing nodes (verify.py) — so nothing is ever loaded from an
archive that fails anywhere; the archive is `sealed`: it cannot change while it is read, and a
member changed since the verify pass fails its checksum again. Sections are then read as one
forward stream (a section asked for out of order opens the stream again).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from ragstore_cli.archive.manifest import KIND_VECTORS
from ragstore_cli.archive.reader import ArchiveReader, SectionReader, SectionStats
from ragstore_cli.backends.contract import Origin
from ragstore_cli.records import DEFAULT_BATCH, Batch


def verify_observed(reader: ArchiveReader, observer: Any) -> dict[str, SectionStats]:
    """`reader.verify()` as the observer's `verify` phase: every member's stored bytes against their sum."""
    stored: dict[str, int] = {}
    for member in reader.manifest.members:
        stored[member.section] = stored.get(member.section, 0) + member.size
    current: list[str] = []

    def progress(key: str, records: int, nbytes: int) -> None:
        if current[-1:] != [key]:
            current.append(key)
            observer.section(f"verify {key}", None, stored.get(key))
        observer.progress(f"verify {key}", records, nbytes)

    observer.phase("verify", sum(stored.values()), "bytes")
    stats = reader.verify(progress)
    observer.phase_done("verify")
    return stats


class ArchiveSource:
    """Records of one archive file; the manifest is read and checked at once."""

    consistency = {"archive": "sealed"}

    def __init__(self, path: Path, *, verify: bool = True, label: str | None = None) -> None:
        self.reader = ArchiveReader(Path(path), label=label)
        self.label = label or str(path)
        self.verify = verify
        self.manifest = self.reader.manifest
        self.stats: dict[str, SectionStats] = {}
        self._stream: Iterator[SectionReader] | None = None
        self._at = -1  # index in keys() of the section the stream was last at
        self._progress: Any = None

    def keys(self) -> list[str]:
        """Section keys in the order the archive holds them (sections without members come first)."""
        listed = list(dict.fromkeys(m.section for m in self.manifest.members))
        return [s.key for s in self.manifest.sections if s.key not in listed] + listed

    @contextlib.asynccontextmanager
    async def open(self, observer: Any) -> AsyncIterator["ArchiveSource"]:
        """Verify the whole archive (the observer's `verify` phase, counted in stored bytes)."""
        self._progress = observer.progress
        if not self.verify:  # a caller that only copies: every member is still checked as it is read
            yield self
            return
        self.stats = verify_observed(self.reader, observer)
        yield self

    async def origin(self) -> Origin:
        manifest, dim = self.manifest, self.manifest.embedding.get("dim")
        vectors = [s for s in manifest.sections if s.kind == KIND_VECTORS]
        return Origin(workspace=manifest.source.get("workspace", ""), backends=dict(manifest.source.get("backends") or {}),
                      identity=self.reader.manifest_sha256, label=self.label, kind="archive",
                      model=manifest.embedding.get("model"), dim=dim,
                      dims={s.key: (s.dim or dim) if (s.records or dim is not None) else None for s in vectors},
                      counts=manifest.counts(),
                      peaks={k: float(st.extra["max_abs"]) for k, st in self.stats.items() if "max_abs" in st.extra},
                      not_carried={k: list(v) for k, v in (manifest.source.get("not_carried") or {}).items()})

    async def count(self, key: str) -> int:
        return self.manifest.counts().get(key, 0)

    async def peak_bound(self, key: str) -> float | None:
        """The section's largest |value|, as verifying the archive measured it."""
        stats = self.stats.get(key)
        return float(stats.extra["max_abs"]) if stats is not None and "max_abs" in stats.extra else None

    async def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        """The batches of section `key`, decoded in a worker thread (the caller's work overlaps it)."""
        section = await asyncio.to_thread(self._seek, key, batch_size)
        batches = section.batches()
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            yield batch

    def read_meta(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        return self.read(key, batch_size)  # every member is checked whole: the vectors come with it

    def _seek(self, key: str, batch_size: int) -> SectionReader:
        keys = self.keys()
        if self._stream is None or keys.index(key) <= self._at:
            self._stream, self._at = self.reader.sections(batch_size, self._progress), -1
        for section in self._stream:
            self._at = keys.index(section.key)
            if section.key == key:
                return section
        raise KeyError(key)

    async def confirm(self) -> None:
        return None  # sealed: every member's checksum was checked again as it was read
