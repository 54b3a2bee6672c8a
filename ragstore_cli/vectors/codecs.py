"""Vector codecs: LightRAG's per-record format, NanoVectorDB's matrix, and whole-batch archive codecs.

Three families, all batch-oriented (numpy over the whole matrix; only zlib runs per record because
LightRAG's format is one zlib stream per vector):

* `encode_records` / `decode_records`: LightRAG's `vector` field, bit-compatible with 1.5.x
  (float16 bytes -> zlib default level -> base64; decoded to float32).
* `encode_matrix` / `decode_matrix`: NanoVectorDB's `matrix` (base64 of L2-normalised float32 rows,
  little-endian, `""` when empty).
* Archive codecs from `get_codec(name)`: `f32`, `f32z` (lossless), `f16`, `f16z` (float16, the
  default), `int8` (per-vector scale, lossy, opt-in). `encode(matrix) -> bytes`,
  `decode(bytes, n, dim) -> float32 (n, dim)`.

Byte-shuffle finding (see docs/vectors.md): the low byte of a float16 (mantissa) and the two low
bytes of a float32 are incompressible noise, so only the high byte planes go through zstd and the
low planes are stored raw: same size as shuffling everything, about 1.5-2x faster.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import zstandard

from ragstore_cli.errors import DataError

DEFAULT_CODEC = "f16z"


# --------------------------------------------------------------------------- LightRAG per-record
def encode_records(vectors: np.ndarray) -> list[str]:
    """LightRAG `vector` strings for each row (float16 -> zlib default level -> base64)."""
    mat = _as_matrix(vectors)
    if mat.shape[0] == 0:
        return []
    if mat.shape[1] == 0:
        raise DataError("cannot encode 0-dimensional vectors")
    with np.errstate(over="ignore"):
        half = np.ascontiguousarray(mat.astype("<f2"))
    if not np.isfinite(half).all() and (np.isinf(half) & np.isfinite(mat)).any():  # never inf from a finite value
        raise DataError("a vector holds values beyond float16's range (±65504): LightRAG's per-record "
                        "`vector` is float16 and cannot hold them")
    buf = memoryview(half.reshape(-1).view(np.uint8))
    step = half.shape[1] * 2
    compress, b64 = zlib.compress, binascii.b2a_base64
    return [b64(compress(buf[i:i + step]), newline=False).decode("ascii") for i in range(0, len(buf), step)]


def decode_records(
    encoded: Sequence[str | None], dim: int
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Decode LightRAG `vector` strings to float32 (n, dim).

    Returns (matrix, ok mask, {index: problem}). Rows that are missing or corrupt are zero and
    False in the mask, so one bad record never stops the batch; the caller decides what to do.
    """
    n = len(encoded)
    problems: dict[int, str] = {}
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=bool), problems
    rowlen = dim * 2
    a2b, decompress = binascii.a2b_base64, zlib.decompress
    try:  # fast path: every record present and well formed
        raw = [decompress(a2b(s)) for s in encoded]  # type: ignore[arg-type]
        if all(len(r) == rowlen for r in raw):
            out = np.frombuffer(b"".join(raw), dtype="<f2").reshape(n, dim).astype(np.float32)
            return out, np.ones(n, dtype=bool), problems
    except Exception:  # noqa: BLE001 - fall through to the per-record path that names the culprit
        pass
    out = np.zeros((n, dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    half = np.zeros((n, dim), dtype="<f2")
    for i, s in enumerate(encoded):
        if s is None:
            problems[i] = "no 'vector' field"
            continue
        if not isinstance(s, str):
            problems[i] = f"'vector' is a {type(s).__name__}, not a base64 string"
            continue
        try:
            blob = binascii.a2b_base64(s.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            problems[i] = f"corrupt base64 in 'vector' ({exc})"
            continue
        try:
            data = zlib.decompress(blob)
        except zlib.error as exc:
            problems[i] = f"corrupt zlib payload in 'vector' ({exc})"
            continue
        if len(data) != rowlen:
            problems[i] = f"'vector' holds {len(data) // 2} float16 values, expected {dim}"
            continue
        half[i] = np.frombuffer(data, dtype="<f2")
        ok[i] = True
    out[:] = half
    return out, ok, problems


# --------------------------------------------------------------------------- NanoVectorDB matrix
def normalise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised float32 rows and the norms; zero rows stay zero (nano-vectordb would make NaN)."""
    mat = _as_matrix(vectors)
    norms = np.linalg.norm(mat, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, 1.0).astype(np.float32)
    return (mat / safe[:, None]).astype(np.float32, copy=False), norms


def encode_matrix(vectors: np.ndarray, *, already_normalised: bool = False) -> str:
    """NanoVectorDB `matrix` string: base64 of the L2-normalised float32 rows ("" when empty)."""
    mat = _as_matrix(vectors)
    if mat.shape[0] == 0:
        return ""
    rows = mat if already_normalised else normalise(mat)[0]
    return binascii.b2a_base64(np.ascontiguousarray(rows, dtype="<f4").tobytes(), newline=False).decode("ascii")


def decode_matrix(encoded: str | bytes, dim: int) -> np.ndarray:
    """NanoVectorDB `matrix` string to float32 (n, dim); a malformed string is a DataError."""
    if not encoded:
        return np.zeros((0, dim), dtype=np.float32)
    try:
        raw = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DataError(f"matrix: corrupt base64 ({exc})") from None
    if len(raw) % (4 * dim):
        raise DataError(f"matrix: {len(raw)} bytes is not a whole number of {dim}-dim float32 rows")
    return np.frombuffer(raw, dtype="<f4").reshape(-1, dim).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- archive codecs
@dataclass(frozen=True)
class Codec:
    """A whole-batch codec for archives: bytes in, float32 (n, dim) out."""

    name: str
    lossless: bool
    description: str
    _encode: Callable[[np.ndarray], bytes]
    _decode: Callable[[bytes, int, int], np.ndarray]

    def encode(self, vectors: np.ndarray) -> bytes:
        return self._encode(_as_matrix(vectors))

    def decode(self, payload: bytes, n: int, dim: int) -> np.ndarray:
        try:
            out = self._decode(payload, n, dim)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - zstd/numpy errors become one clear line
            raise DataError(f"{self.name}: cannot decode {n}x{dim} vectors ({type(exc).__name__}: {exc})") from None
        return out


def _expect(payload: bytes, size: int, name: str) -> None:
    if len(payload) != size:
        raise DataError(f"{name}: payload has {len(payload)} bytes, expected {size}")


def _f32_encode(mat: np.ndarray) -> bytes:
    return np.ascontiguousarray(mat, dtype="<f4").tobytes()


def _f32_decode(payload: bytes, n: int, dim: int) -> np.ndarray:
    _expect(payload, n * dim * 4, "f32")
    return np.frombuffer(payload, dtype="<f4").reshape(n, dim).astype(np.float32)


def _f16_encode(mat: np.ndarray) -> bytes:
    return mat.astype("<f2").tobytes()


def _f16_decode(payload: bytes, n: int, dim: int) -> np.ndarray:
    _expect(payload, n * dim * 2, "f16")
    return np.frombuffer(payload, dtype="<f2").reshape(n, dim).astype(np.float32)


_HEADER = struct.Struct("<Q")  # length of the zstd frame holding the high byte planes


def _planes_encode(raw: np.ndarray, width: int, high: int, level: int) -> bytes:
    """Split little-endian words into byte planes; zstd the `high` top planes, keep the rest raw."""
    planes = raw.view(np.uint8).reshape(-1, width)
    hi = np.ascontiguousarray(planes[:, width - high:].T)
    lo = np.ascontiguousarray(planes[:, : width - high].T)
    frame = zstandard.ZstdCompressor(level=level).compress(hi.tobytes())
    return _HEADER.pack(len(frame)) + frame + lo.tobytes()


def _planes_decode(payload: bytes, count: int, width: int, high: int, name: str) -> np.ndarray:
    if len(payload) < _HEADER.size:
        raise DataError(f"{name}: payload too short")
    (flen,) = _HEADER.unpack_from(payload)
    lo_size = count * (width - high)
    _expect(payload, _HEADER.size + flen + lo_size, name)
    hi = zstandard.ZstdDecompressor().decompress(
        payload[_HEADER.size: _HEADER.size + flen], max_output_size=count * high)
    if len(hi) != count * high:
        raise DataError(f"{name}: high byte planes hold {len(hi)} bytes, expected {count * high}")
    words = np.empty((count, width), dtype=np.uint8)
    words[:, width - high:] = np.frombuffer(hi, dtype=np.uint8).reshape(high, count).T
    words[:, : width - high] = np.frombuffer(payload, dtype=np.uint8, offset=_HEADER.size + flen).reshape(
        width - high, count).T
    return words.reshape(-1)


_BLOCK_VALUES = 1 << 17  # values per block: keeps the float16 temporaries in cache


def _f16z_encode(mat: np.ndarray) -> bytes:
    """Same layout as `_planes_encode(f16, 2, 1, 1)`, built a block of rows at a time."""
    n, dim = mat.shape
    step = max(1, _BLOCK_VALUES // max(dim, 1))
    cobj = zstandard.ZstdCompressor(level=1).compressobj(size=n * dim)
    lo = np.empty(n * dim, dtype=np.uint8)
    parts = []
    for s in range(0, n, step):
        e = min(s + step, n)
        planes = mat[s:e].astype("<f2").view(np.uint8).reshape(-1, 2)
        lo[s * dim:e * dim] = planes[:, 0]
        parts.append(cobj.compress(planes[:, 1].tobytes()))
    parts.append(cobj.flush())
    frame = b"".join(parts)
    return _HEADER.pack(len(frame)) + frame + lo.tobytes()


def _f16z_decode(payload: bytes, n: int, dim: int) -> np.ndarray:
    if len(payload) < _HEADER.size:
        raise DataError("f16z: payload too short")
    (flen,) = _HEADER.unpack_from(payload)
    _expect(payload, _HEADER.size + flen + n * dim, "f16z")
    lo = np.frombuffer(payload, dtype=np.uint8, offset=_HEADER.size + flen)
    out = np.empty((n, dim), dtype=np.float32)
    step = max(1, _BLOCK_VALUES // max(dim, 1))
    words = np.empty((step * dim, 2), dtype=np.uint8)
    with zstandard.ZstdDecompressor().stream_reader(memoryview(payload)[_HEADER.size:_HEADER.size + flen]) as hi:
        for s in range(0, n, step):
            e = min(s + step, n)
            k = (e - s) * dim
            block = hi.read(k)
            if len(block) != k:
                raise DataError(f"f16z: high byte plane ends after {s * dim + len(block)} of {n * dim} values")
            words[:k, 1] = np.frombuffer(block, dtype=np.uint8)
            words[:k, 0] = lo[s * dim:e * dim]
            out[s:e] = words[:k].reshape(-1).view("<f2").reshape(e - s, dim)
        if hi.read(1):
            raise DataError("f16z: high byte plane holds more values than expected")
    return out


def _f32z_encode(mat: np.ndarray) -> bytes:
    return _planes_encode(np.ascontiguousarray(mat, dtype="<f4"), 4, 2, 3)


def _f32z_decode(payload: bytes, n: int, dim: int) -> np.ndarray:
    words = _planes_decode(payload, n * dim, 4, 2, "f32z")
    return words.view("<f4").reshape(n, dim).astype(np.float32)


def _int8_encode(mat: np.ndarray) -> bytes:
    if mat.size and not np.isfinite(mat).all():
        raise DataError("int8: vectors contain NaN or Inf; use a lossless codec")
    peak = np.abs(mat).max(axis=1) if mat.shape[1] else np.zeros(mat.shape[0], np.float32)
    scale = (peak / 127.0).astype("<f4")
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.rint(mat / safe[:, None]).clip(-127, 127).astype(np.int8)
    return scale.tobytes() + q.tobytes()


def _int8_decode(payload: bytes, n: int, dim: int) -> np.ndarray:
    _expect(payload, n * 4 + n * dim, "int8")
    scale = np.frombuffer(payload, dtype="<f4", count=n)
    q = np.frombuffer(payload, dtype=np.int8, offset=n * 4).reshape(n, dim)
    return q.astype(np.float32) * scale[:, None]


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("f32", True, "raw float32 (lossless, 4 B/value)", _f32_encode, _f32_decode),
        Codec("f32z", True, "float32, high byte planes zstd-3 (lossless)", _f32z_encode, _f32z_decode),
        Codec("f16", False, "raw float16 (2 B/value; LightRAG's own precision)", _f16_encode, _f16_decode),
        Codec("f16z", False, "float16, high byte plane zstd-1 (default)", _f16z_encode, _f16z_decode),
        Codec("int8", False, "int8 with a per-vector scale (lossy, opt-in)", _int8_encode, _int8_decode),
    )
}


def get_codec(name: str) -> Codec:
    """The archive codec called `name`; an unknown name is a DataError listing the known ones."""
    try:
        return CODECS[name]
    except KeyError:
        raise DataError(f"unknown vector codec {name!r}; known: {', '.join(CODECS)}") from None


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    mat = np.asarray(vectors, dtype=np.float32)
    if mat.ndim != 2:
        raise DataError(f"expected a 2-d matrix of vectors, got shape {mat.shape}")
    return mat
