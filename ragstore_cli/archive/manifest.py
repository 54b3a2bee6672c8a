"""The archive manifest: what a `.ragstore` file holds, and the rules a reader checks it against.

The manifest is the first tar member (`manifest.json`), followed by `manifest.json.sha256`, so a
reader knows every member's path, size, checksum and record count before it reads any data.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ragstore_cli.errors import DataError

FORMAT_NAME = "ragstore-archive"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_SHA_NAME = "manifest.json.sha256"

# Limits of format v1 (docs/archive-format.md "Limits"). A reader refuses a manifest that exceeds
# them, and holds no more than one batch of data in memory, so what an archive can make a reader
# allocate is bounded whatever it declares.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024   # ~15,000 members: ~60M vectors in parts of 8192 rows
ROWS_PER_PART = 8192                   # rows of one vector part (its .ids member and its matrix)
MAX_LINE = 16 * 1024 * 1024            # bytes of one JSON line, its line end included
MIN_LINE = 22                          # the shortest line a member can hold: {"id":"x","meta":{}} + line end
MAX_DIM = 65536                        # vector dimension
MIN_ENTRY_BYTES = 64                   # the JSON of a section or member holds more than this

# Section kinds, in the order a writer is expected to produce them (readers accept any order).
KIND_KV = "kv"
KIND_DOC_STATUS = "doc_status"
KIND_NODES = "graph_nodes"
KIND_EDGES = "graph_edges"
KIND_VECTORS = "vectors"
KINDS = (KIND_KV, KIND_DOC_STATUS, KIND_NODES, KIND_EDGES, KIND_VECTORS)

# Member kinds inside sections.
MEMBER_JSONL = "jsonl"      # one JSON object per line (kv, doc status, nodes, edges)
MEMBER_IDS = "ids"          # JSON Lines of {"id", "meta"}: row i of the next matrix member
MEMBER_MATRIX = "matrix"    # raw little-endian matrix, shape (records, dim), row-major

DTYPES = {"float32": "<f4", "float16": "<f2"}
DTYPE_SUFFIX = {"float32": "f32", "float16": "f16"}

_NAMESPACE = r"[a-z0-9_]{1,64}"
_MEMBER_PATTERNS = {
    (KIND_KV, MEMBER_JSONL): re.compile(rf"kv/({_NAMESPACE})\.jsonl\.zst"),
    (KIND_DOC_STATUS, MEMBER_JSONL): re.compile(r"(doc_status)\.jsonl\.zst"),
    (KIND_NODES, MEMBER_JSONL): re.compile(rf"graph/({_NAMESPACE})/nodes\.jsonl\.zst"),
    (KIND_EDGES, MEMBER_JSONL): re.compile(rf"graph/({_NAMESPACE})/edges\.jsonl\.zst"),
    (KIND_VECTORS, MEMBER_IDS): re.compile(rf"vectors/({_NAMESPACE})/\d{{6}}\.ids\.jsonl\.zst"),
    (KIND_VECTORS, MEMBER_MATRIX): re.compile(rf"vectors/({_NAMESPACE})/\d{{6}}\.(f32|f16)\.zst"),
}


Progress = Callable[[str, int, int], None]  # (section key, records, stored bytes) as an archive is read or written


@dataclass
class SectionStats:
    """What one read of a section measured (a verify pass adds `extra["max_abs"]` for vectors)."""

    records: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def check_member_path(path: str) -> None:
    """Refuse absolute paths, `..`, empty or odd segments: a member must stay inside the archive root."""
    if not isinstance(path, str) or not path:
        raise DataError("archive member with an empty path")
    shown = repr(path[:80])
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise DataError(f"archive member {shown} has an absolute path")
    if "\\" in path or "\x00" in path:
        raise DataError(f"archive member {shown} has a backslash or NUL in its path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise DataError(f"archive member {shown} points outside the archive root")


@dataclass
class Member:
    """One tar member holding data: its place in a section, size and checksum of the stored bytes."""

    path: str
    kind: str                # jsonl | ids | matrix
    section: str             # key of the section it belongs to
    records: int
    size: int                # bytes stored in the tar (compressed)
    raw_size: int            # bytes after zstd decompression
    sha256: str              # of the stored (compressed) bytes: `sha256sum` after `tar x` matches
    dtype: str | None = None  # matrix members: float32 | float16
    dim: int | None = None    # matrix members: row length

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Member":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass
class Section:
    """One namespace's records (or the graph's nodes or edges), possibly split over several members."""

    key: str          # e.g. kv/full_docs, doc_status, graph/nodes, vectors/chunks
    kind: str         # kv | doc_status | graph_nodes | graph_edges | vectors
    namespace: str
    records: int = 0
    dim: int | None = None
    dtype: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Section":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def section_key(kind: str, namespace: str) -> str:
    """A stable, human-readable key for a section."""
    if kind == KIND_KV:
        return f"kv/{namespace}"
    if kind == KIND_DOC_STATUS:
        return "doc_status"
    if kind == KIND_NODES:
        return "graph/nodes"
    if kind == KIND_EDGES:
        return "graph/edges"
    return f"vectors/{namespace}"


@dataclass
class Manifest:
    """Everything a reader needs to know before reading data."""

    ragstore_version: str
    created_at: str
    source: dict[str, Any]               # {"workspace", "backends": {role: class}, "not_carried": {section: [fields]}}
    embedding: dict[str, Any]            # {"model": str|None, "dim": int|None}
    sections: list[Section] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def counts(self) -> dict[str, int]:
        return {s.key: s.records for s in self.sections}

    def to_json(self) -> bytes:
        doc = {
            "format": self.format, "format_version": self.format_version,
            "ragstore_version": self.ragstore_version, "created_at": self.created_at,
            "source": self.source, "embedding": self.embedding,
            "counts": self.counts(),
            "sections": [asdict(s) for s in self.sections],
            "members": [asdict(m) for m in self.members],
        }
        return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, raw: bytes) -> "Manifest":
        """Parse and check a manifest; every inconsistency is a one-line DataError."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"archive manifest is not valid JSON ({exc.__class__.__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise DataError("not a ragstore archive (manifest format is not 'ragstore-archive')")
        version = doc.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise DataError(f"archive manifest has an invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise DataError(f"archive format version {version} is newer than this ragstore reads "
                            f"(up to {FORMAT_VERSION}); upgrade ragstore")
        for name in ("sections", "members"):  # a member takes ~200 bytes: refuse before building objects
            listed = doc.get(name)
            if isinstance(listed, list) and len(listed) > len(raw) // MIN_ENTRY_BYTES:
                raise DataError(f"archive manifest lists {len(listed)} {name} in {len(raw)} bytes; "
                                "they cannot all be real")
        try:
            manifest = cls(
                ragstore_version=str(doc["ragstore_version"]), created_at=str(doc["created_at"]),
                source=dict(doc["source"]), embedding=dict(doc["embedding"]),
                sections=[Section.from_dict(s) for s in doc["sections"]],
                members=[Member.from_dict(m) for m in doc["members"]],
                format_version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"archive manifest is missing or mistypes a field ({exc})") from None
        try:
            manifest.check(doc.get("counts"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field of the wrong JSON type
            raise DataError(f"archive manifest has a field of the wrong type ({type(exc).__name__}: {exc})") from None
        return manifest

    def check(self, counts: Any = None) -> None:
        """Internal consistency: paths, kinds, counts per section, dims, duplicate names."""
        dim = self.embedding.get("dim")
        if dim is not None and (not _is_int(dim) or not 0 < dim <= MAX_DIM):
            raise DataError(f"archive manifest has an invalid embedding dimension {dim!r}")
        sections: dict[str, Section] = {}
        for s in self.sections:
            if s.kind not in KINDS or not _is_int(s.records) or s.records < 0 or s.key in sections:
                raise DataError(f"archive manifest has an invalid or repeated section {s.key!r}")
            if s.key != section_key(s.kind, s.namespace) or not re.fullmatch(_NAMESPACE, str(s.namespace)):
                raise DataError(f"archive manifest section {s.key!r} does not match its namespace")
            if s.kind == KIND_VECTORS:
                if s.dtype not in DTYPES or (s.dim is not None and (not _is_int(s.dim) or not 0 < s.dim <= MAX_DIM)):
                    raise DataError(f"archive section {s.key} has an invalid dtype or dimension")
                if dim is not None and s.dim is not None and s.dim != dim:
                    raise DataError(f"archive section {s.key} has dimension {s.dim}, manifest says {dim}")
            sections[s.key] = s
        totals = {key: 0 for key in sections}
        seen: set[str] = set()
        for m in self.members:
            check_member_path(m.path)
            if m.path in seen or m.path in (MANIFEST_NAME, MANIFEST_SHA_NAME):
                raise DataError(f"archive member {m.path!r} is listed twice")
            seen.add(m.path)
            section = sections.get(m.section)
            pattern = _MEMBER_PATTERNS.get((section.kind if section else "", m.kind))
            match = pattern.fullmatch(m.path) if pattern else None
            if section is None or match is None or match.group(1) != section.namespace:
                raise DataError(f"archive member {m.path!r} does not fit section {m.section!r}")
            for name in ("records", "size", "raw_size"):
                value = getattr(m, name)
                if not _is_int(value) or value < 0:
                    raise DataError(f"archive member {m.path!r} has an invalid {name}")
            if not isinstance(m.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", m.sha256):
                raise DataError(f"archive member {m.path!r} has an invalid sha256")
            if m.kind == MEMBER_MATRIX:
                _check_matrix(m, section)
            else:
                _check_lines(m)
            if m.kind != MEMBER_MATRIX:  # matrix rows are counted by their ids member
                totals[m.section] += m.records
        _check_vector_pairs(self.members, sections)
        for key, section in sections.items():
            if totals[key] != section.records:
                raise DataError(f"archive counts disagree for {key}: section says {section.records}, "
                                f"members hold {totals[key]}")
        if counts is not None and counts != self.counts():
            raise DataError("archive counts disagree: manifest 'counts' does not match its sections")


def _check_matrix(m: Member, section: Section) -> None:
    """A matrix member: its section's dimension, a dtype its path names, exactly rows × dim values.

    A float16 section may hold float32 parts: export stores a part losslessly when one of its
    vectors does not fit float16 (docs/archive-format.md).
    """
    if m.dim != section.dim or m.dim is None or m.dtype not in (section.dtype, "float32"):
        raise DataError(f"archive member {m.path!r} disagrees with its section on dtype or dimension")
    if not m.path.endswith(f".{DTYPE_SUFFIX[m.dtype]}.zst"):
        raise DataError(f"archive member {m.path!r} is declared {m.dtype}, its name says otherwise")
    if m.records > ROWS_PER_PART:
        raise DataError(f"archive member {m.path!r} has {m.records} rows, over the {ROWS_PER_PART} of a part")
    if m.raw_size != m.records * m.dim * int(DTYPES[m.dtype][-1]):
        raise DataError(f"archive member {m.path!r}: size does not match {m.records} rows × {m.dim}")


def _check_lines(m: Member) -> None:
    """A JSON-lines member: between MIN_LINE and MAX_LINE bytes a record; ids members hold one part."""
    if m.kind == MEMBER_IDS and m.records > ROWS_PER_PART:
        raise DataError(f"archive member {m.path!r} has {m.records} rows, over the {ROWS_PER_PART} of a part")
    if not m.records * MIN_LINE <= m.raw_size <= m.records * MAX_LINE:
        raise DataError(f"archive member {m.path!r}: {m.raw_size} bytes cannot hold {m.records} records "
                        f"(a line holds {MIN_LINE} to {MAX_LINE} bytes)")


def _check_vector_pairs(members: list[Member], sections: dict[str, Section]) -> None:
    """Every ids member is followed by the matrix member of the same part, with the same row count."""
    for i, m in enumerate(members):
        if m.kind == MEMBER_IDS:
            nxt = members[i + 1] if i + 1 < len(members) else None
            part = m.path[: -len(".ids.jsonl.zst")]
            if (nxt is None or nxt.kind != MEMBER_MATRIX or nxt.section != m.section
                    or nxt.path.rsplit(".", 2)[0] != part or nxt.records != m.records):
                raise DataError(f"archive member {m.path!r} is not followed by its matrix with {m.records} rows")
        elif m.kind == MEMBER_MATRIX and (i == 0 or members[i - 1].kind != MEMBER_IDS):
            raise DataError(f"archive member {m.path!r} has no ids member before it")
        elif m.kind == MEMBER_JSONL and sections[m.section].kind == KIND_VECTORS:
            raise DataError(f"archive member {m.path!r} does not fit section {m.section!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
