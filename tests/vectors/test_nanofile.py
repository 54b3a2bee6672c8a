"""nanofile: streaming reads of files LightRAG wrote, writes that LightRAG and nano-vectordb load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nano_vectordb import NanoVectorDB

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import encode_records, normalise
from ragstore_cli.vectors.nanofile import NanoVectorFile, NanoVectorWriter
from tests.vectors.helpers import fake_vectors, lightrag_load, lightrag_write

DIM = 16


def contents(n: int) -> dict[str, str]:
    return {f"chunk-{i:03d}": f"text {i} \"quoted\" \\ [x] {{y}} é" for i in range(n)}


def read_all(nf: NanoVectorFile, batch: int = 7, **kw):
    ids, metas, vecs, rows, probs, from_m = [], [], [], [], [], []
    for b in nf.batches(batch, with_matrix=True, **kw):
        ids += b.ids
        metas += b.meta
        vecs.append(b.vectors)
        rows.append(b.matrix)
        probs += b.problems
        from_m.append(b.from_matrix)
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros((0, nf.embedding_dim), np.float32)  # noqa: E731
    return ids, metas, cat(vecs), cat(rows), probs, np.concatenate(from_m) if from_m else np.zeros(0, bool)


async def test_reads_a_file_lightrag_wrote(tmp_path: Path) -> None:
    data = contents(40)
    path = await lightrag_write(tmp_path, data, DIM)
    reference = json.loads(path.read_text())
    for chunk in (5, 333, 8 << 20):  # tiny chunks cross every boundary the scanner must carry over
        nf = NanoVectorFile(path, chunk_size=chunk)
        assert (nf.embedding_dim, nf.count, nf.matrix_rows) == (DIM, 40, 40)
        ids, metas, vecs, rows, probs, from_m = read_all(nf)
        assert ids == [r["__id__"] for r in reference["data"]] and not probs and not from_m.any()
        assert [m["content"] for m in metas] == [data[i] for i in ids]
        assert all("__created_at__" in m and "__write_seq__" in m and "vector" not in m for m in metas)
        expected = fake_vectors([data[i] for i in ids], DIM)
        assert np.array_equal(vecs, expected.astype(np.float16).astype(np.float32))
        assert np.allclose(rows, normalise(expected)[0], atol=1e-6)
    assert sum(nf.parts.values()) == path.stat().st_size


async def test_written_file_loads_in_lightrag_and_nano(tmp_path: Path) -> None:
    texts = contents(30)
    ids = list(texts)
    raw = fake_vectors(list(texts.values()), DIM)
    metas = [{"__created_at__": 1735689600, "content": t, "file_path": "f.txt", "full_doc_id": "doc-1"}
             for t in texts.values()]
    path = tmp_path / "vdb_chunks.json"
    with NanoVectorWriter(path, DIM) as w:
        w.add_vectors(ids[:11], raw[:11], metas[:11])
        w.add_vectors(ids[11:], raw[11:], metas[11:])
    assert not list(tmp_path.glob("*.tmp.*"))
    db = NanoVectorDB(DIM, storage_file=str(path))
    assert len(db) == 30 and db.get(["chunk-004"])[0]["content"] == texts["chunk-004"]
    got, vecs, hits = await lightrag_load(tmp_path, ids[:3], raw[5], DIM)
    assert [g["content"] for g in got] == [texts[i] for i in ids[:3]]
    assert np.allclose(vecs["chunk-001"], raw[1], rtol=1e-3, atol=1e-3)
    assert hits[0]["id"] == "chunk-005" and hits[0]["distance"] > 0.999
    # and our reader gives the same back
    r_ids, r_metas, r_vecs, *_ = read_all(NanoVectorFile(path))
    assert r_ids == ids and r_metas == metas
    assert np.array_equal(r_vecs, raw.astype(np.float16).astype(np.float32))


async def test_compact_file_without_vector_field(tmp_path: Path) -> None:
    raw = fake_vectors([f"t{i}" for i in range(12)], DIM)
    path = tmp_path / "vdb_chunks.json"
    with NanoVectorWriter(path, DIM) as w:
        w.add_vectors([f"c{i}" for i in range(12)], raw, [{"content": f"t{i}"} for i in range(12)], keep_vector=False)
    assert '"vector"' not in path.read_text()
    ids, _, vecs, rows, probs, from_m = read_all(NanoVectorFile(path))
    assert from_m.all() and not probs and np.array_equal(vecs, rows)
    got, vecs_lr, hits = await lightrag_load(tmp_path, ["c1"], raw[3], DIM)
    assert got[0]["content"] == "t1" and vecs_lr == {}  # LightRAG omits records without `vector`
    assert hits[0]["id"] == "c3"


def test_key_order_whitespace_and_additional_data(tmp_path: Path) -> None:
    raw = fake_vectors(["a", "b", "c"], 4)
    rows = normalise(raw)[0]
    doc = {"matrix": __import__("base64").b64encode(rows.astype("<f4").tobytes()).decode(),
           "additional_data": {"k": [1, {"x": "}"}]},
           "data": [{"__id__": i, "vector": s, "content": "{[\"]}"} for i, s in zip("abc", encode_records(raw))],
           "embedding_dim": 4}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc, indent=2))
    nf = NanoVectorFile(path, chunk_size=3)
    assert nf.additional_data == doc["additional_data"] and nf.key_order[0] == "matrix"
    ids, metas, vecs, got_rows, _, _ = read_all(nf, batch=2)
    assert ids == ["a", "b", "c"] and metas[2]["content"] == "{[\"]}"
    assert np.array_equal(got_rows, rows)


def make_file(tmp_path: Path, n: int = 6, dim: int = 4) -> tuple[Path, dict]:
    raw = fake_vectors([f"t{i}" for i in range(n)], dim)
    path = tmp_path / "vdb_entities.json"
    with NanoVectorWriter(path, dim) as w:
        w.add_vectors([f"ent-{i}" for i in range(n)], raw, [{"content": f"t{i}"} for i in range(n)])
    return path, json.loads(path.read_text())


def test_corrupt_vector_is_reported_and_skippable(tmp_path: Path) -> None:
    path, doc = make_file(tmp_path)
    doc["data"][2]["vector"] = "!!!!"
    doc["data"][4]["vector"] = "eJzLSM3JyQcABiwCFQ=="  # valid zlib, wrong length
    path.write_text(json.dumps(doc))
    nf = NanoVectorFile(path)
    with pytest.raises(DataError, match=r"record 2 \(ent-2\): corrupt base64"):
        read_all(nf)
    ids, _, vecs, _, probs, _ = read_all(nf, on_error="skip")
    assert ids == ["ent-0", "ent-1", "ent-3", "ent-5"] and len(vecs) == 4
    assert [(p.index, p.id) for p in probs] == [(2, "ent-2"), (4, "ent-4")]
    assert "expected 4" in probs[1].problem


def test_malformed_record_json_named(tmp_path: Path) -> None:
    path, doc = make_file(tmp_path)
    text = path.read_text().replace('"content": "t3"', '"content": tru3', 1)
    path.write_text(text)
    ids, *_, probs, _ = read_all(NanoVectorFile(path), on_error="skip")
    assert "ent-3" not in ids and len(ids) == 5 and probs[0].index == 3 and "malformed JSON" in probs[0].problem


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(embedding_dim=0), "positive integer"),
    (lambda d: d.pop("matrix"), "no 'matrix'"),
    (lambda d: d.update(matrix=d["matrix"][:-8]), "not a whole number|not valid base64"),
    (lambda d: d.update(matrix=7), "'matrix' is not a string"),
    (lambda d: d.update(data={}), "'data' is not an array"),
])
def test_structural_errors(tmp_path: Path, mutate, message: str) -> None:
    path, doc = make_file(tmp_path)
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message):
        NanoVectorFile(path)


def test_dim_and_row_count_mismatch(tmp_path: Path) -> None:
    path, doc = make_file(tmp_path)
    with pytest.raises(DataError, match="embedding_dim is 4, expected 8"):
        NanoVectorFile(path, expected_dim=8)
    doc["data"].pop()
    path.write_text(json.dumps(doc))
    nf = NanoVectorFile(path)
    with pytest.raises(DataError, match="matrix has 6 rows but data has 5 records"):
        next(nf.batches())
    assert [len(b) for b in nf.batches(4, vectors="none")] == [4, 1]  # metadata still readable


def test_truncated_and_corrupt_matrix(tmp_path: Path) -> None:
    path, doc = make_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated"):
        NanoVectorFile(path)
    path, doc = make_file(tmp_path)
    doc["matrix"] = "*" * len(doc["matrix"])
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="corrupt base64 in matrix"):
        read_all(NanoVectorFile(path))


def test_writer_abort_leaves_target_untouched(tmp_path: Path) -> None:
    path, _ = make_file(tmp_path)
    before = path.read_bytes()
    with pytest.raises(DataError):
        with NanoVectorWriter(path, 4) as w:
            w.add_vectors(["x"], np.ones((1, 4), np.float32))
            w.add(["y"], np.ones((1, 3), np.float32))  # wrong shape
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "vdb_chunks.json"
    with NanoVectorWriter(path, 8):
        pass
    assert json.loads(path.read_text()) == {"embedding_dim": 8, "data": [], "matrix": ""}
    nf = NanoVectorFile(path)
    assert (nf.count, nf.matrix_rows, list(nf.batches())) == (0, 0, [])
    assert len(NanoVectorDB(8, storage_file=str(path))) == 0


def test_reader_keeps_reading_the_file_it_opened(tmp_path: Path) -> None:
    """LightRAG replaces the file by renaming a tmp over it: an open reader must not mix the two."""
    path, _ = make_file(tmp_path, n=6)
    nf = NanoVectorFile(path)
    newer = tmp_path / "newer.json"
    with NanoVectorWriter(newer, 4) as w:
        w.add_vectors([f"other-{i}" for i in range(9)], fake_vectors([f"o{i}" for i in range(9)], 4))
    newer.replace(path)
    ids, *_ = read_all(nf, batch=4)
    assert ids == [f"ent-{i}" for i in range(6)]
    nf.close()
    assert NanoVectorFile(path).count == 9


def test_matrix_mode_cuts_vector_members_before_parsing(tmp_path: Path) -> None:
    from ragstore_cli.vectors.nanofile import _strip_vectors

    recs = [{"__id__": "a", "vector": "QUJD", "c": 1}, {"vector": "QQ==", "__id__": "b"}, {"__id__": "c"},
            {"__id__": "d", "vector": None}, {"__id__": "e", "content": 'say "vector": "x"'}]
    expected = [{k: v for k, v in r.items() if not (k == "vector" and isinstance(v, str))} for r in recs]
    for text in (json.dumps(recs), json.dumps(recs, separators=(",", ":")), json.dumps(recs, indent=2)):
        assert json.loads("[" + _strip_vectors(text.encode()[1:-1]).decode() + "]") == expected
    path, doc = make_file(tmp_path, n=9)
    doc["data"][4]["vector"] = 'bro\\"ken'  # an escaped quote: the cut fails, the full parse takes over
    path.write_text(json.dumps(doc))
    nf = NanoVectorFile(path)
    raw = list(nf.batches(4, vectors="none", keep_vector_strings=True))
    cut = list(nf.batches(4, vectors="matrix"))
    assert [b.meta for b in raw] == [b.meta for b in cut] and [b.ids for b in raw] == [b.ids for b in cut]
    assert all(b.vector_strings == [] for b in cut) and raw[1].vector_strings[0] == 'bro\\"ken'
