"""Streaming read and atomic write of LightRAG's JSON KV / doc-status files (`{id: record, ...}`).

The reader walks the top-level object with the C JSON decoder, one member at a time, so memory holds
one record plus a read buffer whatever the file size (why not `vectors.jsonscan`, the scanner for
NanoVectorDB files: see its docstring). The writer produces exactly the bytes of
`json.dump(obj, f, indent=2, ensure_ascii=False)` (what LightRAG writes), member by member, through
`atomic.AtomicFile` (nothing visible before commit).
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, Iterator

from ragstore_cli.atomic import AtomicFile
from ragstore_cli.errors import DataError

READ_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()
_WS = " \t\n\r"


class _Buffer:
    """Decoded text read in chunks; `pos` advances, consumed text is dropped now and then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped before `text` (for error positions)

    def more(self) -> bool:
        if self.eof:
            return False
        raw = self.file.read(max(READ_CHUNK, len(self.text) - self.pos))
        try:
            chunk = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path.name}: not valid UTF-8 ({exc.reason})") from None
        if not raw:
            self.eof = True
        if self.pos > len(self.text) // 2:
            self.consumed += self.pos
            self.text = self.text[self.pos:]
            self.pos = 0
        self.text += chunk
        return True

    def skip_ws(self) -> str:
        """The next non-blank character (reading as needed), or "" at end of file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def value(self) -> Any:
        """Decode one JSON value at `pos`; a value must be followed by more text to count as complete."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
                if end < len(self.text) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.error(f"malformed JSON ({exc.msg})") from None
            if not self.more() and self.eof and self.pos >= len(self.text):
                raise self.error("unexpected end of file")

    def error(self, message: str) -> DataError:
        return DataError(f"{self.path.name}: {message} near character {self.consumed + self.pos}")

    def close(self) -> None:
        self.file.close()


def object_keys(buf: _Buffer) -> Iterator[str]:
    """Yield the keys of the top-level object, leaving `buf.pos` at each key's value.

    The caller consumes (or skips) each value before asking for the next key. Empty file → nothing.
    """
    first = buf.skip_ws()
    if first == "":
        return
    if first != "{":
        raise buf.error("expected a JSON object")
    buf.pos += 1
    if buf.skip_ws() == "}":
        return
    while True:
        if buf.skip_ws() != '"':
            raise buf.error("expected a quoted key")
        key = buf.value()
        if buf.skip_ws() != ":":
            raise buf.error("expected ':'")
        buf.pos += 1
        buf.skip_ws()
        yield key
        sep = buf.skip_ws()
        buf.pos += 1
        if sep == "}":
            return
        if sep != ",":
            raise buf.error("expected ',' or '}'")


def iter_members(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield (key, value) of the file's top-level object in file order; empty or blank file → nothing."""
    buf = _Buffer(path)
    try:
        for key in object_keys(buf):
            yield key, buf.value()
    finally:
        buf.close()


def count_members(path: Path) -> int:
    """Number of top-level members (streams the file)."""
    return sum(1 for _ in iter_members(path)) if path.exists() else 0


def encode_member(key: str, value: Any) -> str:
    """One member as `json.dump(..., indent=2, ensure_ascii=False)` renders it inside the top object."""
    body = json.dumps(value, ensure_ascii=False, indent=2, allow_nan=True).replace("\n", "\n  ")
    return f"  {json.dumps(key, ensure_ascii=False)}: {body}"


class JsonObjectWriter:
    """Write members through an AtomicFile; `commit()` publishes the file, `abort()` drops it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.out = AtomicFile(path, text=True)
        self.count = 0

    def add(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise DataError(f"{self.path.name}: record id must be text, got {type(key).__name__}")
        try:
            text = encode_member(key, value)
            text.encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            raise DataError(f"{self.path.name}: record {key[:80]!r} cannot be written as UTF-8 JSON ({exc})") from None
        self.out.write(("{\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def commit(self) -> None:
        self.out.write("\n}" if self.count else "{}")
        self.out.commit()

    def abort(self) -> None:
        self.out.abort()
