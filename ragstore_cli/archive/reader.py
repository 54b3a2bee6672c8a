"""Read a `.ragstore` archive as one forward stream, checking everything on the way.

The same code serves `verify` (read to the end, keep nothing) and `import` (hand batches to a
target): both check member order and names, link members, sizes, SHA-256 of the stored bytes,
JSON shape of every line, row counts and vector dimension/finiteness. `import` runs a full verify
pass before its load pass, so nothing is written from an archive that fails anywhere.

Memory is bounded by the format's limits, never by what an archive declares: a member may not
decompress to one byte more than its manifest `raw_size` nor hold one line more than its `records`
(both refused the moment they are passed), a line is at most MAX_LINE bytes, a batch at most
BATCH_BYTES of lines or rows, a zstd frame's window at most MAX_WINDOW, a tar extension header at
most MAX_TAR_HEADER. A vector part's ids are read twice rather than held: once to count and check
them, once beside the matrix rows (the archive is a file, so the second read seeks to them).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import zstandard

from ragstore_cli.archive import damage
from ragstore_cli.archive.codec import HashingReader
from ragstore_cli.archive.lines import each, records
from ragstore_cli.archive.manifest import (DTYPES, KIND_VECTORS, MANIFEST_NAME, MANIFEST_SHA_NAME, MAX_MANIFEST_BYTES,
                                           MEMBER_IDS, Manifest, Member, Progress, Section, SectionStats,
                                           check_member_path)
from ragstore_cli.records import DEFAULT_BATCH, VectorBatch
from ragstore_cli.errors import DataError, UsageError

Observer = Callable[[str, list[Any]], None]  # (section kind or MEMBER_IDS, a batch of its records)
BATCH_BYTES = 8 << 20      # a batch ends once its lines (or matrix rows) reach this many bytes
MAX_WINDOW = 1 << 24       # zstd window; ragstore writes levels 1-3 (windows of 2 MiB at most)
MAX_TAR_HEADER = 1 << 20   # pax / GNU long-name header data, which tarfile reads whole
_TAR_BUFFER = 1 << 16  # tarfile reads a stream in blocks of this size; its 10 KiB default costs ~15 % more per byte


class ArchiveReader:
    """Open an archive file; `manifest` is read and checked at once, data on demand."""

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or self.path.name  # names the archive in messages (a spooled stream: "stdin")
        if not self.path.is_file():
            raise UsageError(f"archive {self.path} does not exist or is not a file")
        self.manifest_sha256 = ""  # identifies the archive (ledger, import id)
        self.offsets: dict[str, int] = {}  # where each member's data starts in the file, once read
        self.manifest = self._read_manifest()

    # ------------------------------------------------------------------ manifest
    def _open_tar(self) -> tuple[Any, tarfile.TarFile]:
        fh = open(self.path, "rb")
        try:
            return fh, tarfile.open(fileobj=fh, mode="r|", bufsize=_TAR_BUFFER, tarinfo=_BoundedTarInfo)
        except (tarfile.TarError, EOFError, OSError):
            fh.close()
            raise DataError(f"{self.label} is not a ragstore archive (not a tar stream)") from None

    def _read_manifest(self) -> Manifest:
        fh, tar = self._open_tar()
        with fh:
            first = self._next(tar, MANIFEST_NAME)
            if first is None or first.name != MANIFEST_NAME:
                raise DataError(f"{self.label} is not a ragstore archive (first member is not {MANIFEST_NAME})")
            raw = self._small(tar, first)
            second = self._next(tar, MANIFEST_SHA_NAME)
            if second is None:
                raise DataError(damage.at_header(self.path, tar.offset, MANIFEST_SHA_NAME))
            if second.name != MANIFEST_SHA_NAME:
                raise DataError(f"archive member {second.name!r} found at byte {second.offset} where "
                                f"{MANIFEST_SHA_NAME} should follow the manifest")
            self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
            expected = f"{self.manifest_sha256}  {MANIFEST_NAME}\n".encode()
            if self._small(tar, second) != expected:
                raise DataError("archive manifest is damaged: its SHA-256 does not match manifest.json.sha256")
        manifest = Manifest.parse(raw)
        stored = sum(m.size for m in manifest.members)
        if stored > self.path.stat().st_size:
            raise DataError(f"archive is truncated: its members hold {stored} bytes, the file has "
                            f"{self.path.stat().st_size}")
        return manifest

    def _small(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
        if info.size > MAX_MANIFEST_BYTES:
            raise DataError(f"archive member {info.name} is over the {MAX_MANIFEST_BYTES >> 20} MiB a manifest may have")
        src = tar.extractfile(info)
        assert src is not None
        stream = _TarStream(src, info, self.path)
        return _read_exact(stream, info.size, stream.ended_early)

    def _next(self, tar: tarfile.TarFile, expected: str | None) -> tarfile.TarInfo | None:
        """The next member's header, where member `expected` (None: the end of the archive) should be."""
        offset = tar.offset
        try:
            info = tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            if expected is None:
                raise DataError(damage.after_end(self.path, offset) or f"archive is damaged at byte {offset} "
                                f"after its last member ({_short(exc)})") from None
            raise DataError(damage.at_header(self.path, offset, expected, _short(exc))) from None
        if info is None:
            return None
        check_member_path(info.name)
        if info.issym() or info.islnk():
            raise DataError(f"archive member {info.name!r} is a link; links are refused")
        if not info.isreg() or info.sparse is not None:
            raise DataError(f"archive member {info.name!r} is not a regular file")
        return info

    # ------------------------------------------------------------------ data
    def sections(self, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None) -> Iterator["SectionReader"]:
        """The sections in archive order; consume each one's batches() before taking the next.
        `progress(key, 0, stored bytes)` is called as each member is read."""
        fh, tar = self._open_tar()
        with fh:
            for name in (MANIFEST_NAME, MANIFEST_SHA_NAME):  # already checked
                self._next(tar, name)
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
                    yield SectionReader(self, tar, s, [], batch_size, progress)
            for key in order:
                reader = SectionReader(self, tar, sections[key], by_section[key], batch_size, progress)
                yield reader
                reader.skip()  # a caller that did not read everything still advances the stream
            extra = self._next(tar, None)
            if extra is not None:
                raise DataError(f"archive has a member the manifest does not list: {extra.name!r} at byte {extra.offset}")
            trailing = damage.after_end(self.path, tar.offset)
            if trailing:
                raise DataError(trailing)

    def verify(self, progress: Progress | None = None) -> dict[str, SectionStats]:
        """Read everything and check it, across records too (ids, edges); returns per-section statistics."""
        from ragstore_cli.archive.verify import verify_archive

        return verify_archive(self, progress)

    def reread(self, member: Member) -> Iterator[tuple[Any, int]]:
        """(record, line size) of a JSON-lines member read before: seeks to it in the file, checks every
        bound again and its SHA-256 once it ends (a file changed since is refused)."""
        kind = MEMBER_IDS if member.kind == MEMBER_IDS else self._section_kind(member.section)
        with open(self.path, "rb") as fh:
            fh.seek(self.offsets[member.path])
            hashing = HashingReader(fh, member.size)
            yield from each(records(_decompressor(hashing, member.path, member.raw_size), member.path, kind,
                                    member.records))
            hashing.drain()
            if hashing.sha.hexdigest() != member.sha256:
                raise DataError(f"archive member {member.path!r} changed while it was read")

    def _section_kind(self, key: str) -> str:
        return next(s.kind for s in self.manifest.sections if s.key == key)


class SectionReader:
    """Batches of one section, decoded into the shapes of records.py."""

    def __init__(self, archive: ArchiveReader, tar: tarfile.TarFile, section: Section,
                 members: list[Member], batch_size: int, progress: Progress | None = None) -> None:
        self.archive, self.tar, self.section, self.members = archive, tar, section, members
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self._started = False

    @property
    def key(self) -> str:
        return self.section.key

    def batches(self) -> Iterator[Any]:
        """list[(id, value)] | list[GraphNode] | list[GraphEdge] | VectorBatch, until the section ends."""
        self._begin()
        total = 0
        if self.section.kind == KIND_VECTORS:
            for ids, matrix in _parts(self.members):
                for _ in self._lines(ids, parse=False):  # counted and checked; read again beside the rows
                    pass
                for batch in self._vectors(ids, matrix):
                    total += len(batch)
                    yield batch
        else:
            for member in self.members:
                for batch in self._batched(self._lines(member)):
                    total += len(batch)
                    yield batch
        self._check_total(total)

    def check(self, observe: Observer) -> SectionStats:
        """Read and check every record, handing each batch to `observe(kind, batch)`; vector rows are
        checked and counted, never paired with their ids (that needs the second read of the ids)."""
        self._begin()
        stats = SectionStats(stored_bytes=sum(m.size for m in self.members),
                             raw_bytes=sum(m.raw_size for m in self.members))
        if self.section.kind != KIND_VECTORS:
            for member in self.members:
                for batch in self._batched(self._lines(member)):
                    observe(self.section.kind, batch)
                    stats.records += len(batch)
            self._check_total(stats.records)
            return stats
        peak = 0.0
        for ids, member in _parts(self.members):
            for batch in self._batched(self._lines(ids)):
                observe(MEMBER_IDS, batch)
            matrix = _MatrixReader(self, member)
            while matrix.rows < member.records:
                first = matrix.rows
                rows = matrix.read(min(matrix.max_rows, member.records - first),
                                   lambda i: _nth_id(self.archive, ids, first + i))
                peak = max(peak, float(np.abs(rows).max(initial=0.0)))
            matrix.finish()
            stats.records += matrix.rows
        stats.extra["max_abs"] = peak  # import compares it with what its target can store
        self._check_total(stats.records)
        return stats

    def skip(self) -> None:
        if not self._started:
            for _ in self.batches():
                pass

    def _begin(self) -> None:
        if self._started:
            raise RuntimeError(f"section {self.key} was already read")
        self._started = True

    def _check_total(self, total: int) -> None:
        if total != self.section.records:
            raise DataError(f"archive counts disagree for {self.key}: manifest says {self.section.records}, "
                            f"members hold {total}")

    # ------------------------------------------------------------------ members
    def _open_member(self, member: Member) -> HashingReader:
        offset = self.tar.offset
        info = self.archive._next(self.tar, member.path)
        if info is None:
            raise DataError(damage.at_header(self.archive.path, offset, member.path))
        if info.name != member.path:
            raise DataError(f"archive member {info.name!r} found where the manifest lists {member.path!r} "
                            f"(at byte {info.offset})")
        if info.size != member.size:
            raise DataError(f"archive member {member.path!r} is {info.size} bytes, the manifest says {member.size}")
        src = self.tar.extractfile(info)
        assert src is not None
        self.archive.offsets[member.path] = info.offset_data
        return HashingReader(_TarStream(src, info, self.archive.path), info.size)

    def _finish_member(self, member: Member, hashing: HashingReader, raw_size: int) -> None:
        hashing.drain()
        if hashing.sha.hexdigest() != member.sha256:
            raise DataError(f"archive member {member.path!r} is damaged: its SHA-256 is {hashing.sha.hexdigest()[:16]}…, "
                            f"the manifest says {member.sha256[:16]}… (SHA-256 mismatch)")
        if raw_size != member.raw_size:
            raise DataError(f"archive member {member.path!r} decompresses to {raw_size} bytes, "
                            f"the manifest says {member.raw_size}")
        if self.progress is not None:
            self.progress(self.key, 0, member.size)

    def _lines(self, member: Member, parse: bool = True) -> Iterator[tuple[list[Any], list[int]]]:
        """Blocks of (records, line sizes) of a JSON-lines member, checked against every bound as it streams."""
        hashing = self._open_member(member)
        decoder = _decompressor(hashing, member.path, member.raw_size)
        kind = self.section.kind if member.kind != MEMBER_IDS else MEMBER_IDS
        yield from records(decoder, member.path, kind, member.records, parse=parse)
        self._finish_member(member, hashing, decoder.total)

    def _batched(self, blocks: Iterator[tuple[list[Any], list[int]]]) -> Iterator[list[Any]]:
        """Lists of at most batch_size records and about BATCH_BYTES of lines."""
        batch: list[Any] = []
        size = 0
        for items, sizes in blocks:
            if len(batch) + len(items) < self.batch_size and size + sum(sizes) < BATCH_BYTES:
                batch.extend(items)  # the common case: the whole block fits
                size += sum(sizes)
                continue
            for item, n in zip(items, sizes):
                batch.append(item)
                size += n
                if len(batch) >= self.batch_size or size >= BATCH_BYTES:
                    yield batch
                    batch, size = [], 0
        if batch:
            yield batch

    def _vectors(self, ids_member: Member, member: Member) -> Iterator[VectorBatch]:
        """One vector part: its ids read again from the file, beside its matrix rows."""
        ids = self.archive.reread(ids_member)
        matrix = _MatrixReader(self, member)
        most = min(self.batch_size, matrix.max_rows)
        while True:
            chunk: list[tuple[str, dict[str, Any]]] = []
            size = 0
            for item, n in ids:
                chunk.append(item)
                size += n
                if len(chunk) >= most or size >= BATCH_BYTES:
                    break
            if not chunk:
                break
            vectors = matrix.read(len(chunk), lambda i: chunk[i][0])
            yield VectorBatch(ids=[i for i, _ in chunk], vectors=vectors, meta=[m for _, m in chunk])
        matrix.finish()


class _MatrixReader:
    """The rows of one matrix member, read as many at a time as asked, each row checked finite."""

    def __init__(self, section: SectionReader, member: Member) -> None:
        self.section, self.member = section, member
        self.hashing = section._open_member(member)
        self.decoder = _decompressor(self.hashing, member.path, member.raw_size)
        self.dim = int(member.dim or 0)
        self.dtype = np.dtype(DTYPES[member.dtype or "float32"])
        self.row_bytes = self.dim * self.dtype.itemsize
        self.max_rows = max(1, BATCH_BYTES // self.row_bytes)
        self.rows = 0

    def read(self, n: int, name_of: Callable[[int], str]) -> np.ndarray:
        """The next `n` rows as float32 (n, dim); `name_of(i)` names row i of them in an error."""
        buf = np.empty(n * self.row_bytes, dtype=np.uint8)  # decompressed straight into the batch's array
        got = self.decoder.read_into(buf)
        path = self.member.path
        if got % self.row_bytes:
            raise DataError(f"archive member {path!r}: data is not a whole number of rows "
                            f"of dimension {self.dim} (wrong dimension?)")
        if got < len(buf):
            raise DataError(f"archive counts disagree in {path!r}: {self.rows + got // self.row_bytes} rows "
                            f"for {self.member.records} ids")
        matrix = buf.view(self.dtype).reshape(n, self.dim).astype(np.float32, copy=False)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise DataError(f"archive member {path!r}: the vector of {name_of(bad)!r} is NaN or infinite")
        self.rows += n
        return matrix

    def finish(self) -> None:
        if self.decoder.read(1):  # raw_size is exactly rows x dim, so this is past it and refused
            raise DataError(f"archive counts disagree in {self.member.path!r}: more rows than ids")
        self.section._finish_member(self.member, self.hashing, self.decoder.total)


def _parts(members: list[Member]) -> Iterator[tuple[Member, Member]]:
    """(ids member, matrix member) of each vector part; the manifest check paired them."""
    it = iter(members)
    for ids in it:
        yield ids, next(it)


def _nth_id(archive: ArchiveReader, ids: Member, row: int) -> str:
    """The id on line `row` of an ids member already read (only to name a refused vector)."""
    for i, (item, _) in enumerate(archive.reread(ids)):
        if i == row:
            return str(item[0])
    return f"row {row}"


_EXTENSION_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                      tarfile.SOLARIS_XHDTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads a pax or GNU long-name header's data whole, and expands sparse members: refuse
    those past MAX_TAR_HEADER bytes, and sparse members outright (ragstore never writes them)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.SubsequentHeaderError(f"member {self.name[:80]!r} is sparse; sparse members are refused")
        if self.type in _EXTENSION_HEADERS and self.size > MAX_TAR_HEADER:
            raise tarfile.SubsequentHeaderError(f"a tar extension header of {self.size} bytes (over {MAX_TAR_HEADER})")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _TarStream:
    """Turns tarfile's read errors on a truncated file into DataError naming the member and the offset."""

    def __init__(self, raw: Any, info: tarfile.TarInfo, path: Path) -> None:
        self.raw, self.info, self.path = raw, info, path

    def read(self, n: int = -1) -> bytes:
        try:
            return self.raw.read(n)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(self.ended_early(f" ({_short(exc)})")) from None

    def ended_early(self, detail: str = "") -> str:
        return (damage.inside_member(self.path, self.info.name, self.info.offset_data, self.info.size)
                or f"archive member {self.info.name!r} could not be read in full{detail}")


def _decompressor(src: HashingReader, name: str, limit: int) -> "_Zstd":
    reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(
        src, read_across_frames=True, closefd=False)
    return _Zstd(reader, name, limit)


class _Zstd:
    """zstd output of one member, counted and bounded: one byte past `limit` (the manifest's
    raw_size) is refused before more is decompressed; corrupt frames are reported as DataError."""

    def __init__(self, reader: Any, name: str, limit: int) -> None:
        self.reader, self.name, self.limit = reader, name, limit
        self.total = 0  # decompressed bytes handed out

    def read(self, n: int) -> bytes:
        """Up to n bytes; b"" at the end."""
        try:
            data = self.reader.read(min(n, self.limit - self.total + 1))
        except zstandard.ZstdError as exc:
            raise DataError(f"archive member {self.name!r} is damaged (zstd: {_short(exc)})") from None
        self.total += len(data)
        self._bound()
        return data

    def read_into(self, buffer: Any) -> int:
        """Fill `buffer` (short only at the end); returns the bytes written."""
        view = memoryview(buffer).cast("B")
        view = view[:min(len(view), self.limit - self.total + 1)]
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
        self._bound()
        return got

    def _bound(self) -> None:
        if self.total > self.limit:
            raise DataError(f"archive member {self.name!r} decompresses to more than the {self.limit} bytes "
                            "the manifest declares (a decompression bomb?)")


def _read_exact(src: Any, n: int, short: Callable[[], str]) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = src.read(n - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    if got < n:
        raise DataError(short())
    return b"".join(chunks)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
