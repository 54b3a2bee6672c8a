"""Atomic, streaming writer of NanoVectorDB files (re-exported by `nanofile`; format in its docstring).

Records go to a tmp file in the target's folder as they come; matrix rows go to a spool file and are
base64-appended at commit, so memory stays one batch. Commit = fsync + os.replace + fsync of the folder;
any error (or `abort()`) leaves the target untouched. Tmp names follow LightRAG's own pattern
(`<file>.tmp.<pid>.<thread>.<ns>`), so LightRAG's orphan reaper also cleans up after a crash.
"""

from __future__ import annotations

import binascii
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ragstore_cli.atomic import publish
from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import encode_records, normalise

_B64_BLOCK = 3 << 20  # bytes of matrix per base64 write (multiple of 3: no padding mid-stream)


class NanoVectorWriter:
    """Writes a NanoVectorDB file batch by batch; visible only after `commit()` (atomic, fsynced)."""

    def __init__(self, path: str | os.PathLike[str], dim: int, *, additional_data: Any = None) -> None:
        if dim <= 0:
            raise DataError(f"embedding_dim must be positive, got {dim}")
        self.path = Path(path)
        self.dim = dim
        self.count = 0
        self.additional_data = additional_data  # written at commit; may be set until then
        # same pattern as LightRAG's own tmp files, so its orphan reaper cleans up after a crash
        suffix = f".tmp.{os.getpid()}.{threading.get_ident()}.{time.time_ns()}"
        self._tmp = self.path.with_name(self.path.name + suffix)
        self._spool_path = self.path.with_name(self.path.name + suffix + ".matrix")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self._tmp, "wb")
        self._spool = open(self._spool_path, "w+b")
        self._out.write(b'{"embedding_dim": %d, "data": [' % dim)
        self._done = False

    def add(self, ids: Sequence[str], matrix_rows: np.ndarray, metas: Sequence[dict[str, Any]] | None = None,
            vector_strings: Sequence[str | None] | None = None) -> None:
        """Append records whose matrix rows are already L2-normalised; `None` strings omit `vector`."""
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
        strings = encode_records(vectors) if keep_vector else None
        self.add(ids, rows, metas, strings)

    def commit(self) -> None:
        """Finish the JSON, fsync, and atomically replace the target."""
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
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        finally:
            self._spool.close()
            _unlink(self._spool_path)
        self._done = True

    def abort(self) -> None:
        """Drop everything written; the target is untouched."""
        self._done = True
        for fh in (self._out, self._spool):
            fh.close()
        _unlink(self._tmp)
        _unlink(self._spool_path)

    def __enter__(self) -> "NanoVectorWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


