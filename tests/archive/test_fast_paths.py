"""The reader's fast paths give exactly what the plain ones gave: JSON lines, line splitting, matrices."""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ragstore_cli.archive import ArchiveReader, ArchiveWriter
from ragstore_cli.archive import lines as lines_module
from ragstore_cli.archive.codec import decode_line, parse_object
from ragstore_cli.records import VectorBatch
from ragstore_cli.errors import DataError

LINES = [
    b'{"a":1}', b'{"a":1,"a":2}', b'{"a":1,"b":2,"a":3}', b'{"a":"\\ud800"}', b'{"a":"\xed\xa0\x80"}', b'{"a":1e400}', b'{"a":NaN}', b'{"a":[-Infinity]}', b'{"a":{"b":1' + b"0" * 400 + b'.5}}',
    b'{"a":123456789012345678901234567890}', b'{"a":-0}', b'{"a":-0.0}', b'{"a":0.1}', b'{"a":5e-324}',
    b'{"a":"\\u0000"}', b'{"\xc3\xa9":"\xf0\x9f\x98\x80"}', b'{"a":[' * 50 + b"]" * 50 + b"}",
    b'{"a":1} ', b' {"a":1}', b'\xef\xbb\xbf{"a":1}', b'{"a":1}{"b":2}', b'{"a":"\t"}', b'{"a":tru}', b'{"a":1',
    b'{"a":[' * 5000 + b"]" * 5000 + b"}", b'{"a":"\xff"}', b'[1]', b'"x"', b"{}", b"",
]


@pytest.mark.parametrize("line", LINES)
def test_parse_object_is_json_loads_or_none(line: bytes) -> None:
    try:
        expected = json.loads(line)
    except (ValueError, RecursionError):
        expected = None
    got = parse_object(line)
    if got is not None:  # whatever the fast path takes, it reads as json.loads does
        assert repr(got) == repr(expected)
    elif isinstance(expected, dict):  # declined for a layout it leaves to json.loads, NaN/Infinity, surrogates
        assert line[:2] != b'{"' or line != line.strip() or not _finite(expected) or _surrogates(expected)
        if not _finite(expected):
            with pytest.raises(DataError, match="NaN, Infinity"):
                decode_line(line, "here")


def _surrogates(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_surrogates(k) or _surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_surrogates(v) for v in value)
    return False


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@settings(max_examples=1500, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), JSON, max_size=6), ascii_only=st.booleans())
def test_parse_object_reads_any_object_as_json_loads(value: dict, ascii_only: bool) -> None:
    """Whatever the fast path accepts (integers of any size, floats, escapes), it reads exactly as json.loads."""
    line = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")).encode("utf-8", "surrogatepass")
    got = parse_object(line)
    expected = json.loads(line)
    if got is None:
        assert not value or _surrogates(expected) or line[:2] != b'{"'
    else:
        assert repr(got) == repr(expected)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


class _Chunks:
    def __init__(self, data: bytes, rng: random.Random) -> None:
        self.src, self.rng = io.BytesIO(data), rng

    def read(self, n: int) -> bytes:
        return self.src.read(min(n, self.rng.randint(1, 12)))


def _readline_way(data: bytes, limit: int) -> list:
    out: list = []
    src = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
    while True:
        line = src.readline(limit)
        if len(line) >= limit:
            return out + ["too long"]
        if not line:
            return out
        out.append(line)


def _block_way(data: bytes, limit: int, rng: random.Random) -> list:
    out: list = []
    try:
        for lines, ended in lines_module.line_blocks(_Chunks(data, rng), "m", limit, block=12):  # type: ignore[arg-type]
            out.extend(line + b"\n" if ended else line for line in lines)
    except DataError:
        out.append("too long")
    return out


def test_line_blocks_split_as_readline_does() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        parts = [b"x" * rng.choice([0, 1, 2, 3, 5, 8, 13, 21]) for _ in range(rng.randint(0, 8))]
        data = b"\n".join(parts) + rng.choice([b"", b"\n", b"\n\n"])
        limit = rng.randint(1, 24)
        assert _block_way(data, limit, rng) == _readline_way(data, limit), (data, limit)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_matrix_batches_as_before(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((23, 7), dtype=np.float32)
    path = tmp_path / "a.ragstore"
    w = ArchiveWriter(path, workspace="w", embedding_model="m", embedding_dim=7, vector_dtype=dtype)
    with w.vectors("chunks") as s:
        s.write(VectorBatch([f"c{i}" for i in range(23)], vectors, [{"content": str(i)} for i in range(23)]))
    w.finish()
    got = []
    for section in ArchiveReader(path).sections(batch_size=5):
        if section.key == "vectors/chunks":
            got = list(section.batches())
    assert [len(b) for b in got] == [5, 5, 5, 5, 3]
    matrix = np.concatenate([b.vectors for b in got])
    assert matrix.dtype == np.float32
    assert np.array_equal(matrix, vectors.astype(dtype).astype(np.float32))
    assert [m["content"] for b in got for m in b.meta] == [str(i) for i in range(23)]
