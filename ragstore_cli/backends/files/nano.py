"""A working dir's NanoVectorDB files (`vdb_<ns>.json`) as a VectorStore: LightRAG's rules on top of the codec.

The file format — reading (`NanoVectorFile`) and writing (`NanoVectorWriter`) — is the one codec in
`ragstore_cli.vectors` (docs/lightrag-formats.md, "NanoVectorDB files"). What is LightRAG's and lives
here: the file name per namespace, the `meta_fields` each namespace keeps (other keys are dropped and
reported), the `__created_at__` / `__write_seq__` stamps a record gets when it comes without them,
and that the raw vector LightRAG returns (`get_vectors_by_ids`) is the record's own float16 `vector`;
a record from an older LightRAG without one falls back to its normalised matrix row.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np

from ragstore_cli.records import DEFAULT_BATCH, VECTOR_NAMESPACES, VectorBatch
from ragstore_cli.config import Settings
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.vectors.nanofile import NanoVectorFile, NanoVectorWriter, VectorSource

META_FIELDS = {
    "chunks": ("full_doc_id", "content", "file_path"),
    "entities": ("entity_name", "source_id", "content", "file_path"),
    "relationships": ("src_id", "tgt_id", "source_id", "content", "file_path"),
}
SYSTEM_FIELDS = ("__created_at__", "__write_seq__")


class NanoWriter:
    """Streams one working-dir Nano file; nothing replaces the old file before `commit()`."""

    def __init__(self, path: Path, namespace: str, dim: int) -> None:
        self.path, self.namespace, self.dim = path, namespace, dim
        self.keep = set(META_FIELDS[namespace]) | set(SYSTEM_FIELDS)
        self.out = NanoVectorWriter(path, dim)
        self.dropped: set[str] = set()
        self.seen: set[str] = set()
        self.now = int(time.time())
        self.seq = time.time_ns()

    @property
    def count(self) -> int:
        return self.out.count

    async def write(self, batch: VectorBatch) -> None:
        try:
            self._write(batch)
        except BaseException:
            await self.abort()
            raise

    def _write(self, batch: VectorBatch) -> None:
        vectors = np.asarray(batch.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(batch.ids) or (len(batch.ids) and vectors.shape[1] != self.dim):
            raise DataError(f"{self.path.name}: expected {len(batch.ids)} vectors of dimension {self.dim}, got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise DataError(f"{self.path.name}: vectors contain NaN or infinity")
        metas = []
        for i, ident in enumerate(batch.ids):
            if not isinstance(ident, str):
                raise DataError(f"{self.path.name}: vector id must be text")
            if ident in self.seen:
                raise DataError(f"{self.path.name}: vector id {ident[:80]!r} written twice")
            self.seen.add(ident)
            metas.append(self._record_meta(batch.meta[i] if batch.meta else {}))
        self.out.add_vectors(batch.ids, vectors, metas)

    def _record_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The stamps first, then the fields LightRAG keeps for this namespace, in the order given."""
        self.seq += 1
        record: dict[str, Any] = {"__created_at__": int(meta.get("__created_at__") or self.now),
                                  "__write_seq__": int(meta.get("__write_seq__") or self.seq)}
        for key, value in meta.items():
            if key in self.keep:
                record.setdefault(key, value)
            elif key not in ("__id__", "vector"):
                self.dropped.add(key)
        return record

    async def commit(self) -> None:
        self.out.commit()

    async def abort(self) -> None:
        self.out.abort()


class FilesVectors:
    def __init__(self, folder: Path, settings: Settings | None = None) -> None:
        self.folder = folder

    def path(self, namespace: str) -> Path:
        if namespace not in VECTOR_NAMESPACES:
            raise UsageError(f"unknown vector namespace {namespace!r}; expected one of: {', '.join(VECTOR_NAMESPACES)}")
        return self.folder / f"vdb_{namespace}.json"

    async def count(self, namespace: str) -> int:
        path = self.path(namespace)
        if not path.exists():
            return 0
        with NanoVectorFile(path) as nano:  # one numpy scan, no record parsed
            return nano.count

    async def dimension(self, namespace: str) -> int | None:
        path = self.path(namespace)
        if not path.exists():
            return None
        with NanoVectorFile(path) as nano:
            return nano.embedding_dim

    async def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]:
        async for batch in self._batches(namespace, batch_size, "raw"):
            yield batch

    async def read_meta(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]:
        """The records with an empty (n × 0) matrix: their vectors neither parsed nor decoded."""
        async for batch in self._batches(namespace, batch_size, "none"):
            yield batch

    async def ids(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        """The records' ids, their vectors neither parsed nor decoded."""
        async for batch in self._batches(namespace, batch_size, "none"):
            yield batch.ids

    async def _batches(self, namespace: str, batch_size: int, vectors: VectorSource) -> AsyncIterator[VectorBatch]:
        path = self.path(namespace)
        if not path.exists():
            return
        with NanoVectorFile(path) as nano:
            for batch in nano.batches(batch_size, vectors=vectors):
                yield VectorBatch(batch.ids, batch.vectors, batch.meta)

    async def writer(self, namespace: str, *, dim: int, replace: bool = True,
                     expected_rows: int | None = None) -> NanoWriter:
        if not replace:
            raise UsageError("the files backend rewrites a NanoVectorDB file whole; merging is not supported")
        path = self.path(namespace)
        self.folder.mkdir(parents=True, exist_ok=True)
        return NanoWriter(path, namespace, dim)
