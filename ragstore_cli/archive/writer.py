"""Write a `.ragstore` archive as a stream of batches, with bounded memory.

Design (see docs/archive-format.md): each member is compressed and hashed while it is written to a
spool folder next to the output (`.ragstore-spool-<pid>-<output tag>-XXXX`, so the next export to
the same output can remove what a SIGKILLed one left); `finish()` then writes the tar — manifest first, members after —
through `atomic.AtomicFile` (owner-only, temporary name `<output>.partial`) and publishes it. The manifest can come first because every size, checksum and
count is known by then; the cost is spool disk space about the size of the archive.

The output may also be a stream (`ragstore export -o -`: stdout, a pipe): the tar is written in
stream mode (`w|`, no seek, so a pipe takes it), from the spool in `spool_dir` (default: the system's
temporary folder), only once every member is complete; a failure before that leaves the stream
untouched, one during it leaves a tar cut short that every reader refuses (damage.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import numpy as np
import zstandard

from ragstore_cli import __version__
from ragstore_cli.atomic import OWNER_ONLY, AtomicFile
from ragstore_cli.archive.codec import (ZSTD_LEVEL_JSON, ZSTD_LEVEL_MATRIX, HashingWriter, encode_line,
                                        to_stored)
from ragstore_cli.archive.manifest import (DTYPE_SUFFIX, DTYPES, KIND_DOC_STATUS, KIND_EDGES, KIND_KV,
                                           KIND_NODES, KIND_VECTORS, MANIFEST_NAME, MANIFEST_SHA_NAME,
                                           MAX_LINE, MEMBER_IDS, MEMBER_JSONL, MEMBER_MATRIX, ROWS_PER_PART, Manifest,
                                           Member, Section, section_key)
from ragstore_cli.records import VectorBatch
from ragstore_cli.errors import DataError, OperationFailed, UsageError

F16_MAX = 65504.0          # the largest finite float16
F16_ROW_ERROR = 2.0 ** -10  # a row's float16 rounding error, relative to its norm, within which it "fits"
SPOOL_PREFIX = ".ragstore-spool-"
STREAM_NAME = "stdout"  # what the spool folders of an archive written to a stream are tagged with
Progress = Callable[[str, int, int], None]  # (section key, records added, stored bytes added)


def _output_key(output: Path) -> str:
    """A short fixed-length tag of the output name, so spool folders of one output can be found again."""
    return hashlib.sha256(output.name.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def spool_prefix(output: Path, pid: int) -> str:
    """`.ragstore-spool-<pid>-<output tag>-`: who spools for which output, readable after a SIGKILL."""
    return f"{SPOOL_PREFIX}{pid}-{_output_key(output)}-"


def remove_leftovers(output: Path, *, partial: bool = True) -> list[str]:
    """Remove what SIGKILLed exports to `output` left: spools of dead pids, then `<output>.partial`.

    Why here: a killed process runs no cleanup, so the next export to the same path does it. A live
    process's spool is never touched, and while one exists its `.partial` is left alone too.
    """
    from ragstore_cli.procs import pid_alive

    removed: list[str] = []
    key, live = _output_key(output), False
    for entry in os.scandir(output.parent):
        pid, _, rest = entry.name[len(SPOOL_PREFIX):].partition("-")
        if not entry.name.startswith(SPOOL_PREFIX) or not pid.isdigit() or not rest.startswith(key + "-"):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        if int(pid) == os.getpid() or pid_alive(int(pid)):
            live = True
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    if partial and not live and (leftover := output.with_name(output.name + ".partial")).is_file():
        leftover.unlink(missing_ok=True)
        removed.append(leftover.name)
    return removed


class _MemberFile:
    """One spooled member: zstd-compressed, hashed and counted as it is written."""

    def __init__(self, spool: Path, path: str, kind: str, section: str, level: int) -> None:
        self.path, self.kind, self.section = path, kind, section
        self.file = spool / path.replace("/", "__")
        self._fh = open(self.file, "wb")
        self._hashing = HashingWriter(self._fh)
        self._zw = zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(
            self._hashing, closefd=False, write_return_read=True)
        self.records = 0
        self.raw_size = 0

    def write(self, data: bytes, records: int) -> None:
        self._zw.write(data)
        self.raw_size += len(data)
        self.records += records

    def stored(self) -> int:
        return self._hashing.size

    def close(self, **extra: Any) -> Member:
        self._zw.flush(zstandard.FLUSH_FRAME)
        self._zw.close()
        self._fh.close()
        return Member(path=self.path, kind=self.kind, section=self.section, records=self.records,
                      size=self._hashing.size, raw_size=self.raw_size, sha256=self._hashing.sha.hexdigest(),
                      **extra)


class SectionWriter:
    """Writes the records of one section; batches are lists in the shapes of records.py."""

    def __init__(self, archive: "ArchiveWriter", section: Section) -> None:
        self.archive, self.section = archive, section
        self._member: _MemberFile | None = None
        if section.kind != KIND_VECTORS:
            self._member = archive._open_member(self._jsonl_path(), MEMBER_JSONL, section.key, ZSTD_LEVEL_JSON)
        self._part = 0
        self._ids: _MemberFile | None = None
        self._matrix: _MemberFile | None = None
        self._dtype = section.dtype or "float32"  # of the next parts: float32 once a vector misfits float16
        self._matrix_dtype = self._dtype
        self.closed = False

    def _jsonl_path(self) -> str:
        s = self.section
        if s.kind == KIND_KV:
            return f"kv/{s.namespace}.jsonl.zst"
        if s.kind == KIND_DOC_STATUS:
            return "doc_status.jsonl.zst"
        return f"graph/{s.namespace}/{'nodes' if s.kind == KIND_NODES else 'edges'}.jsonl.zst"

    def write(self, batch: Any) -> None:
        """Append one batch: list of (id, value) | GraphNode | GraphEdge, or a VectorBatch."""
        if self.closed:
            raise RuntimeError(f"section {self.section.key} is already closed")
        if self.section.kind == KIND_VECTORS:
            self._write_vectors(batch)
            return
        kind = self.section.kind
        if kind in (KIND_KV, KIND_DOC_STATUS):
            lines = [encode_line({"id": _id(k), "value": _obj(v, k)}) for k, v in batch]
        elif kind == KIND_NODES:
            lines = [encode_line({"id": _id(n.id), "properties": _obj(n.properties, n.id)}) for n in batch]
        else:
            lines = [encode_line({"source": _id(e.source), "target": _id(e.target),
                                  "properties": _obj(e.properties, e.source)}) for e in batch]
        _fits_lines(lines, self.section.key)
        assert self._member is not None
        before = self._member.stored()
        self._member.write(b"".join(lines), len(lines))
        self.section.records += len(lines)
        self.archive._report(self.section.key, len(lines), self._member.stored() - before)

    def _write_vectors(self, batch: VectorBatch) -> None:
        n = len(batch.ids)
        vectors = np.asarray(batch.vectors)
        if vectors.ndim != 2 or vectors.shape[0] != n or (batch.meta and len(batch.meta) != n):
            raise DataError(f"{self.section.key}: a batch has {n} ids but vectors of shape {vectors.shape}")
        if n == 0:
            return
        dim = int(vectors.shape[1])
        if self.section.dim is None:
            self.section.dim = dim
            self.archive._agree_dim(dim, self.section.key)
        elif dim != self.section.dim:
            raise DataError(f"{self.section.key}: vectors of dimension {dim} after {self.section.dim}")
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{self.section.key}: the vector of {batch.ids[bad]!r} is not finite (NaN/Inf)")
        stored = to_stored(vectors, self._dtype)
        if self._dtype == "float16":
            bad_row = float16_misfit(vectors, stored)
            if bad_row is not None:
                self._go_lossless(batch.ids[bad_row], vectors[bad_row])
                stored = to_stored(vectors, self._dtype)
        row_bytes = dim * int(DTYPES[self._dtype][-1])
        start = 0
        while start < n:
            if self._ids is None:
                self._open_part()
            assert self._ids is not None and self._matrix is not None
            take = min(n - start, ROWS_PER_PART - self._ids.records)
            metas = batch.meta[start:start + take] if batch.meta else [{}] * take
            ids = batch.ids[start:start + take]
            before = self._ids.stored() + self._matrix.stored()
            lines = [encode_line({"id": _id(i), "meta": _obj(m, i)}) for i, m in zip(ids, metas)]
            _fits_lines(lines, self.section.key)
            self._ids.write(b"".join(lines), take)
            self._matrix.write(stored[start * row_bytes:(start + take) * row_bytes], take)
            self.section.records += take
            self.archive._report(self.section.key, take, self._ids.stored() + self._matrix.stored() - before)
            start += take
            if self._ids.records >= ROWS_PER_PART:
                self._close_part()

    def _go_lossless(self, ident: str, vector: np.ndarray) -> None:
        """Store this section's vectors as float32 from here on: the part being written ends early (its
        rows, all float16-safe, stay float16) and the next ones are lossless (docs/archive-format.md)."""
        if self._ids is not None:
            self._close_part()
        self._dtype = "float32"
        peak = float(np.abs(vector.astype(np.float64)).max())
        why = "beyond float16's range" if peak > F16_MAX else "too small for float16's precision"
        self.archive.notes.append(f"{self.section.key}: the vector of {str(ident)[:80]!r} has values {why} "
                                  f"(up to {peak:.3g}); its parts from {self._part:06d} on are stored as float32 "
                                  "(lossless)")

    def _open_part(self) -> None:
        base = f"vectors/{self.section.namespace}/{self._part:06d}"
        dtype = self._dtype
        self._matrix_dtype = dtype
        self._ids = self.archive._open_member(f"{base}.ids.jsonl.zst", MEMBER_IDS, self.section.key, ZSTD_LEVEL_JSON)
        self._matrix = self.archive._open_member(f"{base}.{DTYPE_SUFFIX[dtype]}.zst", MEMBER_MATRIX,
                                                 self.section.key, ZSTD_LEVEL_MATRIX)
        self._part += 1

    def _close_part(self) -> None:
        assert self._ids is not None and self._matrix is not None
        self.archive._close_member(self._ids)
        self.archive._close_member(self._matrix, dtype=self._matrix_dtype, dim=self.section.dim)
        self._ids = self._matrix = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._member is not None:
            self.archive._close_member(self._member)
        elif self._ids is not None:
            self._close_part()

    def __enter__(self) -> "SectionWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ArchiveWriter:
    """Build one archive. Open sections in the order they should appear; call finish() once."""

    def __init__(self, output: Path | BinaryIO, *, workspace: str, backends: dict[str, str] | None = None,
                 embedding_model: str | None = None, embedding_dim: int | None = None,
                 vector_dtype: str = "float32", progress: Progress | None = None, overwrite: bool = True,
                 spool_dir: Path | None = None) -> None:
        if vector_dtype not in DTYPES:
            raise UsageError(f"unknown vector dtype {vector_dtype!r}; expected float32 or float16")
        self.stream: BinaryIO | None = None
        self.written = 0  # bytes of the archive written to the stream
        if isinstance(output, (str, os.PathLike)):
            self.output = Path(output)
            if self.output.exists() and self.output.is_dir():
                raise UsageError(f"{self.output} is a directory")
            if not self.output.parent.is_dir():
                raise UsageError(f"folder {self.output.parent} does not exist")
            tagged = self.output
        else:
            from ragstore_cli.archive.spool import spool_folder

            self.stream = output
            tagged = spool_folder(spool_dir) / STREAM_NAME
            self.output = tagged
        self.vector_dtype = vector_dtype
        self.overwrite = overwrite
        self.manifest = Manifest(
            ragstore_version=__version__,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            source={"workspace": workspace, "backends": dict(backends or {}), "not_carried": {}},
            embedding={"model": embedding_model, "dim": embedding_dim},
        )
        self._progress = progress
        self.notes: list[str] = []  # what the caller should tell the user (vectors stored losslessly)
        remove_leftovers(tagged, partial=self.stream is None)
        self._spool = Path(tempfile.mkdtemp(prefix=spool_prefix(tagged, os.getpid()), dir=tagged.parent))
        self._sections: list[SectionWriter] = []
        self._open: list[_MemberFile] = []
        self._files: dict[str, Path] = {}

    # ------------------------------------------------------------------ sections
    def kv(self, namespace: str) -> SectionWriter:
        return self._section(KIND_KV, namespace)

    def doc_status(self) -> SectionWriter:
        return self._section(KIND_DOC_STATUS, "doc_status")

    def graph_nodes(self, namespace: str = "chunk_entity_relation") -> SectionWriter:
        return self._section(KIND_NODES, namespace)

    def graph_edges(self, namespace: str = "chunk_entity_relation") -> SectionWriter:
        return self._section(KIND_EDGES, namespace)

    def vectors(self, namespace: str) -> SectionWriter:
        return self._section(KIND_VECTORS, namespace)

    def not_carried(self, section: str, fields: Iterable[str]) -> None:
        """Record fields the source backend could not carry for a section (e.g. Nano drops entity_type)."""
        self.manifest.source["not_carried"][section] = sorted(set(fields))

    def _section(self, kind: str, namespace: str) -> SectionWriter:
        key = section_key(kind, namespace)
        if any(s.section.key == key for s in self._sections):
            raise RuntimeError(f"section {key} opened twice")
        section = Section(key=key, kind=kind, namespace=namespace,
                          dtype=self.vector_dtype if kind == KIND_VECTORS else None)
        self.manifest.sections.append(section)
        writer = SectionWriter(self, section)
        self._sections.append(writer)
        return writer

    # ------------------------------------------------------------------ members
    def _open_member(self, path: str, kind: str, section: str, level: int) -> _MemberFile:
        member = _MemberFile(self._spool, path, kind, section, level)
        self._open.append(member)
        return member

    def _close_member(self, member: _MemberFile, **extra: Any) -> None:
        self.manifest.members.append(member.close(**extra))
        self._files[member.path] = member.file
        self._open.remove(member)

    def _agree_dim(self, dim: int, key: str) -> None:
        known = self.manifest.embedding.get("dim")
        if known is None:
            self.manifest.embedding["dim"] = dim
        elif known != dim:
            raise DataError(f"{key}: vectors have dimension {dim}, the workspace's embedding dimension is {known}")

    def _report(self, key: str, records: int, stored: int) -> None:
        if self._progress is not None:
            self._progress(key, records, stored)

    # ------------------------------------------------------------------ finish / abort
    def finish(self) -> Manifest:
        """Close every section, check the manifest, write the tar and rename it into place."""
        try:
            for section in self._sections:
                section.close()
            for s in self.manifest.sections:
                if s.kind == KIND_VECTORS and s.dim is None:
                    s.dim = self.manifest.embedding.get("dim")
            self.manifest.check()
            if self.stream is not None:
                counted = _Counted(self.stream)
                self._write_tar(counted)
                self.written = counted.size
                return self.manifest
            partial = self.output.with_name(self.output.name + ".partial")
            # The archive holds a whole workspace: owner-only, like a database dump.
            try:
                with AtomicFile(self.output, mode=OWNER_ONLY, tmp=partial, replace=self.overwrite) as out:
                    self._write_tar(out.file)
            except FileExistsError:
                raise UsageError(f"{self.output} appeared while exporting; it was left as it is "
                                 "(pass --force to replace it)") from None
            return self.manifest
        finally:
            self.abort()

    def _write_tar(self, fh: Any) -> None:
        manifest_bytes = self.manifest.to_json()

        digest = (hashlib.sha256(manifest_bytes).hexdigest() + "  " + MANIFEST_NAME + "\n").encode()
        mtime = int(time.time())
        with tarfile.open(fileobj=fh, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, data in ((MANIFEST_NAME, manifest_bytes), (MANIFEST_SHA_NAME, digest)):
                tar.addfile(_info(name, len(data), mtime), io.BytesIO(data))
            for member in self.manifest.members:
                with open(self._files[member.path], "rb") as src:
                    tar.addfile(_info(member.path, member.size, mtime), src)

    def abort(self) -> None:
        """Drop the spool and any partial output (finish() calls this on its way out)."""
        for member in list(self._open):
            try:
                member._fh.close()
            except OSError:
                pass
        self._open.clear()
        shutil.rmtree(self._spool, ignore_errors=True)

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()


class _Counted:
    """A stream that counts the bytes written through it (an archive on a pipe has no size to stat),
    writes all of each block (a raw stream may take part of it), and says in one line that the
    reader went away: a broken pipe here is the archive's reader, not a server (connect/failures.py
    would take a bare BrokenPipeError for a lost connection)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.size = stream, 0

    def write(self, data: bytes) -> int:
        view, closed = memoryview(data), False
        while view:
            try:
                sent = self.stream.write(view)
            except BrokenPipeError:
                closed = True
                break
            sent = len(view) if sent is None else sent
            view = view[sent:]
            self.size += sent
        if closed:
            raise OperationFailed(f"the reader of the archive stream went away (broken pipe) after {self.size} "
                                  "bytes: what it received is incomplete, and an import refuses it")
        return len(data)


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uname = info.gname = ""
    return info


def float16_misfit(vectors: np.ndarray, stored: bytes) -> int | None:
    """The first row whose float16 copy (`stored`) is not within float16's own rounding of the vector:
    past float16's range (inf) or so small that its values go subnormal or to zero. None if all fit."""
    n, dim = vectors.shape
    original = vectors.astype(np.float64)
    half = np.frombuffer(stored, dtype="<f2").reshape(n, dim).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.einsum("ij,ij->i", half - original, half - original)
        scale = np.einsum("ij,ij->i", original, original)
    bad = ~np.isfinite(half).all(axis=1) | ~(error <= scale * F16_ROW_ERROR ** 2)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _fits_lines(lines: list[bytes], key: str) -> None:
    """Refuse a record whose JSON line a reader would refuse (MAX_LINE)."""
    longest = max(map(len, lines), default=0)
    if longest >= MAX_LINE:
        raise DataError(f"{key}: a record is {longest} bytes as a JSON line; the archive format carries "
                        f"lines under {MAX_LINE >> 20} MiB")


def _id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(f"a record id must be non-empty text, got {value!r}"[:200])
    return value


def _obj(value: Any, key: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"record {str(key)[:80]!r} is not a JSON object")
    return value
