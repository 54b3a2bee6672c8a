"""Values FalkorDB's Bolt endpoint would not take as they are: records larger than one request,
written in pieces, and floats, sent as exact [mantissa, exponent] pairs.

FalkorDB's Bolt endpoint takes at most 4 KB of query text per request, parameters rendered in (see
falkordb_text.FALKORDB_TEXT_BUFFER). A larger row is sent without its largest text values; each of those
is then appended in chunks to a hidden property and moved into place by one last statement, so a
killed import never leaves a truncated value under the real property name (and a merge-mode import
never blanks a value that was there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

from ragstore_cli.backends.neo4j import bulk_cypher
from ragstore_cli.backends.neo4j.falkordb_text import FALKORDB_TEXT_LIMIT, escape, escaped_size, falkordb_text_size

# A row whose rendered text is larger has its largest text values written in pieces: what is left
# shares a request with the statement (a few hundred bytes) and the other rows.
SPLIT_AT = 2048
APPEND_MARGIN = 16


def exact_float(value: float) -> list[float | int]:
    """[m, e] with m * 2.0 ^ e == value in FalkorDB's arithmetic (cypher.positional). It renders a float
    parameter with `%f`, six decimals: 0.0078125 arrives as 0.007812, 1e-9 as 0.0 (measured on 1.4.1).
    A value `%f` keeps exactly (1.0, 0.25, -0.0) is sent as itself; any other as an integer mantissa
    (exact below 2^53) and a power of two (exact, subnormals included; 300 random doubles checked)."""
    text = f"{value:f}"
    if len(text) <= 24 and float(text) == value:
        return [value, 0]
    exponent = max(math.frexp(value)[1] - 53, -1074)
    return [int(math.ldexp(value, -exponent)), exponent]


@dataclass(frozen=True)
class Piece:
    """One text value held back from its row: `ids` is (node id,) or (source, target)."""

    ids: tuple[str, ...]
    key: str
    value: str


def split_oversized(rows: list[dict[str, Any]], ids: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[Piece]]:
    """Rows small enough for a request, and the text values taken out of the others (largest first)."""
    out, pieces = [], []
    for row in rows:
        props = row["props"]
        size = sum(escaped_size(row[k]) for k in ids) + sum(len(k) + 4 + escaped_size(v) for k, v in props.items())
        if size <= SPLIT_AT:
            out.append(row)
            continue
        props = dict(props)
        texts = sorted((k for k, v in props.items() if isinstance(v, str) and k != "entity_id"),
                       key=lambda k: len(props[k]), reverse=True)
        for key in texts:
            if size <= SPLIT_AT:
                break
            size -= len(key) + 4 + escaped_size(props[key])
            pieces.append(Piece(tuple(row[k] for k in ids), key, props.pop(key)))
        out.append({**row, "props": props})
    return out, pieces


def chunks(text: str, room: int) -> Iterator[str]:
    """`text` cut at character boundaries so each chunk, escaped and quoted, takes at most `room` bytes."""
    start, size = 0, 2
    for i, ch in enumerate(text):
        n = (1 if ch < "\x80" else len(ch.encode("utf-8"))) + (ch in "\\'")
        if size + n > room and i > start:
            yield text[start:i]
            start, size = i, 2
        size += n
    yield text[start:]


def piece_statements(label: str, piece: Piece) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (query, raw parameters) that write one held-back value: appends, then the move into place."""
    edge = len(piece.ids) == 2
    names = {"s": piece.ids[0], "t": piece.ids[1]} if edge else {"i": piece.ids[0]}
    first, more = (bulk_cypher.append_edge_part(label, first=f) if edge else bulk_cypher.append_node_part(label, first=f)
                   for f in (True, False))
    room = FALKORDB_TEXT_LIMIT - falkordb_text_size(more, {**escape(names), "c": ""}) - APPEND_MARGIN
    for number, chunk in enumerate(chunks(piece.value, room) if piece.value else [""]):
        yield (more if number else first), {**names, "c": chunk}
    finish = bulk_cypher.finish_edge_part(label, piece.key) if edge else bulk_cypher.finish_node_part(label, piece.key)
    yield finish, names
