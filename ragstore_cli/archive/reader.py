"""Read a `.ragstore` archive as one forward stream, checking everything on the way.

The same code serves `verify` (read to the end, keep nothing) and `import` (hand batches to a
target): both check member order and names, link members, sizes, SHA-256 of the stored bytes,
JSON shape of every line, row counts and vector dimension/finiteness. `import` runs a full verify
pass before its load pass, so nothing is written from an archive that fails anywhere.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import zstandard

from ragstore_cli.archive.codec import HashingReader, decode_line, parse_object
from ragstore_cli.archive.manifest import (DTYPES, KIND_DOC_STATUS, KIND_EDGES, KIND_KV, KIND_NODES, KIND_VECTORS,
                                           MANIFEST_NAME, MANIFEST_SHA_NAME, MAX_MANIFEST_BYTES, MEMBER_IDS,
                                           Manifest, Member, Section, check_member_path)
from ragstore_cli.backends.base import DEFAULT_BATCH, GraphEdge, GraphNode, VectorBatch
from ragstore_cli.errors import DataError, UsageError

Progress = Callable[[str, int, int], None]  # (section key, records, stored bytes)
_MAX_LINE = 256 * 1024 * 1024
_TAR_BUFFER = 1 << 16  # tarfile reads a stream in blocks of this size; its 10 KiB default costs ~15 % more per byte


@dataclass
class SectionStats:
    records: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ArchiveReader:
    """Open an archive file; `manifest` is read and checked at once, data on demand."""

    def __init__(self, path: Path, *, progress: Progress | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"archive {self.path} does not exist or is not a file")
        self._progress = progress
        self.manifest_sha256 = ""  # identifies the archive (ledger, import id)
        self.manifest = self._read_manifest()

    # ------------------------------------------------------------------ manifest
    def _open_tar(self) -> tuple[Any, tarfile.TarFile]:
        fh = open(self.path, "rb")
        try:
            return fh, tarfile.open(fileobj=fh, mode="r|", bufsize=_TAR_BUFFER)
        except (tarfile.TarError, EOFError, OSError):
            fh.close()
            raise DataError(f"{self.path.name} is not a ragstore archive (not a tar stream)") from None

    def _read_manifest(self) -> Manifest:
        fh, tar = self._open_tar()
        with fh:
            first = self._next(tar)
            if first is None or first.name != MANIFEST_NAME:
                raise DataError(f"{self.path.name} is not a ragstore archive (first member is not {MANIFEST_NAME})")
            raw = self._small(tar, first)
            second = self._next(tar)
            if second is None or second.name != MANIFEST_SHA_NAME:
                raise DataError(f"archive is truncated or damaged: {MANIFEST_SHA_NAME} missing after the manifest")
            self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
            expected = f"{self.manifest_sha256}  {MANIFEST_NAME}\n".encode()
            if self._small(tar, second) != expected:
                raise DataError("archive manifest is damaged: its SHA-256 does not match manifest.json.sha256")
            return Manifest.parse(raw)

    def _small(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
        if info.size > MAX_MANIFEST_BYTES:
            raise DataError(f"archive member {info.name} is implausibly large for a manifest")
        src = tar.extractfile(info)
        assert src is not None
        return _read_exact(_TarStream(src, info.name), info.size, info.name)

    def _next(self, tar: tarfile.TarFile) -> tarfile.TarInfo | None:
        try:
            info = tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"archive is truncated or damaged ({_short(exc)})") from None
        if info is None:
            return None
        check_member_path(info.name)
        if info.issym() or info.islnk():
            raise DataError(f"archive member {info.name!r} is a link; links are refused")
        if not info.isreg():
            raise DataError(f"archive member {info.name!r} is not a regular file")
        return info

    # ------------------------------------------------------------------ data
    def sections(self, batch_size: int = DEFAULT_BATCH) -> Iterator["SectionReader"]:
        """The sections in archive order; consume each one's batches() before taking the next."""
        fh, tar = self._open_tar()
        with fh:
            for _ in range(2):  # manifest and its checksum, already checked
                self._next(tar)
            members = list(self.manifest.members)
            by_section: dict[str, list[Member]] = {}
            for m in members:
                by_section.setdefault(m.section, []).append(m)
            order: list[str] = []
            for m in members:
                if m.section not in order:
                    order.append(m.section)
            sections = {s.key: s for s in self.manifest.sections}
            # sections with no members (an empty vector namespace) still show up, with nothing to read
            for s in self.manifest.sections:
                if s.key not in order:
                    yield SectionReader(self, tar, s, [], batch_size)
            for key in order:
                reader = SectionReader(self, tar, sections[key], by_section[key], batch_size)
                yield reader
                reader.skip()  # a caller that did not read everything still advances the stream
            extra = self._next(tar)
            if extra is not None:
                raise DataError(f"archive has a member the manifest does not list: {extra.name!r}")

    def verify(self) -> dict[str, SectionStats]:
        """Read everything and check it; returns per-section statistics."""
        stats: dict[str, SectionStats] = {}
        for section in self.sections():
            st = stats.setdefault(section.section.key, SectionStats())
            for batch in section.batches():
                st.records += len(batch)
            st.stored_bytes = sum(m.size for m in section.members)
            st.raw_bytes = sum(m.raw_size for m in section.members)
        return stats


class SectionReader:
    """Batches of one section, decoded into the shapes of backends/base.py."""

    def __init__(self, archive: ArchiveReader, tar: tarfile.TarFile, section: Section,
                 members: list[Member], batch_size: int) -> None:
        self.archive, self.tar, self.section, self.members = archive, tar, section, members
        self.batch_size = max(1, batch_size)
        self._started = False

    @property
    def key(self) -> str:
        return self.section.key

    def batches(self) -> Iterator[Any]:
        """list[(id, value)] | list[GraphNode] | list[GraphEdge] | VectorBatch, until the section ends."""
        if self._started:
            raise RuntimeError(f"section {self.key} was already read")
        self._started = True
        total = 0
        if self.section.kind == KIND_VECTORS:
            pending_ids: list[tuple[str, dict[str, Any]]] | None = None
            for member in self.members:
                if member.kind == MEMBER_IDS:
                    pending_ids = [rec for batch in self._jsonl(member) for rec in batch]
                    continue
                assert pending_ids is not None
                for batch in self._matrix(member, pending_ids):
                    total += len(batch)
                    yield batch
                pending_ids = None
        else:
            for member in self.members:
                for batch in self._jsonl(member):
                    total += len(batch)
                    yield batch
        if total != self.section.records:
            raise DataError(f"archive counts disagree for {self.key}: manifest says {self.section.records}, "
                            f"members hold {total}")

    def skip(self) -> None:
        if not self._started:
            for _ in self.batches():
                pass

    # ------------------------------------------------------------------ members
    def _open_member(self, member: Member) -> tuple[tarfile.TarInfo, HashingReader]:
        info = self.archive._next(self.tar)
        if info is None:
            raise DataError(f"archive is truncated: member {member.path!r} is missing")
        if info.name != member.path:
            raise DataError(f"archive member {info.name!r} found where the manifest lists {member.path!r}")
        if info.size != member.size:
            raise DataError(f"archive member {member.path!r} is {info.size} bytes, the manifest says {member.size}")
        src = self.tar.extractfile(info)
        assert src is not None
        return info, HashingReader(_TarStream(src, member.path), info.size)

    def _finish_member(self, member: Member, hashing: HashingReader, raw_size: int, records: int) -> None:
        hashing.drain()
        if hashing.sha.hexdigest() != member.sha256:
            raise DataError(f"archive member {member.path!r} is damaged: SHA-256 mismatch")
        if raw_size != member.raw_size:
            raise DataError(f"archive member {member.path!r} decompresses to {raw_size} bytes, "
                            f"the manifest says {member.raw_size}")
        if records != member.records:
            raise DataError(f"archive counts disagree in {member.path!r}: {records} records, "
                            f"the manifest says {member.records}")
        if self.archive._progress is not None:
            self.archive._progress(self.key, 0, member.size)

    def _jsonl(self, member: Member) -> Iterator[list[Any]]:
        _, hashing = self._open_member(member)
        decoder = _decompressor(hashing, member.path)
        kind = self.section.kind if member.kind != MEMBER_IDS else MEMBER_IDS
        shape, fast = _SHAPES[kind], _FAST_SHAPES[kind]
        batch: list[Any] = []
        records = 0
        for lines, ended in _line_blocks(decoder, member.path, _MAX_LINE):
            for line in lines:
                records += 1
                if not ended:
                    raise DataError(f"archive member {member.path!r} line {records}: no line end (truncated?)")
                obj = parse_object(line)
                item = fast(obj) if obj is not None else None
                if item is None:  # the checked way, which names the line and what is wrong with it
                    where = f"archive member {member.path!r} line {records}"
                    item = shape(decode_line(line + b"\n", where), where)
                batch.append(item)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
        self._finish_member(member, hashing, decoder.total, records)

    def _matrix(self, member: Member, ids: list[tuple[str, dict[str, Any]]]) -> Iterator[VectorBatch]:
        _, hashing = self._open_member(member)
        decoder = _decompressor(hashing, member.path)
        dim = int(member.dim or 0)
        dtype = np.dtype(DTYPES[member.dtype or "float32"])
        row_bytes = dim * dtype.itemsize
        raw_size = rows = 0
        while True:
            want = min(self.batch_size, max(len(ids) - rows, 1)) * row_bytes
            # decompressed straight into the batch's array: no intermediate bytes objects
            buf = np.empty(want, dtype=np.uint8)
            got = decoder.read_into(buf)
            if not got:
                break
            raw_size += got
            if got % row_bytes:
                raise DataError(f"archive member {member.path!r}: data is not a whole number of rows "
                                f"of dimension {dim} (wrong dimension?)")
            matrix = buf[:got].view(dtype).reshape(-1, dim).astype(np.float32, copy=False)
            if not np.isfinite(matrix).all():
                bad = rows + int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
                name = ids[bad][0] if bad < len(ids) else f"row {bad}"
                raise DataError(f"archive member {member.path!r}: the vector of {name!r} is NaN or infinite")
            n = matrix.shape[0]
            if rows + n > len(ids):
                raise DataError(f"archive counts disagree in {member.path!r}: more rows than ids ({len(ids)})")
            part = ids[rows:rows + n]
            rows += n
            yield VectorBatch(ids=[i for i, _ in part], vectors=matrix, meta=[m for _, m in part])
        if rows != len(ids):
            raise DataError(f"archive counts disagree in {member.path!r}: {rows} rows for {len(ids)} ids")
        self._finish_member(member, hashing, raw_size, rows)


class _TarStream:
    """Turns tarfile's read errors on a truncated file into DataError."""

    def __init__(self, raw: Any, name: str) -> None:
        self.raw, self.name = raw, name

    def read(self, n: int = -1) -> bytes:
        try:
            return self.raw.read(n)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"archive is truncated or damaged in {self.name!r} ({_short(exc)})") from None


def _decompressor(src: HashingReader, name: str) -> "_Zstd":
    reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True, closefd=False)
    return _Zstd(reader, name)


class _Zstd:
    """zstd output of one member, counted; corrupt frames are reported as DataError."""

    def __init__(self, reader: Any, name: str) -> None:
        self.reader, self.name = reader, name
        self.total = 0  # decompressed bytes handed out

    def read(self, n: int) -> bytes:
        """Up to n bytes; b"" at the end."""
        try:
            data = self.reader.read(n)
        except zstandard.ZstdError as exc:
            raise DataError(f"archive member {self.name!r} is damaged (zstd: {_short(exc)})") from None
        self.total += len(data)
        return data

    def read_into(self, buffer: Any) -> int:
        """Fill `buffer` (short only at the end); returns the bytes written."""
        view = memoryview(buffer).cast("B")
        got = 0
        try:
            while got < len(view):
                n = self.reader.readinto(view[got:])
                if not n:
                    break
                got += n
        except zstandard.ZstdError as exc:
            raise DataError(f"archive member {self.name!r} is damaged (zstd: {_short(exc)})") from None
        self.total += got
        return got


def _line_blocks(src: _Zstd, name: str, limit: int, block: int = 1 << 20) -> Iterator[tuple[list[bytes], bool]]:
    """The lines of `src` without their line ends, a block at a time, as (lines, True); a last line
    with no line end comes alone as ([line], False). A line of `limit` bytes or more (with its
    line end) is a DataError once the lines before it are out, as `readline(limit)` finds it."""
    pending: list[bytes] = []  # the start of a line that runs past the blocks read so far
    pending_size = 0
    while True:
        data = src.read(block)
        if not data:
            break
        lines = data.split(b"\n")
        rest = lines.pop()
        if lines:
            if pending:
                lines[0] = b"".join(pending) + lines[0]
                pending, pending_size = [], 0
            if len(lines[0]) + 1 >= limit or len(data) >= limit:
                for i, line in enumerate(lines):
                    if len(line) + 1 >= limit:
                        yield lines[:i], True
                        raise DataError(f"archive member {name!r} has a line over {limit} bytes")
            yield lines, True
        if rest:
            pending.append(rest)
            pending_size += len(rest)
            if pending_size >= limit:
                raise DataError(f"archive member {name!r} has a line over {limit} bytes")
    if pending:
        yield [b"".join(pending)], False


def _read_exact(src: Any, n: int, name: str = "", allow_short: bool = False) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = src.read(n - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    if got < n and not allow_short:
        raise DataError(f"archive is truncated{' in ' + repr(name) if name else ''}")
    return b"".join(chunks)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


# ---------------------------------------------------------------------- line shapes
def _text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}: field {key!r} must be non-empty text")
    return value


def _mapping(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise DataError(f"{where}: field {key!r} must be a JSON object")
    return value


def _fields(obj: dict[str, Any], names: tuple[str, ...], where: str) -> None:
    if set(obj) != set(names):
        raise DataError(f"{where}: expected exactly the fields {', '.join(names)}")


def _kv(obj: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    _fields(obj, ("id", "value"), where)
    return _text(obj, "id", where), _mapping(obj, "value", where)


def _node(obj: dict[str, Any], where: str) -> GraphNode:
    _fields(obj, ("id", "properties"), where)
    return GraphNode(_text(obj, "id", where), _mapping(obj, "properties", where))


def _edge(obj: dict[str, Any], where: str) -> GraphEdge:
    _fields(obj, ("source", "target", "properties"), where)
    return GraphEdge(_text(obj, "source", where), _text(obj, "target", where), _mapping(obj, "properties", where))


def _ids(obj: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    _fields(obj, ("id", "meta"), where)
    return _text(obj, "id", where), _mapping(obj, "meta", where)


_SHAPES: dict[str, Callable[[dict[str, Any], str], Any]] = {
    KIND_KV: _kv, KIND_DOC_STATUS: _kv, KIND_NODES: _node, KIND_EDGES: _edge, MEMBER_IDS: _ids,
}


# Fast shape checks for the common case: the checked shape (above) when they return None.
def _pair_fast(second: str) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any]] | None]:
    """The fast check of a `{"id": text, <second>: object}` record (KV/doc status: value; ids: meta)."""

    def check(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if len(obj) == 2:
            ident, rest = obj.get("id"), obj.get(second)
            if ident.__class__ is str and ident and rest.__class__ is dict:
                return ident, rest
        return None

    return check


_kv_fast, _ids_fast = _pair_fast("value"), _pair_fast("meta")


def _node_fast(obj: dict[str, Any]) -> GraphNode | None:
    if len(obj) == 2:
        ident, props = obj.get("id"), obj.get("properties")
        if ident.__class__ is str and ident and props.__class__ is dict:
            return GraphNode(ident, props)
    return None


def _edge_fast(obj: dict[str, Any]) -> GraphEdge | None:
    if len(obj) == 3:
        src, tgt, props = obj.get("source"), obj.get("target"), obj.get("properties")
        if src.__class__ is str and src and tgt.__class__ is str and tgt and props.__class__ is dict:
            return GraphEdge(src, tgt, props)
    return None


_FAST_SHAPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    KIND_KV: _kv_fast, KIND_DOC_STATUS: _kv_fast, KIND_NODES: _node_fast, KIND_EDGES: _edge_fast, MEMBER_IDS: _ids_fast,
}
