"""Byte-level helpers shared by the archive writer and reader: JSON lines, hashing streams, dtypes."""

from __future__ import annotations

import hashlib
import json
from typing import IO, Any

import msgspec
import numpy as np

from ragstore_cli.archive.manifest import DTYPE_SUFFIX, DTYPES
from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import get_codec

ZSTD_LEVEL_JSON = 3
ZSTD_LEVEL_MATRIX = 1  # float mantissas barely compress: spend the time elsewhere


def encode_line(obj: Any) -> bytes:
    """One compact JSON line; NaN/Infinity are refused (they are not JSON and no backend stores them)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise DataError("a record holds NaN or Infinity, which JSON cannot carry") from None
    except TypeError as exc:
        raise DataError(f"a record holds a value JSON cannot carry ({exc})") from None
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates: \\u-escapes keep them exact and the line valid UTF-8
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


class NotFinite(ValueError):
    """A NaN, Infinity or a number too large for a float: JSON has none, and no backend stores them."""


def _no_constant(name: str) -> Any:
    raise NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is NaN: `1e400` and 400-digit literals overflow to inf
        raise NotFinite(text)
    return value


_HOOKS = {"parse_constant": _no_constant, "parse_float": _finite_float}
_DECODE = msgspec.json.Decoder().decode  # strict JSON: no NaN/Infinity, numbers in float range or refused


def parse_object(line: bytes) -> dict[str, Any] | None:
    """The JSON object on one line (without its line end), or None: then `decode_line` says why.

    msgspec's decoder gives the same objects as `json.loads` for every line it accepts (integers of
    any size exact, floats correctly rounded, the last of repeated keys; tests/archive/test_fast_paths.py
    compares them), 2-3x faster; it refuses NaN, Infinity, floats beyond range and lone surrogates
    (which `json.loads` takes as `\\udXXX` escapes): those lines, bad JSON, and lines that do not open
    with `{"` (whitespace, a BOM) go the slow way.
    """
    if line[:2] != b'{"':
        return None
    try:
        obj = _DECODE(line)
    except Exception:  # noqa: BLE001 - msgspec.DecodeError, RecursionError, ...: the slow path names it
        return None
    return obj if obj.__class__ is dict else None


def decode_line(line: bytes, where: str) -> dict[str, Any]:
    """Parse one JSON line into an object, or raise a DataError naming where it was."""
    try:
        obj = json.loads(line, **_HOOKS)
    except NotFinite as exc:
        raise DataError(f"{where}: holds {str(exc)[:20]}, which JSON cannot carry (NaN, Infinity or a "
                        "number beyond float range)") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DataError(f"{where}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object")
    return obj


class HashingWriter:
    """A write-only file wrapper that counts and hashes every byte on its way to disk."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class HashingReader:
    """A read-only wrapper that hashes what passes through and stops at a known size."""

    def __init__(self, raw: IO[bytes], size: int, tee: IO[bytes] | None = None) -> None:
        self.raw = raw
        self.remaining = size
        self.sha = hashlib.sha256()
        self.tee = tee  # also gets every byte read (a spool of a vector part's ids)

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if n is None or n < 0 or n > self.remaining:
            n = self.remaining
        data = self.raw.read(n)
        self.sha.update(data)
        if self.tee is not None:
            self.tee.write(data)
        self.remaining -= len(data)
        if n and not data:
            raise DataError("archive is truncated (a member ends early)")
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and hash) whatever the decompressor did not need."""
        while self.remaining > 0:
            self.read(1 << 20)


def to_stored(vectors: np.ndarray, dtype: str) -> bytes:
    """Row-major little-endian bytes of `vectors` in the archive dtype (the plain f32/f16 codecs)."""
    with np.errstate(over="ignore"):  # overflow to inf is caught by the caller's finiteness check
        return get_codec(DTYPE_SUFFIX[dtype]).encode(vectors)


def from_stored(data: bytes, dtype: str, dim: int) -> np.ndarray:
    """float32 matrix (rows, dim) from stored bytes."""
    itemsize = int(DTYPES[dtype][-1])
    return get_codec(DTYPE_SUFFIX[dtype]).decode(data, len(data) // (itemsize * dim), dim)
