"""The JSON lines of archive members: split a decompressed stream into bounded lines, check each one's shape.

Every member kind has one line shape (docs/archive-format.md): KV and doc status `{"id", "value"}`,
nodes `{"id", "properties"}`, edges `{"source", "target", "properties"}`, vector ids `{"id", "meta"}`.
`records()` yields them one by one, never holding more than one line past `MAX_LINE` bytes and
never more lines than the manifest declares.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

from ragstore_cli.archive.codec import decode_line, parse_object
from ragstore_cli.archive.manifest import KIND_DOC_STATUS, KIND_EDGES, KIND_KV, KIND_NODES, MAX_LINE, MEMBER_IDS
from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.errors import DataError

BLOCK = 1 << 20  # decompressed bytes split into lines at a time


class Source(Protocol):
    def read(self, n: int) -> bytes: ...


def records(src: Source, name: str, kind: str, expected: int, *,
            parse: bool = True) -> Iterator[tuple[list[Any], list[int]]]:
    """The lines of `src`, a block at a time: (records in the shapes of records.py, line sizes).

    `kind` is a section kind, or MEMBER_IDS for a vector part's ids. Lines past the `expected`
    count, a line of MAX_LINE bytes or more, a last line without its line end: DataError at once.
    With `parse=False` lines are only counted and sized (the records are None).
    """
    shape, fast = _SHAPES[kind], _FAST_SHAPES[kind]
    count = 0
    for lines, ended in line_blocks(src, name, MAX_LINE):
        if count + len(lines) > expected:
            raise DataError(f"archive counts disagree in {name!r}: more than the {expected} records "
                            "the manifest declares")
        if not ended:
            raise DataError(f"archive member {name!r} line {count + 1}: no line end (truncated?)")
        sizes = [len(line) + 1 for line in lines]
        if not parse:
            items: list[Any] = [None] * len(lines)
        else:
            items = [None if obj is None else fast(obj) for obj in map(parse_object, lines)]
            for i, item in enumerate(items):
                if item is None:  # the checked way, which names the line and what is wrong with it
                    where = f"archive member {name!r} line {count + i + 1}"
                    items[i] = shape(decode_line(lines[i] + b"\n", where), where)
        count += len(lines)
        lines.clear()  # the line bytes go now, not when the splitter reads on: a long line is held once
        yield items, sizes
    if count != expected:
        raise DataError(f"archive counts disagree in {name!r}: {count} records, the manifest says {expected}")


def each(blocks: Iterator[tuple[list[Any], list[int]]]) -> Iterator[tuple[Any, int]]:
    """(record, line size) one by one, from the blocks of `records`."""
    for items, sizes in blocks:
        yield from zip(items, sizes)


def line_blocks(src: Source, name: str, limit: int, block: int = BLOCK) -> Iterator[tuple[list[bytes], bool]]:
    """The lines of `src` without their line ends, a block at a time, as (lines, True); a last line
    with no line end comes alone as ([line], False). A line of `limit` bytes or more (with its
    line end) is a DataError once the lines before it are out, before it is joined in memory."""
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
                if pending_size + len(lines[0]) + 1 >= limit:
                    raise DataError(f"archive member {name!r} has a line over {limit} bytes")
                pending.append(lines[0])
                lines[0] = b"".join(pending)  # one copy of the long line, not two
                pending, pending_size = [], 0
            if len(data) >= limit:
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
