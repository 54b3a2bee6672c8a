"""Find the byte spans of a JSON object's top-level values without parsing (or holding) the file.

The scanner for a JSON object with a few huge members: a NanoVectorDB file is one object whose
`matrix` value is a single string of hundreds of MB, which `json.load` and even incremental parsers
materialise; here numpy looks at every chunk for quotes and brackets only, tracks string state and
nesting depth across chunks, and reports each top-level key with the span of its raw value, and the
end offsets of the objects nested one level below (the records of `data`). Memory is one chunk plus
8 bytes per record.

Its counterpart for objects of many small members — a JSON KV or doc-status file, one record per
member — is backends/files/jsonfile.py, which decodes member after member with the C JSON decoder: it
cannot skip a 500 MB string without building it, and scanning a KV file this way, then parsing its
members, cost 1.8x the CPU of decoding it there (tried on 100k records, 67 MB: 0.74 s against 0.41 s).
So each file kind has one scanner. The archive's JSON Lines (one object per line) are split by archive/lines.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ragstore_cli.errors import DataError

_QUOTE, _BACKSLASH, _OPEN_SQ, _OPEN_CURLY, _CLOSE_CURLY = 34, 92, 0x5B, 0x7B, 0x7D
_WS = b" \t\r\n"
_MAX_KEY = 4096


@dataclass
class TopLevel:
    """Spans (start, end-exclusive) of each top-level value, and nested object ends per value."""

    size: int
    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_order: list[str] = field(default_factory=list)
    object_ends: dict[str, np.ndarray] = field(default_factory=dict)  # offsets just past each `}`


def scan_top_level(f: BinaryIO, *, chunk_size: int = 8 << 20, label: str = "file") -> TopLevel:
    """Scan an open binary file holding one JSON object; DataError if it is not one."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    in_str, depth, bs_run, pos = 0, 0, 0, 0
    first_done = False
    depth1_quotes: list[int] = []  # every string delimiter at depth 1, in order: open, close, ...
    ends: list[np.ndarray] = []  # closing braces back to depth 2: objects that are elements of a top-level value
    close_pos = -1
    while True:
        chunk = f.read(chunk_size)
        if not chunk:
            break
        arr = np.frombuffer(chunk, dtype=np.uint8)
        if not first_done:
            head = chunk.lstrip(b"\xef\xbb\xbf" + _WS)
            if not head:
                pos += len(chunk)
                continue
            if head[:1] != b"{":
                raise DataError(f"{label}: not a JSON object (starts with {head[:20]!r})")
            first_done = True
        if close_pos >= 0:
            if chunk.strip(_WS):
                raise DataError(f"{label}: unexpected data after the closing brace at byte {close_pos}")
            pos += len(chunk)
            continue
        if in_str and chunk.find(b'"') < 0:
            # deep inside a long string (the matrix): nothing structural here, memchr says so cheaply
            bs_run = _trailing_backslashes(chunk, bs_run)
            pos += len(chunk)
            continue
        quotes = np.flatnonzero(arr == _QUOTE)
        if quotes.size:
            quotes = _drop_escaped(arr, quotes, bs_run)
        bs_run = _trailing_backslashes(chunk, bs_run)
        low = arr | 0x20
        brackets = np.flatnonzero((low == _OPEN_CURLY) | (low == _CLOSE_CURLY))
        if brackets.size:
            # a bracket is structural when an even number of quotes (given the carried state) precede it
            before = np.searchsorted(quotes, brackets)
            brackets = brackets[((before & 1) ^ in_str) == 0]
        if brackets.size:
            kinds = arr[brackets]
            delta = np.where((kinds == _OPEN_SQ) | (kinds == _OPEN_CURLY), 1, -1).astype(np.int64)
            after = depth + np.cumsum(delta)
            if after.min() < 0:
                raise DataError(f"{label}: unbalanced brackets near byte {pos + int(brackets[np.argmin(after)])}")
            closing_to_2 = brackets[(after == 2) & (kinds == _CLOSE_CURLY)]
            if closing_to_2.size:
                ends.append(closing_to_2.astype(np.int64) + pos + 1)
            zero = np.flatnonzero(after == 0)
            if zero.size:
                close_pos = pos + int(brackets[zero[0]])
                rest = chunk[int(brackets[zero[0]]) + 1:]
                if rest.strip(_WS):
                    raise DataError(f"{label}: unexpected data after the closing brace at byte {close_pos}")
                quotes = quotes[quotes < brackets[zero[0]]]
        else:
            after = np.zeros(0, dtype=np.int64)
        if quotes.size:
            idx = np.searchsorted(brackets, quotes)  # brackets before each quote
            qdepth = np.where(idx > 0, after[np.maximum(idx - 1, 0)] if after.size else depth, depth)
            depth1_quotes.extend((quotes[qdepth == 1] + pos).tolist())
            in_str ^= int(quotes.size & 1)
        if after.size:
            depth = int(after[-1])
        pos += len(chunk)
    if not first_done:
        raise DataError(f"{label}: empty file")
    if close_pos < 0 or in_str:
        raise DataError(f"{label}: truncated JSON (the top-level object is never closed)")
    return _assemble(f, size, depth1_quotes, ends, close_pos, label)


def _drop_escaped(arr: np.ndarray, quotes: np.ndarray, carry: int) -> np.ndarray:
    """Remove quotes preceded by an odd run of backslashes (the run may start in the previous chunk)."""
    before = quotes - 1
    escaped = np.zeros(quotes.size, dtype=bool)
    inside = before >= 0
    escaped[inside] = arr[before[inside]] == _BACKSLASH
    escaped[~inside] = carry > 0
    if not escaped.any():
        return quotes
    # the backslash run ending just before each such quote, found among the backslashes only
    slashes = np.flatnonzero(arr == _BACKSLASH)
    first = np.ones(slashes.size, dtype=bool)
    first[1:] = np.diff(slashes) != 1
    run_start = np.maximum.accumulate(np.where(first, np.arange(slashes.size), 0))
    at = np.flatnonzero(escaped & inside)
    last = np.searchsorted(slashes, before[at])
    runs = np.zeros(quotes.size, dtype=np.int64)
    runs[at] = last - run_start[last] + 1 + np.where(slashes[run_start[last]] == 0, carry, 0)
    runs[~inside] = carry
    return quotes[(runs % 2) == 0]


def _trailing_backslashes(chunk: bytes, carry: int) -> int:
    stripped = len(chunk) - len(chunk.rstrip(b"\\"))
    return stripped + carry if stripped == len(chunk) else stripped


def _assemble(f: BinaryIO, size: int, quotes: list[int], ends: list[np.ndarray], close_pos: int,
              label: str) -> TopLevel:
    """Turn depth-1 string delimiters into key -> raw value span."""
    if len(quotes) % 2:
        raise DataError(f"{label}: malformed top level (unterminated string)")
    top = TopLevel(size=size)
    keys: list[tuple[str, int, int]] = []  # (key, key_open, value_start)
    for i in range(0, len(quotes), 2):
        open_q, close_q = quotes[i], quotes[i + 1]
        colon = _next_non_ws(f, close_q + 1)
        if colon < 0 or _byte_at(f, colon) != b":":
            continue  # a string value at depth 1 (e.g. the matrix), not a key
        if close_q - open_q > _MAX_KEY:
            raise DataError(f"{label}: top-level key of {close_q - open_q} bytes")
        f.seek(open_q)
        try:
            key = json.loads(f.read(close_q - open_q + 1))
        except ValueError:
            raise DataError(f"{label}: malformed top-level key at byte {open_q}") from None
        keys.append((key, open_q, colon + 1))
    all_ends = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
    for n, (key, _open, start) in enumerate(keys):
        stop = keys[n + 1][1] if n + 1 < len(keys) else close_pos
        start, stop = _trim(f, start, stop, last=n + 1 == len(keys), label=label, key=key)
        if key in top.values:
            raise DataError(f"{label}: top-level key {key!r} appears twice")
        top.values[key] = (start, stop)
        top.key_order.append(key)
        lo, hi = np.searchsorted(all_ends, [start, stop])
        top.object_ends[key] = all_ends[lo:hi]
    return top


def _next_non_ws(f: BinaryIO, pos: int) -> int:
    """Offset of the first non-whitespace byte at or after `pos`, or -1 at end of file."""
    f.seek(pos)
    while True:
        piece = f.read(4096)
        if not piece:
            return -1
        rest = piece.lstrip(_WS)
        if rest:
            return pos + len(piece) - len(rest)
        pos += len(piece)


def _byte_at(f: BinaryIO, pos: int) -> bytes:
    f.seek(pos)
    return f.read(1)


def _trim(f: BinaryIO, start: int, stop: int, *, last: bool, label: str, key: str) -> tuple[int, int]:
    """Strip whitespace around a raw value and the comma that separates it from the next key."""
    window = 256

    f.seek(start)
    head = f.read(min(window, stop - start))
    start += len(head) - len(head.lstrip(_WS))
    f.seek(max(start, stop - window))
    tail = f.read(stop - max(start, stop - window))
    cut = tail.rstrip(_WS)
    if not last:
        if not cut.endswith(b","):
            raise DataError(f"{label}: missing comma after the value of {key!r}")
        cut = cut[:-1].rstrip(_WS)
    stop -= len(tail) - len(cut)
    if stop <= start:
        raise DataError(f"{label}: top-level key {key!r} has no value")
    return start, stop
