"""The NanoVectorDB codec: the streaming reader (here) and the writer (`nanowriter`, re-exported).

Why in `vectors/`: `ragstore vectors` reads and rewrites any NanoVectorDB file, anywhere, and the
files backend reads and writes a working dir's through the same code; this package knows the format
only (numpy in, bytes out; writes go through `atomic.AtomicFile`). What is LightRAG's — file names,
the fields each namespace keeps, the stamps — is the files backend's (backends/files/nano.py).

The format (docs/lightrag-formats.md, "NanoVectorDB files"): one JSON object `{"embedding_dim": D,
"data": [record...], "matrix": "<base64>"}` (+ optional `additional_data`), keys in any order.
`data[i]` pairs with matrix row i; the matrix holds L2-normalised little-endian float32 rows; each
record holds `__id__`, `__created_at__`, `__write_seq__` (LightRAG 1.5.x), its meta fields and, in
files recent LightRAG releases wrote, `vector` = base64(zlib(float16 of the raw embedding)).

API (for `ragstore vectors` and the files backend):

    nf = NanoVectorFile(path, expected_dim=None)   # one numpy pass over the file, nothing parsed;
                                                   # keeps its descriptor: a rename over the path
                                                   # does not change what it reads (close() it)
    nf.embedding_dim, nf.count, nf.matrix_rows, nf.parts, nf.additional_data
    for batch in nf.batches(1000, vectors="raw", on_error="stop"):   # NanoBatch
        batch.ids, batch.vectors (float32 raw), batch.meta (record minus __id__/vector),
        batch.matrix (normalised rows, with with_matrix=True), batch.from_matrix, batch.problems,
        batch.vector_strings (with keep_vector_strings=True)

    with NanoVectorWriter(path, dim) as w:           # atomic.AtomicFile: tmp sibling, fsync, rename
        w.add_vectors(ids, raw_vectors, metas)       # computes matrix rows and `vector` strings
        w.add(ids, matrix_rows, metas, vector_strings)  # low level: rows already normalised

Memory is bounded by the batch size: records are parsed a batch at a time from their byte spans
(found by `jsonscan`) and matrix rows are base64-decoded from their exact offsets. `vectors="raw"`
decodes each record's `vector`; a record without one falls back to its (normalised) matrix row and
is flagged in `from_matrix` (the matrix is read only for batches that need it). `on_error="skip"`
leaves out records whose JSON or `vector` is corrupt and lists them in `problems`; `"stop"` raises
DataError naming the first one (with `stop_hint`, the caller's advice, as its hint).
"""

from __future__ import annotations

import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import decode_records
from ragstore_cli.vectors.jsonscan import TopLevel, scan_top_level
from ragstore_cli.vectors.nanowriter import NanoVectorWriter

__all__ = ["NanoBatch", "NanoVectorFile", "NanoVectorWriter", "RecordProblem", "SKIP_HINT"]

SKIP_HINT = "use --on-error skip to leave such records out"  # the `ragstore vectors` commands' advice

VectorSource = Literal["raw", "matrix", "none"]
PARSE_BYTES = 1 << 20  # record text parsed at a time
SCAN_CHUNK = 1 << 20  # bytes per numpy pass of the open-time scan (larger chunks cost memory, not time)
OnError = Literal["stop", "skip"]


@dataclass
class RecordProblem:
    index: int
    id: str | None
    problem: str

    def __str__(self) -> str:
        return f"record {self.index} ({self.id or 'no id'}): {self.problem}"


@dataclass
class NanoBatch:
    """Consecutive records of a NanoVectorDB file, starting at record `start`."""

    start: int
    ids: list[str]
    meta: list[dict[str, Any]]
    vectors: np.ndarray  # float32 (n, dim); empty (n, 0) when vectors="none"
    matrix: np.ndarray | None = None  # normalised rows when with_matrix=True
    from_matrix: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    vector_strings: list[str | None] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


class NanoVectorFile:
    """A NanoVectorDB file, scanned once on open; read it with `batches()`."""

    def __init__(self, path: str | os.PathLike[str], *, expected_dim: int | None = None,
                 chunk_size: int = SCAN_CHUNK, stop_hint: str | None = None) -> None:
        self.path = Path(path)
        self.stop_hint = stop_hint
        self._fd = -1
        try:
            # one descriptor for the object's life: a writer replacing the file (LightRAG renames its
            # tmp over it) cannot mix two versions into one read
            self._fd = os.open(self.path, os.O_RDONLY)
            with open(self._fd, "rb", closefd=False) as f:
                self._top: TopLevel = scan_top_level(f, chunk_size=chunk_size, label=str(self.path))
                self.embedding_dim = self._read_dim(f)
                self.additional_data = self._read_small(f, "additional_data")
        except OSError as exc:
            self.close()
            raise DataError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        except BaseException:
            self.close()
            raise
        if expected_dim is not None and expected_dim != self.embedding_dim:
            raise DataError(f"{self.path}: embedding_dim is {self.embedding_dim}, expected {expected_dim} "
                            "(LightRAG refuses to load a file whose dimension differs from EMBEDDING_DIM)")
        self._data_span = self._span("data", b"[", b"]")
        self._record_ends = self._top.object_ends["data"]
        self.count = len(self._record_ends) if self._data_span[1] > self._data_span[0] else 0
        self._matrix_span = self._span("matrix", b'"', b'"')
        self._matrix_span = (self._matrix_span[0] + 1, self._matrix_span[1] - 1)
        mlen = self._matrix_span[1] - self._matrix_span[0]
        row_bytes = 4 * self.embedding_dim
        if mlen % 4:
            raise DataError(f"{self.path}: matrix is not valid base64 ({mlen} characters)")
        self._matrix_bytes = mlen // 4 * 3 - self._padding()
        if self._matrix_bytes % row_bytes:
            raise DataError(f"{self.path}: matrix holds {self._matrix_bytes} bytes, not a whole number of "
                            f"{self.embedding_dim}-dim float32 rows")
        self.matrix_rows = self._matrix_bytes // row_bytes
        self.size = self._top.size
        self.key_order = list(self._top.key_order)
        self.parts = {"data": self._data_span[1] - self._data_span[0], "matrix": mlen + 2}
        self.parts["other"] = self.size - sum(self.parts.values())

    # ------------------------------------------------------------------ open-time helpers
    def _span(self, key: str, first: bytes, last: bytes) -> tuple[int, int]:
        if key not in self._top.values:
            raise DataError(f"{self.path}: no {key!r} key (not a NanoVectorDB file?)")
        start, stop = self._top.values[key]
        head, tail = self._pread(start, 1), self._pread(stop - 1, 1)
        if head != first or tail != last:
            kind = "an array" if first == b"[" else "a string"
            raise DataError(f"{self.path}: {key!r} is not {kind}")
        return start, stop

    def _read_dim(self, f: Any) -> int:
        if "embedding_dim" not in self._top.values:
            raise DataError(f"{self.path}: no 'embedding_dim' key (not a NanoVectorDB file?)")
        dim = self._read_small(f, "embedding_dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
            raise DataError(f"{self.path}: embedding_dim must be a positive integer, got {dim!r}")
        return dim

    def _read_small(self, f: Any, key: str, limit: int = 64 << 20) -> Any:
        if key not in self._top.values:
            return None
        start, stop = self._top.values[key]
        if stop - start > limit:
            raise DataError(f"{self.path}: {key!r} is {stop - start} bytes; refusing to load it")
        f.seek(start)
        try:
            return json.loads(f.read(stop - start))
        except ValueError as exc:
            raise DataError(f"{self.path}: {key!r} is not valid JSON ({exc})") from None

    def _padding(self) -> int:
        start, stop = self._matrix_span
        if stop - start == 0:
            return 0
        return self._pread(stop - 2, 2).count(b"=")

    # ------------------------------------------------------------------ reading
    def check_alignment(self) -> None:
        """DataError unless every record has its matrix row (LightRAG pairs them by position)."""
        if self.matrix_rows != self.count:
            raise DataError(f"{self.path}: matrix has {self.matrix_rows} rows but data has {self.count} records")

    def _pread(self, offset: int, size: int) -> bytes:
        parts = []
        while size > 0:
            piece = os.pread(self._fd, size, offset)
            if not piece:
                raise DataError(f"{self.path}: file shrank while being read")
            parts.append(piece)
            offset += len(piece)
            size -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        """Release the file descriptor (also done when the object is collected)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "NanoVectorFile":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def read_matrix(self, start: int, stop: int) -> np.ndarray:
        """Normalised float32 rows [start, stop) of the matrix, decoded from their exact offsets."""
        stop = min(stop, self.matrix_rows)
        dim = self.embedding_dim
        if stop <= start:
            return np.zeros((0, dim), dtype=np.float32)
        row_bytes = 4 * dim
        b0, b1 = start * row_bytes, stop * row_bytes
        c0, c1 = b0 // 3 * 4, -(-b1 // 3) * 4
        text = self._pread(self._matrix_span[0] + c0, min(c1, self._matrix_span[1] - self._matrix_span[0]) - c0)
        try:
            raw = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise DataError(f"{self.path}: corrupt base64 in matrix rows {start}-{stop - 1} ({exc})") from None
        skip = b0 - b0 // 3 * 3
        return np.frombuffer(raw, dtype="<f4", count=(stop - start) * dim, offset=skip).reshape(-1, dim).copy()

    def batches(self, batch_size: int = 1000, *, vectors: VectorSource = "raw", with_matrix: bool = False,
                on_error: OnError = "stop", keep_vector_strings: bool = False) -> Iterator[NanoBatch]:
        """Records in file order, `batch_size` at a time (see the module docstring).

        `vector_strings` is filled with keep_vector_strings=True. Unless they or raw vectors are asked
        for, the `vector` members are cut out before parsing, which saves building a string per record.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        strip = not (vectors == "raw" or keep_vector_strings)
        needs_matrix = with_matrix or vectors == "matrix"
        if needs_matrix or vectors == "raw":  # raw: a record without `vector` takes its matrix row
            self.check_alignment()
        ends = self._record_ends
        cursor = self._data_span[0] + 1
        for b0 in range(0, self.count, batch_size):
            b1 = min(b0 + batch_size, self.count)
            records: list[Any] = []
            g0 = b0
            while g0 < b1:  # parsed PARSE_BYTES at a time: the raw text of a whole batch is never held
                g1 = min(max(int(np.searchsorted(ends, cursor + PARSE_BYTES, side="right")), g0 + 1), b1)
                stop = int(ends[g1 - 1])
                blob = self._pread(cursor, stop - cursor)
                records += self._parse_records(blob, ends[g0:g1] - cursor, g0, strip)
                cursor, g0 = stop, g1
            matrix = self.read_matrix(b0, b1) if needs_matrix else None
            batch = self._batch(b0, b1, records, matrix, vectors, with_matrix, on_error)
            if not keep_vector_strings:
                batch.vector_strings = []  # not held while the caller holds the batch
            yield batch
        tail = self._pread(cursor, self._data_span[1] - 1 - cursor).strip(b" \t\r\n")
        if tail and tail != b",":
            raise DataError(f"{self.path}: data[{self.count}] is not a JSON object")

    def _parse_records(self, blob: bytes, local_ends: np.ndarray, first: int, strip: bool = False) -> list[Any]:
        body = _strip_vectors(blob) if strip else blob
        skip = len(body) - len(body.lstrip(b" \t\r\n,"))
        try:
            items = json.loads(b"".join((b"[", memoryview(body)[skip:], b"]")))
            if len(items) == len(local_ends):
                return items
        except ValueError:
            pass
        # slow path: one record at a time, so that the bad one can be named
        out: list[Any] = []
        prev = 0
        for k, end in enumerate(local_ends.tolist()):
            piece = blob[prev:end].lstrip(b" \t\r\n,")
            prev = end
            try:
                out.append(json.loads(piece))
            except ValueError as exc:
                out.append(RecordProblem(first + k, None, f"malformed JSON ({exc.args[0][:80]})"))
        return out

    def _batch(self, start: int, stop: int, records: list[Any], matrix: np.ndarray | None, vectors: VectorSource,
               with_matrix: bool, on_error: OnError) -> NanoBatch:
        problems: list[RecordProblem] = []
        keep: list[int] = []
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        strings: list[str | None] = []
        for k, rec in enumerate(records):
            if isinstance(rec, RecordProblem):
                problems.append(rec)
                continue
            if not isinstance(rec, dict):
                problems.append(RecordProblem(start + k, None, f"is a {type(rec).__name__}, not an object"))
                continue
            rid = rec.pop("__id__", None)
            if not isinstance(rid, str):
                problems.append(RecordProblem(start + k, None, "has no string '__id__'"))
                continue
            strings.append(rec.pop("vector", None))
            ids.append(rid)
            metas.append(rec)
            keep.append(k)
        sel = np.asarray(keep, dtype=np.int64)
        rows = matrix[sel] if matrix is not None else None
        from_matrix = np.zeros(len(ids), dtype=bool)
        dim = self.embedding_dim
        if vectors == "raw":
            vecs, ok, bad = decode_records(strings, dim)
            missing = np.fromiter((s is None for s in strings), bool, len(strings))
            corrupt = sorted(i for i in bad if not missing[i])
            for i in corrupt:
                problems.append(RecordProblem(start + keep[i], ids[i], bad[i]))
            from_matrix = missing
            if missing.any():
                fallback = rows if rows is not None else self.read_matrix(start, stop)[sel]
                vecs[missing] = fallback[missing]
            if corrupt:
                good = np.ones(len(ids), dtype=bool)
                good[corrupt] = False
                ids = [x for x, g in zip(ids, good) if g]
                metas = [x for x, g in zip(metas, good) if g]
                strings = [x for x, g in zip(strings, good) if g]
                vecs, from_matrix = vecs[good], from_matrix[good]
                rows = rows[good] if rows is not None else None
        elif vectors == "matrix":
            vecs = rows  # type: ignore[assignment]
        else:
            vecs = np.zeros((len(ids), 0), dtype=np.float32)
        problems.sort(key=lambda p: p.index)
        if problems and on_error == "stop":
            raise DataError(f"{self.path}: {problems[0]}", hint=self.stop_hint)
        return NanoBatch(start, ids, metas, vecs, rows if with_matrix else None, from_matrix, strings, problems)


_VECTOR_KEY = b'"vector":'
_WS = b" \t\r\n"


def _strip_vectors(blob: bytes) -> bytes:
    """`blob` without its `"vector": "<base64>"` members, so json.loads need not build those strings.

    The byte sequence `"vector":` can only be a key (inside a JSON string every quote is escaped).
    Anything unexpected is left in place; the caller falls back to parsing the original blob.
    """
    out: list[bytes] = []
    pos, size = 0, len(blob)
    while (key := blob.find(_VECTOR_KEY, pos)) >= 0:
        q = key + len(_VECTOR_KEY)
        while q < size and blob[q] in _WS:
            q += 1
        if q >= size or blob[q] != 0x22:  # not a string value: keep it
            out.append(blob[pos:q])
            pos = q
            continue
        end = blob.find(b'"', q + 1)
        if end < 0:
            break
        before = key - 1
        while before >= 0 and blob[before] in _WS:
            before -= 1
        if before >= 0 and blob[before] == 0x2C:  # `, "vector": "..."`
            out.append(blob[pos:before])
            pos = end + 1
        elif before >= 0 and blob[before] == 0x7B:  # `{"vector": "...", ...`: drop the comma after it
            out.append(blob[pos:key])
            nxt = end + 1
            while nxt < size and blob[nxt] in _WS:
                nxt += 1
            pos = nxt + 1 if nxt < size and blob[nxt] == 0x2C else end + 1
        else:
            out.append(blob[pos:end + 1])
            pos = end + 1
    out.append(blob[pos:])
    return b"".join(out)
