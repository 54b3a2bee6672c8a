"""jsonscan: spans of top-level values and nested objects, whatever the chunk boundaries cut through."""

from __future__ import annotations

import io
import json
import random

import pytest

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.jsonscan import scan_top_level

DOC = {
    "embedding_dim": 3,
    "data": [{"__id__": 'a\\"}]{', "x": [1, {"y": "\\\\"}]}, {"__id__": "b", "matrix": "q\\\\\\\""}, {}],
    "matrix": "AAAA",
    "additional_data": {"k": {"z": "}{]["}},
}


@pytest.mark.parametrize("indent", [None, 2])
def test_every_chunk_size(indent) -> None:
    for order in (DOC, dict(reversed(list(DOC.items())))):
        raw = ("\ufeff " + json.dumps(order, indent=indent) + "\n").encode()
        for chunk in range(1, 48):
            top = scan_top_level(io.BytesIO(raw), chunk_size=chunk)
            assert {k: json.loads(raw[s:e]) for k, (s, e) in top.values.items()} == DOC, chunk
            start = top.values["data"][0] + 1
            pieces = []
            for end in top.object_ends["data"].tolist():
                pieces.append(json.loads(raw[start:end].lstrip(b" \n,")))
                start = end
            assert pieces == DOC["data"], chunk
            assert top.key_order == list(order)


@pytest.mark.parametrize("raw, message", [
    (b"", "empty file"),
    (b"  \n", "empty file"),
    (b"[1]", "not a JSON object"),
    (b'{"a": 1', "truncated"),
    (b'{"a": "x}', "truncated"),
    (b'{"a": 1}x', "unexpected data"),
    (b'{"a": 1}}', "unbalanced|unexpected data"),
    (b'{"a": 1 "b": 2}', "missing comma"),
    (b'{"a": 1, "a": 2}', "appears twice"),
    (b'{"a": }', "has no value"),
])
def test_malformed(raw: bytes, message: str) -> None:
    for chunk in (1, 4, 1 << 20):
        with pytest.raises(DataError, match=message):
            scan_top_level(io.BytesIO(raw), chunk_size=chunk)


def test_escaped_quotes_and_backslash_runs_across_chunk_boundaries() -> None:
    rng = random.Random(3)
    values = ["".join(rng.choice('\\\\"a{}[],:') for _ in range(rng.randrange(40))) for _ in range(30)]
    doc = {f"k{i}\\\"": [{"v": v}, v] for i, v in enumerate(values)}
    raw = json.dumps(doc).encode()
    for chunk in (1, 2, 3, 5, 7, 64):
        top = scan_top_level(io.BytesIO(raw), chunk_size=chunk)
        assert {k: json.loads(raw[s:e]) for k, (s, e) in top.values.items()} == doc, chunk
        assert all(len(top.object_ends[k]) == 1 for k in doc)
