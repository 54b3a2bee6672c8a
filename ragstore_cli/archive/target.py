"""A `.ragstore` archive file as the contract's Target (backends/contract.py): what `export` writes.

One load session is one archive: sections are written as they come (compressed and hashed in a
worker thread while the source fetches the next batch), and `commit()` writes the manifest and
publishes the file (writer.py). An archive keeps no ledger: an interrupted export leaves no file,
and the next export to the same name removes what it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO

from ragstore_cli.archive.manifest import Manifest
from ragstore_cli.archive.writer import ArchiveWriter, SectionWriter
from ragstore_cli.backends.contract import Check, NoteKeeper, Origin
from ragstore_cli.errors import UsageError
from ragstore_cli.records import DEFAULT_BATCH, SECTION, Batch


class ArchiveTarget:
    """Write one archive to `output`, a file or a stream (writer.py); an existing file is refused
    unless `overwrite` (before any read)."""

    consistency: dict[str, str] = {}

    def __init__(self, output: Path | BinaryIO, *, vector_dtype: str = "float32", overwrite: bool = False,
                 workspace: str | None = None, spool_dir: Path | None = None) -> None:
        self.output = Path(output) if isinstance(output, (str, os.PathLike)) else output
        self.vector_dtype, self.overwrite, self.spool_dir = vector_dtype, overwrite, spool_dir
        if isinstance(self.output, Path) and not overwrite and self.output.exists():
            raise UsageError(f"{output} exists; choose another name or pass --force to replace it")
        self.written = 0  # bytes written to a stream output, once committed
        self.workspace = workspace
        self.origin: Origin | None = None
        self.observer: Any = None
        self.warnings: list[str] = []

    @contextlib.asynccontextmanager
    async def open(self, origin: Origin, observer: Any) -> AsyncIterator["ArchiveTarget"]:
        self.origin, self.observer = origin, observer
        yield self

    def ledger(self) -> None:
        return None

    def takes(self, key: str) -> bool:
        return True  # every section is in an archive, an empty one too

    def prepare(self, *, replace: bool, resume: bool) -> None:
        return None

    async def existing(self) -> int:
        return 0

    async def checks(self) -> list[Check]:
        return []

    async def session(self) -> "ArchiveSession":
        assert self.origin is not None
        origin = self.origin
        writer = ArchiveWriter(self.output, workspace=origin.workspace if self.workspace is None else self.workspace,
                               backends=origin.backends, embedding_model=origin.model, embedding_dim=origin.dim,
                               vector_dtype=self.vector_dtype, overwrite=self.overwrite, spool_dir=self.spool_dir,
                               progress=lambda key, records, nbytes: self.observer.progress(key, 0, nbytes))
        return ArchiveSession(self, writer)


class ArchiveSession:
    """Sections of the archive being written; it appears whole at `commit()`, or not at all."""

    def __init__(self, target: ArchiveTarget, writer: ArchiveWriter) -> None:
        self.target, self.archive = target, writer
        self.manifest: Manifest | None = None

    def is_durable(self, key: str) -> bool:
        return False  # nothing survives an interrupted export

    def is_visible(self, key: str) -> bool:
        return False  # the archive appears whole at commit()

    async def writer(self, key: str, *, dim: int | None, rows: int | None) -> "_Section":
        section = SECTION[key]
        opener = {"kv": lambda: self.archive.kv(section.namespace), "doc_status": self.archive.doc_status,
                  "graph_nodes": self.archive.graph_nodes, "graph_edges": self.archive.graph_edges,
                  "vectors": lambda: self.archive.vectors(section.namespace)}[section.kind]
        return _Section(opener())

    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        raise UsageError("an archive being written cannot be read back before it is finished")

    def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        raise UsageError("an archive being written cannot be read back before it is finished")

    async def commit(self, note: NoteKeeper | None) -> Manifest:
        origin = self.target.origin
        assert origin is not None
        for section, fields in origin.not_carried.items():
            self.archive.not_carried(section, fields)
        self.manifest = self.archive.finish()
        self.target.written = self.archive.written
        self.target.warnings.extend(self.archive.notes)  # parts stored as float32 because float16 could not hold them
        return self.manifest

    async def discard(self) -> None:
        self.archive.abort()

    async def close(self) -> None:
        if self.manifest is None:
            self.archive.abort()


class _Section:
    """One section's writer as the contract's Writer: each batch compressed in a worker thread."""

    def __init__(self, section: SectionWriter) -> None:
        self.section = section

    async def write(self, batch: Batch) -> None:
        await asyncio.to_thread(self.section.write, batch)

    async def commit(self) -> None:
        self.section.close()

    async def abort(self) -> None:
        self.section.close()
