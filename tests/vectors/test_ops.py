"""stats, compact/expand, export and verify on real NanoVectorDB files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import decode_records, encode_records, get_codec, normalise
from ragstore_cli.vectors.nanofile import NanoVectorFile, NanoVectorWriter
from ragstore_cli.vectors.ops import STASH_KEY, compact_nano, expand_nano, export_nano
from ragstore_cli.vectors.stats import nano_stats
from ragstore_cli.vectors.verify import verify
from tests.vectors.helpers import fake_vectors, lightrag_load, lightrag_write


def write(path: Path, raw: np.ndarray, ids: list[str] | None = None, **kw) -> Path:
    ids = ids or [f"id-{i}" for i in range(len(raw))]
    with NanoVectorWriter(path, raw.shape[1]) as w:
        w.add_vectors(ids, raw, [{"content": i} for i in ids], **kw)
    return path


@pytest.fixture
def raw() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((400, 24)) * rng.uniform(0.5, 4, (400, 1))).astype(np.float32)


def test_stats_clean_file(tmp_path: Path, raw: np.ndarray) -> None:
    path = write(tmp_path / "v.json", raw)
    s = nano_stats(path, batch_size=64)
    norms = np.linalg.norm(raw.astype(np.float16).astype(np.float64), axis=1)
    assert (s["count"], s["matrix_rows"], s["embedding_dim"]) == (400, 400, 24)
    assert s["vectors"]["norms"]["min"] == pytest.approx(norms.min())
    assert s["vectors"]["norms"]["mean"] == pytest.approx(norms.mean())
    assert s["matrix"]["norms"]["max"] == pytest.approx(1.0, abs=1e-5)
    assert s["ok"] and s["matrix_disagreements"]["count"] == 0 and s["duplicate_ids"]["count"] == 0
    assert sum(p["bytes"] for p in s["parts"].values()) == path.stat().st_size
    assert s["parts"]["vector_fields"]["bytes"] == sum(len(x) for x in encode_records(raw))


def test_stats_finds_every_anomaly(tmp_path: Path, raw: np.ndarray) -> None:
    raw[5] = 0.0
    raw[6, 3] = np.nan
    path = write(tmp_path / "v.json", raw, [f"id-{i}" for i in range(399)] + ["id-7"])
    doc = json.loads(path.read_text())
    doc["data"][9]["vector"] = encode_records(raw[10:11])[0]  # record 9 carries record 10's vector
    doc["data"][11]["vector"] = "AAAA"  # valid base64, not zlib
    del doc["data"][12]["vector"]
    path.write_text(json.dumps(doc))
    s = nano_stats(path, batch_size=50)
    assert s["vectors"]["zero_vectors"] == 1 and s["vectors"]["nan_vectors"] == 1
    assert s["duplicate_ids"] == {"count": 1, "samples": ["id-7"]}
    assert set(s["matrix_disagreements"]["samples"]) == {"id-6", "id-9"}  # NaN row and the swapped one
    assert s["records_without_vector"] == {"count": 1, "samples": ["id-12"]}
    assert s["bad_records"] == 1 and "record 11 (id-11): corrupt zlib" in s["problems"][0]
    assert not s["ok"]
    with pytest.raises(DataError, match="record 11"):
        nano_stats(path, on_error="stop")


async def test_compact_then_expand_round_trip_with_lightrag(tmp_path: Path) -> None:
    texts = {f"chunk-{i}": f"text {i}" for i in range(25)}
    path = await lightrag_write(tmp_path, texts, 16)
    original = json.loads(path.read_text())
    report = compact_nano(path)
    assert report["vector_fields_dropped"] == 25 and report["bytes_after"] < report["bytes_before"] * 0.85
    compact = json.loads(path.read_text())
    assert compact["matrix"] == original["matrix"] and all("vector" not in r for r in compact["data"])
    assert [{k: v for k, v in r.items() if k != "vector"} for r in original["data"]] == compact["data"]
    q = fake_vectors(["text 4"], 16)[0]
    got, vecs, hits = await lightrag_load(tmp_path, ["chunk-2"], q, 16)
    assert got[0]["content"] == "text 2" and vecs == {} and hits[0]["id"] == "chunk-4"

    expand_nano(path)
    back = json.loads(path.read_text())
    assert STASH_KEY not in back.get("additional_data", {}) and back["matrix"] == original["matrix"]
    dim = 16
    before, _, _ = decode_records([r["vector"] for r in original["data"]], dim)
    after, ok, _ = decode_records([r["vector"] for r in back["data"]], dim)
    assert ok.all() and np.abs(after - before).max() <= np.abs(before).max() * 2 ** -10  # within a float16 step
    _, vecs, _ = await lightrag_load(tmp_path, ["chunk-2"], q, 16)
    assert np.allclose(vecs["chunk-2"], before[[r["__id__"] for r in original["data"]].index("chunk-2")], rtol=2e-3)


def test_expand_without_norms_gives_unit_vectors(tmp_path: Path, raw: np.ndarray) -> None:
    path = write(tmp_path / "v.json", raw, keep_vector=False)
    report = expand_nano(path, tmp_path / "out.json")
    assert report["vector_fields_added"] == 400 and report["unit_length"] == 400 and report["norms_restored"] == 0
    vecs, ok, _ = decode_records([r["vector"] for r in json.loads((tmp_path / "out.json").read_text())["data"]], 24)
    assert ok.all() and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=2e-3)


async def test_norms_survive_lightrag_changes(tmp_path: Path) -> None:
    """LightRAG adds and deletes records after compaction: the kept norms still match by id."""
    from tests.vectors.helpers import _storage

    texts = {f"chunk-{i}": f"text {i}" for i in range(12)}
    path = await lightrag_write(tmp_path, texts, 16)
    original = {r["__id__"]: r["vector"] for r in json.loads(path.read_text())["data"]}
    compact_nano(path)
    store = _storage(tmp_path, "chunks", 16)
    await store.initialize()
    await store.upsert({"chunk-new": {"content": "new text", "file_path": "f.txt", "full_doc_id": "doc-2"}})
    await store.delete(["chunk-0"])
    await store.index_done_callback()
    doc = json.loads(path.read_text())
    assert STASH_KEY in doc["additional_data"]  # nano-vectordb carried it through LightRAG's save
    assert [r["__id__"] for r in doc["data"] if "vector" in r] == ["chunk-new"]
    report = expand_nano(path)
    assert (report["records"], report["vector_fields_added"], report["norms_restored"], report["unit_length"]) == (
        12, 11, 11, 0)
    back = {r["__id__"]: r["vector"] for r in json.loads(path.read_text())["data"]}
    before, _, _ = decode_records([original[i] for i in texts if i != "chunk-0"], 16)
    after, _, _ = decode_records([back[i] for i in texts if i != "chunk-0"], 16)
    assert np.abs(after - before).max() <= np.abs(before).max() * 2 ** -10


def test_export_npy_and_ids(tmp_path: Path, raw: np.ndarray) -> None:
    path = write(tmp_path / "v.json", raw)
    report = export_nano(path, tmp_path / "out.npy", batch_size=64)
    arr = np.load(tmp_path / "out.npy")
    assert arr.dtype == np.float32 and np.array_equal(arr, raw.astype(np.float16).astype(np.float32))
    lines = [json.loads(x) for x in (tmp_path / "out.ids.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"id-{i}" for i in range(400)] and lines[3] == {"id": "id-3", "row": 3,
                                                                                        "content": "id-3"}
    assert report["rows"] == 400 and report["non_finite_rows"] == 0
    with_nan = raw.copy()
    with_nan[7, 2] = np.nan
    nan_path = write(tmp_path / "nan.json", with_nan)
    report = export_nano(nan_path, tmp_path / "nan.npy")
    assert report["non_finite_rows"] == 1 and report["problems"] == ["id-7: vector holds NaN or Inf"]
    assert np.isnan(np.load(tmp_path / "nan.npy")[7, 2])
    export_nano(path, tmp_path / "m.npy", source="matrix", dtype="float16", with_meta=False)
    m = np.load(tmp_path / "m.npy")
    assert m.dtype == np.float16 and np.allclose(m, normalise(raw)[0], atol=1e-3)


def test_export_skip_fixes_the_npy_header(tmp_path: Path, raw: np.ndarray) -> None:
    path = write(tmp_path / "v.json", raw)
    doc = json.loads(path.read_text())
    doc["data"][1]["vector"] = "###"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="id-1"):
        export_nano(path, tmp_path / "out.npy")
    assert not list(tmp_path.glob("*out*"))  # nothing half-written
    export_nano(path, tmp_path / "out.npy", on_error="skip")
    assert np.load(tmp_path / "out.npy").shape == (399, 24)
    assert len((tmp_path / "out.ids.jsonl").read_text().splitlines()) == 399


def test_verify_identical_lossy_and_broken(tmp_path: Path, raw: np.ndarray) -> None:
    a = write(tmp_path / "a.json", raw)
    b = write(tmp_path / "b.json", raw)
    assert verify(str(a), str(b))["identical"]
    int8 = get_codec("int8")
    lossy = int8.decode(int8.encode(raw), *raw.shape)
    c = write(tmp_path / "c.json", lossy)
    r = verify(str(a), str(c), queries=50)
    assert not r["identical"] and r["ok"] and r["recall"] >= 0.9 and 0 < r["max_abs_error"] < 0.2
    assert not verify(str(a), str(c), exact=True)["ok"]
    noise = raw + np.random.default_rng(9).standard_normal(raw.shape).astype(np.float32) * 3
    d = write(tmp_path / "d.json", noise)
    r = verify(str(a), str(d), queries=50)
    assert not r["ok"] and r["recall"] < 0.5


def test_verify_aligns_reordered_ids_and_reports_missing(tmp_path: Path, raw: np.ndarray) -> None:
    ids = [f"id-{i}" for i in range(400)]
    a = write(tmp_path / "a.json", raw, ids)
    order = np.random.default_rng(1).permutation(400)
    b = write(tmp_path / "b.json", raw[order], [ids[i] for i in order])
    r = verify(str(a), str(b))
    assert r["ok"] and r["identical"] and "by id" in r["aligned"]
    c = write(tmp_path / "c.json", raw[:399], ids[:399])
    r = verify(str(a), str(c))
    assert not r["ok"] and r["only_in_a"] == {"count": 1, "samples": ["id-399"]}


def test_nanofile_count_matches_after_compact(tmp_path: Path, raw: np.ndarray) -> None:
    path = write(tmp_path / "v.json", raw)
    compact_nano(path, tmp_path / "c.json")
    nf = NanoVectorFile(tmp_path / "c.json")
    assert nf.count == 400 and len(nf.additional_data[STASH_KEY]["ids"]) == 400
