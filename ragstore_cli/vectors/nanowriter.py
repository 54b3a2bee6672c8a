"""The NanoVectorDB file writer (the format is in `nanofile`'s docstring; the reader lives there).

Records go to the file's temporary sibling as they come (through `atomic.AtomicFile`: nothing is
visible before `commit()`, any error or `abort()` leaves the target untouched); matrix rows go to a
spool file beside it and are base64-appended at commit, so memory stays one batch. The bytes are
nano-vectordb's own: `{"embedding_dim": D, "data": [records joined by ", "], "matrix": "..."}` with
each record `json.dumps(..., ensure_ascii=False)` — what LightRAG 1.5.7 writes for the same records.

This module knows the format only. Which fields a record of a LightRAG working dir keeps and how it is
stamped is the files backend's business (backends/files/nano.py); `ragstore vectors` writes any file.
"""

from __future__ import annotations

import binascii
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ragstore_cli.atomic import AtomicFile
from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import encode_records, normalise

_B64_BLOCK = 3 << 20  # bytes of matrix per base64 write (multiple of 3: no padding mid-stream)
_ENCODE_BLOCK = 1024  # rows per zlib job
_POOL: ThreadPoolExecutor | None = None


def encode_vectors(vectors: np.ndarray) -> list[str]:
    """LightRAG `vector` strings of the rows; zlib releases the GIL, so row blocks compress on several cores."""
    global _POOL
    if len(vectors) <= _ENCODE_BLOCK:
        return encode_records(vectors)
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="ragstore-nano")
    blocks = _POOL.map(encode_records, [vectors[i:i + _ENCODE_BLOCK] for i in range(0, len(vectors), _ENCODE_BLOCK)])
    return [text for block in blocks for text in block]


class NanoVectorWriter:
    """Writes a NanoVectorDB file batch by batch; visible only after `commit()` (atomic, fsynced)."""

    def __init__(self, path: str | os.PathLike[str], dim: int, *, additional_data: Any = None) -> None:
        if dim <= 0:
            raise DataError(f"embedding_dim must be positive, got {dim}")
        self.path = Path(path)
        self.dim = dim
        self.count = 0
        self.additional_data = additional_data  # written at commit; may be set until then
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = AtomicFile(self.path)
        self._spool_path = self._out.tmp.with_name(self._out.tmp.name + ".matrix")
        try:
            self._spool = open(self._spool_path, "w+b")
        except BaseException:
            self._out.abort()
            raise
        self._out.write(b'{"embedding_dim": %d, "data": [' % dim)
        self._done = False

    def add(self, ids: Sequence[str], matrix_rows: np.ndarray, metas: Sequence[dict[str, Any]] | None = None,
            vector_strings: Sequence[str | None] | None = None) -> None:
        """Append records `{"__id__", **meta, "vector"}` whose matrix rows are already L2-normalised;
        a `None` string omits `vector`."""
        rows = np.ascontiguousarray(matrix_rows, dtype="<f4")
        n = len(ids)
        if rows.shape != (n, self.dim):
            raise DataError(f"expected matrix rows of shape ({n}, {self.dim}), got {rows.shape}")
        metas = metas if metas is not None else [{}] * n
        strings = vector_strings if vector_strings is not None else [None] * n
        if len(metas) != n or len(strings) != n:
            raise DataError("ids, metas and vector strings differ in length")
        parts = []
        for rid, meta, vec in zip(ids, metas, strings):
            record = {"__id__": rid, **{k: v for k, v in meta.items() if k not in ("__id__", "vector")}}
            if vec is not None:
                record["vector"] = vec
            parts.append(json.dumps(record, ensure_ascii=False))
        if not parts:
            return
        text = (", " if self.count else "") + ", ".join(parts)
        try:
            self._out.write(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise DataError(f"a record holds text that UTF-8 cannot encode ({exc.reason})") from None
        self._spool.write(rows.tobytes())
        self.count += n

    def add_vectors(self, ids: Sequence[str], vectors: np.ndarray, metas: Sequence[dict[str, Any]] | None = None,
                    *, keep_vector: bool = True) -> None:
        """Append records from raw embeddings (matrix rows and LightRAG `vector` strings computed here)."""
        rows, _ = normalise(vectors)
        strings = encode_vectors(vectors) if keep_vector else None
        self.add(ids, rows, metas, strings)

    def commit(self) -> None:
        """Finish the JSON and publish the file (atomic, durable)."""
        if self._done:
            return
        try:
            self._out.write(b'], "matrix": "')
            self._spool.flush()
            self._spool.seek(0)
            while block := self._spool.read(_B64_BLOCK):
                self._out.write(binascii.b2a_base64(block, newline=False))
            self._out.write(b'"')
            if self.additional_data is not None:
                self._out.write(b', "additional_data": ' + json.dumps(self.additional_data, ensure_ascii=False).encode())
            self._out.write(b"}")
            self._out.commit()
        except BaseException:
            self.abort()
            raise
        finally:
            self._spool.close()
            self._spool_path.unlink(missing_ok=True)
        self._done = True

    def abort(self) -> None:
        """Drop everything written; the target is untouched."""
        self._done = True
        self._spool.close()
        self._out.abort()
        self._spool_path.unlink(missing_ok=True)

    def __enter__(self) -> "NanoVectorWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
