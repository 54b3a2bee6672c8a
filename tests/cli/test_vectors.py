"""`ragstore vectors …` through the CLI: JSON documents, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragstore_cli.vectors.nanofile import NanoVectorWriter


def nano(path: Path, n: int = 120, dim: int = 16, seed: int = 0) -> np.ndarray:
    raw = (np.random.default_rng(seed).standard_normal((n, dim)) * 2).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with NanoVectorWriter(path, dim) as w:
        w.add_vectors([f"ent-{i}" for i in range(n)], raw, [{"entity_name": f"E{i}"} for i in range(n)])
    return raw


def test_stats_json(cli, tmp_path: Path) -> None:
    nano(tmp_path / "vdb_entities.json")
    r = cli("--json", "vectors", "stats", str(tmp_path / "vdb_entities.json"))
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert (doc["count"], doc["embedding_dim"], doc["ok"]) == (120, 16, True)
    assert set(doc["parts"]) == {"metadata", "vector_fields", "matrix", "other"}


def test_stats_workspace_reads_every_vdb_file(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKING_DIR", str(tmp_path / "rag"))
    nano(tmp_path / "rag" / "ws1" / "vdb_entities.json", 10)
    nano(tmp_path / "rag" / "ws1" / "vdb_chunks.json", 20)
    r = cli("vectors", "stats", "--workspace", "ws1", "--json")
    assert r.exit_code == 0, r.stderr
    assert [(Path(f["path"]).name, f["count"]) for f in r.json()["files"]] == [("vdb_chunks.json", 20),
                                                                               ("vdb_entities.json", 10)]
    r = cli("vectors", "stats", "--workspace", "nope")
    assert r.exit_code == 2 and "no vdb_*.json files" in r.stderr
    monkeypatch.setenv("WORKSPACE", "ws1")
    r = cli("--json", "vectors", "stats")  # the configured workspace
    assert r.exit_code == 0 and len(r.json()["files"]) == 2
    r = cli("vectors", "stats", "x.json", "--workspace", "ws1")
    assert r.exit_code == 2 and "not both" in r.stderr


def test_stats_check_flags_a_corrupt_record(cli, tmp_path: Path) -> None:
    path = tmp_path / "vdb_entities.json"
    nano(path)
    doc = json.loads(path.read_text())
    doc["data"][3]["vector"] = "eJz="
    path.write_text(json.dumps(doc))
    r = cli("--json", "vectors", "stats", str(path), "--check")
    assert r.exit_code == 1 and r.json()["bad_records"] == 1 and "ent-3" in r.json()["problems"][0]
    r = cli("vectors", "stats", str(path), "--on-error", "stop")
    assert r.exit_code == 1 and "record 3 (ent-3)" in r.stderr and "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ('{"embedding_dim": 16, "data": [', "truncated"),
    ('{"embedding_dim": 16, "data": [], "matrix": "", "x": 1', "truncated"),
    ("[1, 2]", "not a JSON object"),
    ('{"data": [], "matrix": ""}', "no 'embedding_dim'"),
])
def test_bad_files_are_one_line_errors(cli, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "vdb_x.json"
    path.write_text(content)
    r = cli("vectors", "stats", str(path))
    assert r.exit_code == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_dim_mismatch(cli, tmp_path: Path) -> None:
    nano(tmp_path / "vdb_entities.json")
    r = cli("vectors", "stats", str(tmp_path / "vdb_entities.json"), "--embedding-dim", "1024")
    assert r.exit_code == 1 and "embedding_dim is 16, expected 1024" in r.stderr


def test_compress_verify_decompress_export(cli, tmp_path: Path) -> None:
    src = tmp_path / "vdb_entities.json"
    raw = nano(src)
    r = cli("--json", "vectors", "compress", str(src), "-o", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.stderr
    assert r.json()["bytes_after"] < r.json()["bytes_before"]
    r = cli("--json", "vectors", "verify", str(src), str(tmp_path / "c.json"))
    assert r.exit_code == 0 and r.json()["matrix_identical"] and r.json()["recall"] == 1.0
    r = cli("vectors", "verify", str(src), str(tmp_path / "c.json"), "--exact")
    assert r.exit_code == 1 and "FAIL" in r.stdout
    r = cli("--json", "vectors", "decompress", str(tmp_path / "c.json"))
    assert r.exit_code == 0 and r.json()["norms_restored"] == 120
    r = cli("--json", "vectors", "export", str(tmp_path / "c.json"), "-o", str(tmp_path / "e.npy"), "--no-meta")
    assert r.exit_code == 0, r.stderr
    arr = np.load(tmp_path / "e.npy")
    assert arr.shape == (120, 16) and np.allclose(arr, raw, rtol=2e-3, atol=2e-3)
    assert json.loads((tmp_path / "e.ids.jsonl").read_text().splitlines()[5]) == {"id": "ent-5", "row": 5}


def test_verify_fails_below_min_recall(cli, tmp_path: Path) -> None:
    nano(tmp_path / "a.json", seed=1)
    nano(tmp_path / "b.json", seed=2)  # same ids, unrelated vectors
    r = cli("--json", "vectors", "verify", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert r.exit_code == 1 and r.json()["ok"] is False and r.json()["recall"] < 0.5


def test_usage_errors(cli, tmp_path: Path) -> None:
    r = cli("vectors", "stats")  # ./rag_storage holds nothing here
    assert r.exit_code == 2 and "no vdb_*.json files" in r.stderr
    r = cli("vectors", "compress", str(tmp_path / "x.ragstore"))
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = cli("vectors", "compress", str(tmp_path / "x.txt"))
    assert r.exit_code == 2 and "expected a NanoVectorDB file" in r.stderr
    nano(tmp_path / "v.json")
    r = cli("vectors", "export", str(tmp_path / "v.json"), "-o", str(tmp_path / "out.csv"))
    assert r.exit_code == 2 and ".npy" in r.stderr
    r = cli("vectors", "verify", str(tmp_path / "v.json"), str(tmp_path / "missing.json"))
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_compress_and_decompress_an_archive(cli, tmp_path: Path) -> None:
    from ragstore_cli.archive import ArchiveReader
    from tests.archive.helpers import write_sample

    records = write_sample(tmp_path / "a.ragstore")
    r = cli("--json", "vectors", "compress", str(tmp_path / "a.ragstore"), "-o", str(tmp_path / "h.ragstore"))
    assert r.exit_code == 0, r.stderr
    assert r.json()["vector_sections"] == {"vectors/chunks": "float32", "vectors/entities": "float32"}
    reader = ArchiveReader(tmp_path / "h.ragstore")
    assert {s.key: s.dtype for s in reader.manifest.sections if s.kind == "vectors"} == {
        "vectors/chunks": "float16", "vectors/entities": "float16"}
    got = {}
    for section in reader.sections():
        for batch in section.batches():
            if section.key == "vectors/chunks":
                got.update(zip(batch.ids, batch.vectors))
            elif section.key == "kv/full_docs":
                got.update(batch)
    chunks = records["chunks"]
    assert np.array_equal(np.stack([got[i] for i in chunks.ids]), chunks.vectors.astype(np.float16).astype(np.float32))
    assert all(got[k] == v for k, v in records["full_docs"])
    assert reader.manifest.source["not_carried"] == {"vectors/entities": ["description", "entity_type"]}
    r = cli("--json", "vectors", "decompress", str(tmp_path / "h.ragstore"))
    assert r.exit_code == 0 and r.json()["dtype"] == "float32"
    r = cli("vectors", "compress", str(tmp_path / "h.ragstore"), "--codec", "int8")
    assert r.exit_code == 2 and "float32 or float16" in r.stderr
    r = cli("vectors", "compress", str(tmp_path / "v.json"), "--codec", "f16")
    assert r.exit_code == 2


def test_matrix_and_records_that_disagree(cli, tmp_path: Path) -> None:
    path = tmp_path / "vdb_chunks.json"
    nano(path, 30)
    doc = json.loads(path.read_text())
    doc["data"].pop()
    path.write_text(json.dumps(doc))
    r = cli("--json", "vectors", "stats", str(path), "--check")
    assert r.exit_code == 1
    assert r.json()["problems"][0].startswith("matrix has 30 rows but data has 29 records")
    r = cli("vectors", "export", str(path), "-o", str(tmp_path / "x.npy"))
    assert r.exit_code == 1 and "matrix has 30 rows but data has 29 records" in r.stderr
    assert not list(tmp_path.glob("*x*"))


def test_corrupt_matrix_is_one_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "vdb_entities.json"
    nano(path, 30)
    doc = json.loads(path.read_text())
    doc["matrix"] = doc["matrix"][:100] + "!" + doc["matrix"][101:]
    path.write_text(json.dumps(doc))
    r = cli("vectors", "compress", str(path))
    assert r.exit_code == 1 and "corrupt base64 in matrix rows 0-29" in r.stderr
    assert json.loads(path.read_text()) == doc  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vdb_entities.json"]


def test_compacting_chunks_needs_allow_chunks(cli, tmp_path: Path) -> None:
    path = tmp_path / "vdb_chunks.json"
    nano(path, 10)
    before = path.read_bytes()
    r = cli("vectors", "compress", str(path))
    assert r.exit_code == 2 and "--allow-chunks" in r.stderr and path.read_bytes() == before
    r = cli("--json", "vectors", "compress", str(path), "--allow-chunks")
    assert r.exit_code == 0 and r.json()["vector_fields_dropped"] == 10
    assert '"vector"' not in path.read_text()
