"""Codecs: bit-compatibility with LightRAG's per-record format and nano-vectordb's matrix, round trips."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest
from nano_vectordb.dbs import array_to_buffer_string, buffer_string_to_array, normalize

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import (
    CODECS,
    decode_matrix,
    decode_records,
    encode_matrix,
    encode_records,
    get_codec,
    normalise,
)


def lightrag_encode(vec: np.ndarray) -> str:
    """LightRAG 1.5.7's per-record encoding, as written by NanoVectorDBStorage (the reference)."""
    return base64.b64encode(zlib.compress(vec.astype(np.float16).tobytes())).decode("utf-8")


def lightrag_decode(s: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(s)), dtype=np.float16).astype(np.float32)


@pytest.fixture
def mat() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((300, 64)).astype(np.float32)


def test_records_are_bit_identical_to_lightrag(mat: np.ndarray) -> None:
    ours = encode_records(mat)
    assert ours == [lightrag_encode(v) for v in mat]
    decoded, ok, problems = decode_records(ours, 64)
    assert ok.all() and not problems
    assert np.array_equal(decoded, np.stack([lightrag_decode(s) for s in ours]))
    assert decoded.dtype == np.float32


def test_record_decode_names_the_bad_rows(mat: np.ndarray) -> None:
    enc: list = encode_records(mat[:6])
    enc[1] = "not base64!!"
    enc[2] = base64.b64encode(b"definitely not zlib").decode()
    enc[3] = base64.b64encode(zlib.compress(b"\0" * 10)).decode()  # wrong length
    enc[4] = None
    decoded, ok, problems = decode_records(enc, 64)
    assert ok.tolist() == [True, False, False, False, False, True]
    assert "base64" in problems[1] and "zlib" in problems[2] and "expected 64" in problems[3]
    assert "no 'vector'" in problems[4]
    assert np.array_equal(decoded[5], lightrag_decode(enc[5]))
    assert not decoded[1:5].any()


def test_matrix_matches_nano_vectordb(mat: np.ndarray) -> None:
    mat[3] = 0.0  # nano-vectordb would write NaN here; we keep a zero row
    ours = encode_matrix(mat)
    good = np.delete(mat, 3, axis=0)
    assert encode_matrix(good) == array_to_buffer_string(normalize(good).astype(np.float32))
    back = decode_matrix(ours, 64)
    assert back.shape == (300, 64) and not back[3].any()
    assert np.array_equal(np.delete(back, 3, axis=0), buffer_string_to_array(encode_matrix(good)).reshape(-1, 64))
    assert encode_matrix(np.zeros((0, 64), np.float32)) == ""
    assert decode_matrix("", 64).shape == (0, 64)


def test_matrix_errors_are_data_errors() -> None:
    with pytest.raises(DataError, match="corrupt base64"):
        decode_matrix("@@@@", 4)
    with pytest.raises(DataError, match="whole number"):
        decode_matrix(base64.b64encode(b"\0" * 20).decode(), 4)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_archive_codecs_round_trip(name: str, mat: np.ndarray) -> None:
    codec = get_codec(name)
    payload = codec.encode(mat)
    back = codec.decode(payload, *mat.shape)
    assert back.shape == mat.shape and back.dtype == np.float32
    if codec.lossless:
        assert np.array_equal(back, mat)
    elif name.startswith("f16"):
        assert np.array_equal(back, mat.astype(np.float16).astype(np.float32))
    else:
        # int8: error bounded by half a quantisation step of each row's scale
        step = np.abs(mat).max(axis=1) / 127.0
        assert (np.abs(back - mat) <= step[:, None] * 0.5 + 1e-6).all()
    empty = codec.decode(codec.encode(mat[:0]), 0, 64)
    assert empty.shape == (0, 64)


def test_compressed_codecs_are_smaller(mat: np.ndarray) -> None:
    lowrank = (mat[:, :4] @ np.random.default_rng(1).standard_normal((4, 64))).astype(np.float32)
    assert len(get_codec("f16z").encode(lowrank)) < len(get_codec("f16").encode(lowrank))
    assert len(get_codec("f32z").encode(lowrank)) < len(get_codec("f32").encode(lowrank))
    assert len(get_codec("int8").encode(mat)) == 300 * (64 + 4)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_truncated_payload_is_a_data_error(name: str, mat: np.ndarray) -> None:
    payload = get_codec(name).encode(mat)
    with pytest.raises(DataError, match=name):
        get_codec(name).decode(payload[:-7], *mat.shape)


def test_unknown_codec_and_int8_nan(mat: np.ndarray) -> None:
    with pytest.raises(DataError, match="known: f32"):
        get_codec("lz77")
    mat[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        get_codec("int8").encode(mat)
    assert np.isnan(get_codec("f32z").decode(get_codec("f32z").encode(mat), 300, 64)[0, 0])


def test_normalise_keeps_norms(mat: np.ndarray) -> None:
    rows, norms = normalise(mat)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    assert np.allclose(rows * norms[:, None], mat, atol=1e-5)


def test_f16z_blocks_keep_the_plane_layout() -> None:
    """The blocked f16z writer must produce exactly [zstd(high bytes) | low bytes] over the whole batch."""
    from ragstore_cli.vectors import codecs

    m = np.random.default_rng(5).standard_normal((5000, 64)).astype(np.float32)  # several blocks
    payload = get_codec("f16z").encode(m)
    assert payload == codecs._planes_encode(m.astype("<f2"), 2, 1, 1)
    assert np.array_equal(get_codec("f16z").decode(payload, 5000, 64), m.astype(np.float16).astype(np.float32))
    with pytest.raises(DataError, match="f16z"):
        get_codec("f16z").decode(payload, 4999, 64)
