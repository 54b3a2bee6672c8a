"""NanoVectorDB files (`vdb_<ns>.json`) as a VectorStore: streamed records in, streamed file out.

Layout (reference §2.5): `{"embedding_dim": D, "data": [records], "matrix": "<base64 f32>"}`, one
line. The reader walks `data` one record at a time and never parses `matrix` (measured faster and at half
the memory of a full scan on 100k x 1024): each record's own `vector` (float16 of the raw embedding)
is the raw vector LightRAG returns from `get_vectors_by_ids`. A file this fast path cannot handle
(records from older LightRAG without `vector`, `data` before `embedding_dim`) is finished, from the
record where it stopped, by `ragstore_cli.vectors.nanofile` (matrix-row fallback). The writer streams records to the tmp file and the normalised float32 rows
to a side file, then appends the matrix base64-encoded in 3-byte-aligned chunks: memory stays one
batch. Only LightRAG's `meta_fields` survive in the file; other keys are dropped and reported.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import numpy as np

from ragstore_cli.records import DEFAULT_BATCH, VECTOR_NAMESPACES, VectorBatch
from ragstore_cli.atomic import publish
from ragstore_cli.backends.files.jsonfile import _Buffer, object_keys, tmp_sibling
from ragstore_cli.config import Settings
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.vectors.codecs import decode_records, encode_records
from ragstore_cli.vectors.nanofile import NanoVectorFile

META_FIELDS = {
    "chunks": ("full_doc_id", "content", "file_path"),
    "entities": ("entity_name", "source_id", "content", "file_path"),
    "relationships": ("src_id", "tgt_id", "source_id", "content", "file_path"),
}
SYSTEM_FIELDS = ("__created_at__", "__write_seq__")
_B64_STEP = 3 << 18  # bytes per base64 chunk (a multiple of 3: no padding mid-stream)


def read_header_dim(path: Path) -> int | None:
    """`embedding_dim` of a Nano file (it comes first in files nano-vectordb writes)."""
    if not path.exists():
        return None
    buf = _Buffer(path)
    try:
        for key in object_keys(buf):
            value = buf.value() if key != "data" else None
            if key == "embedding_dim":
                return int(value)
            if key == "data":
                return None
    finally:
        buf.close()
    return None


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(embedding_dim, record) for every record of `data`, in file order; `matrix` is never parsed."""
    buf = _Buffer(path)
    dim: int | None = None
    try:
        for key in object_keys(buf):
            if key == "embedding_dim":
                dim = int(buf.value())
            elif key == "data":
                if dim is None:
                    raise _SlowPath()
                if buf.skip_ws() != "[":
                    raise buf.error("'data' is not a list")
                buf.pos += 1
                if buf.skip_ws() == "]":
                    buf.pos += 1
                    return
                while True:
                    buf.skip_ws()
                    record = buf.value()
                    if not isinstance(record, dict) or "__id__" not in record:
                        raise buf.error("a record without '__id__'")
                    yield dim, record
                    sep = buf.skip_ws()
                    buf.pos += 1
                    if sep == "]":
                        return
                    if sep != ",":
                        raise buf.error("expected ',' or ']' in 'data'")
            else:
                buf.skip_ws()
                buf.value()  # small keys (additional_data); `matrix` normally comes after `data`
    finally:
        buf.close()


_POOL: ThreadPoolExecutor | None = None


def _encode_parallel(vectors: np.ndarray, part: int = 1024) -> list[str]:
    """Per-record `vector` strings; zlib releases the GIL, so row blocks compress on several cores."""
    global _POOL
    if len(vectors) <= part:
        return encode_records(vectors)
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="ragstore-nano")
    blocks = _POOL.map(encode_records, [vectors[i:i + part] for i in range(0, len(vectors), part)])
    return [text for block in blocks for text in block]


class _SlowPath(Exception):
    """The streaming fast path cannot read this file (see the module docstring)."""


class NanoWriter:
    """Streams one Nano file; nothing replaces the old file before `commit()`."""

    def __init__(self, path: Path, namespace: str, dim: int) -> None:
        self.path, self.namespace, self.dim = path, namespace, dim
        self.keep = set(META_FIELDS[namespace]) | set(SYSTEM_FIELDS)
        self.tmp = tmp_sibling(path)
        self.matrix_path = self.tmp.with_name(self.tmp.name + ".matrix")
        self.out = open(self.tmp, "w", encoding="utf-8", newline="")
        self.matrix = open(self.matrix_path, "wb")
        self.out.write(json.dumps({"embedding_dim": dim}, ensure_ascii=False)[:-1] + ', "data": [')
        self.count = 0
        self.dropped: set[str] = set()
        self.seen: set[str] = set()
        self.now = int(time.time())
        self.seq = time.time_ns()

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
        encoded = _encode_parallel(vectors)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised = (vectors / np.where(norms == 0, 1, norms)).astype("<f4")
        parts = []
        for i, ident in enumerate(batch.ids):
            if not isinstance(ident, str):
                raise DataError(f"{self.path.name}: vector id must be text")
            if ident in self.seen:
                raise DataError(f"{self.path.name}: vector id {ident[:80]!r} written twice")
            self.seen.add(ident)
            meta = batch.meta[i] if batch.meta else {}
            record: dict[str, Any] = {"__id__": ident}
            record["__created_at__"] = int(meta.get("__created_at__") or self.now)
            self.seq += 1
            record["__write_seq__"] = int(meta.get("__write_seq__") or self.seq)
            for key, value in meta.items():
                if key in self.keep:
                    record.setdefault(key, value)
                elif key not in ("__id__", "vector"):
                    self.dropped.add(key)
            record["vector"] = encoded[i]
            parts.append(json.dumps(record, ensure_ascii=False))
        if parts:
            self.out.write((", " if self.count else "") + ", ".join(parts))
            self.count += len(parts)
            self.matrix.write(normalised.tobytes())

    async def commit(self) -> None:
        try:
            self.matrix.close()
            self.out.write('], "matrix": "')
            with open(self.matrix_path, "rb") as raw:
                while chunk := raw.read(_B64_STEP):
                    self.out.write(base64.b64encode(chunk).decode("ascii"))
            self.out.write('"}')
            self.out.flush()
            os.fsync(self.out.fileno())
            self.out.close()
            self.matrix_path.unlink(missing_ok=True)
            publish(self.tmp, self.path)
        except BaseException:
            await self.abort()
            raise

    async def abort(self) -> None:
        for handle in (self.out, self.matrix):
            if not handle.closed:
                handle.close()
        self.tmp.unlink(missing_ok=True)
        self.matrix_path.unlink(missing_ok=True)


class FilesVectors:
    def __init__(self, folder: Path, settings: Settings | None = None) -> None:
        self.folder = folder

    def path(self, namespace: str) -> Path:
        if namespace not in VECTOR_NAMESPACES:
            raise UsageError(f"unknown vector namespace {namespace!r}; expected one of: {', '.join(VECTOR_NAMESPACES)}")
        return self.folder / f"vdb_{namespace}.json"

    async def count(self, namespace: str) -> int:
        path = self.path(namespace)
        return NanoVectorFile(path).count if path.exists() else 0  # one numpy scan, nothing parsed

    async def dimension(self, namespace: str) -> int | None:
        return read_header_dim(self.path(namespace))

    async def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]:
        path = self.path(namespace)
        if not path.exists():
            return
        rows: list[dict[str, Any]] = []
        done = 0
        try:
            for dim, record in iter_records(path):
                if not record.get("vector"):
                    raise _SlowPath()
                rows.append(record)
                if len(rows) >= batch_size:
                    yield _batch(path, rows, dim)
                    done += len(rows)
                    rows = []
            if rows:
                yield _batch(path, rows, dim)
            return
        except _SlowPath:
            pass
        for batch in NanoVectorFile(path).batches(batch_size, vectors="raw"):
            keep = max(0, done - batch.start)  # records already yielded by the fast path
            if keep < len(batch):
                yield VectorBatch(batch.ids[keep:], batch.vectors[keep:], batch.meta[keep:])

    async def writer(self, namespace: str, *, dim: int, replace: bool = True,
                     expected_rows: int | None = None) -> NanoWriter:
        if not replace:
            raise UsageError("the files backend rewrites a NanoVectorDB file whole; merging is not supported")
        path = self.path(namespace)
        self.folder.mkdir(parents=True, exist_ok=True)
        return NanoWriter(path, namespace, dim)

def _batch(path: Path, rows: list[dict[str, Any]], dim: int) -> VectorBatch:
    missing = [r["__id__"] for r in rows if not r.get("vector")]
    if missing:
        raise DataError(f"{path.name}: record {missing[0][:80]!r} has no per-record 'vector' "
                        "(written by an older LightRAG); ragstore cannot read such files yet")
    vectors, ok, problems = decode_records([r["vector"] for r in rows], dim)
    if not ok.all():
        index = int(np.flatnonzero(~ok)[0])
        raise DataError(f"{path.name}: vector of {rows[index]['__id__'][:80]!r} is corrupt ({problems.get(index, 'bad data')})")
    meta = [{k: v for k, v in r.items() if k not in ("__id__", "vector")} for r in rows]
    return VectorBatch([r["__id__"] for r in rows], vectors, meta)
