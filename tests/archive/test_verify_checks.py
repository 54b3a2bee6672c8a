"""`archive verify` refuses what import would refuse, across records too: duplicate ids, NaN, edges to
missing nodes, mislabelled matrices; export keeps vectors float16 cannot hold lossless."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from ragstore_cli.archive import ArchiveReader, ArchiveWriter
from ragstore_cli.archive import keys as keys_module
from ragstore_cli.archive import writer as writer_module
from ragstore_cli.records import GraphEdge, GraphNode, VectorBatch
from ragstore_cli.errors import DataError
from tests.archive.helpers import DIM, rewrite, write_sample


@pytest.fixture
def good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(writer_module, "ROWS_PER_PART", 20)  # vectors/chunks in three parts
    path = tmp_path / "good.ragstore"
    write_sample(path)
    ArchiveReader(path).verify()
    return path


def edit_lines(src: Path, dst: Path, member: str, change: Callable[[list[dict[str, Any]]], list[Any]]) -> None:
    """Rewrite one JSON-lines member through `change` (a list of objects, or of raw bytes lines), with
    every count in the manifest following."""
    new_count: dict[str, int] = {}

    def raw(name: str, plain: bytes) -> bytes | None:
        if name != member:
            return None
        objects = change([json.loads(line) for line in plain.splitlines()])
        new_count["n"] = len(objects)
        return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objects)

    def manifest(doc: dict) -> None:
        m = next(m for m in doc["members"] if m["path"] == member)
        delta = new_count["n"] - m["records"]
        m["records"] += delta
        nxt = doc["members"][doc["members"].index(m) + 1] if m["kind"] == "ids" else None
        if nxt is not None:  # the part's matrix
            nxt["records"] += delta
        section = next(s for s in doc["sections"] if s["key"] == m["section"])
        section["records"] += delta
        doc["counts"][m["section"]] += delta

    rewrite(src, dst, raw=raw, manifest=manifest)


def refused(path: Path, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        ArchiveReader(path).verify()
    assert "\n" not in str(info.value)


def test_duplicate_kv_id(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"
    edit_lines(good, bad, "kv/full_docs.jsonl.zst", lambda rows: rows + [{"id": "doc-0007", "value": {"x": 1}}])
    refused(bad, r"kv/full_docs: the id 'doc-0007' appears twice")


def test_duplicate_doc_status_and_node(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"
    edit_lines(good, bad, "doc_status.jsonl.zst", lambda rows: rows[:5] + [rows[2]] + rows[5:])
    refused(bad, r"doc_status: the id 'doc-0002' appears twice")
    edit_lines(good, bad, "graph/chunk_entity_relation/nodes.jsonl.zst", lambda rows: rows + [rows[0]])
    refused(bad, r"graph/nodes: the id 'E0' appears twice")


def test_duplicate_vector_id_across_parts(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"

    def clash(rows: list[dict]) -> list[dict]:
        rows[3]["id"] = "chunk-00001"  # part 000001 repeats an id of part 000000
        return rows

    edit_lines(good, bad, "vectors/chunks/000001.ids.jsonl.zst", clash)
    refused(bad, r"vectors/chunks: the id 'chunk-00001' appears twice")


def test_edge_written_twice_either_way(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"
    edge = "graph/chunk_entity_relation/edges.jsonl.zst"
    edit_lines(good, bad, edge, lambda rows: rows + [{"source": "E4", "target": "E3", "properties": {}}])
    refused(bad, r"the edge 'E3' - 'E4' appears twice \(edges are undirected\)")


def test_edge_to_missing_node(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"
    edge = "graph/chunk_entity_relation/edges.jsonl.zst"
    edit_lines(good, bad, edge, lambda rows: rows + [{"source": "E2", "target": "Nobody", "properties": {}}])
    refused(bad, r"the edge 'E2' - 'Nobody' leads to node 'Nobody', which graph/nodes does not hold")


@pytest.mark.parametrize("literal", [b"NaN", b"-Infinity", b"1e400", b"-" + b"9" * 400 + b".0"])
def test_non_finite_numbers_in_values(good: Path, tmp_path: Path, literal: bytes) -> None:
    bad = tmp_path / "b.ragstore"
    line = b'{"id":"doc-9999","value":{"content":"x","score":' + literal + b"}}"
    edit_lines(good, bad, "kv/full_docs.jsonl.zst", lambda rows: rows + [line])
    refused(bad, r"line 31: holds .*which JSON cannot carry")
    props = b'{"source":"E1","target":"E5","properties":{"weight":' + literal + b"}}"
    edit_lines(good, bad, "graph/chunk_entity_relation/edges.jsonl.zst", lambda rows: rows + [props])
    refused(bad, "which JSON cannot carry")


def test_matrix_named_f32_declared_f16(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.ragstore"

    def relabel(doc: dict) -> None:
        for s in doc["sections"]:
            if s["key"] == "vectors/chunks":
                s["dtype"] = "float16"
        for m in doc["members"]:
            if m["kind"] == "matrix" and m["section"] == "vectors/chunks":
                m["dtype"], m["raw_size"] = "float16", m["records"] * DIM * 2

    rewrite(good, bad, manifest=relabel)
    with pytest.raises(DataError, match=r"000000.f32.zst' is declared float16, its name says otherwise"):
        ArchiveReader(bad)


def test_many_ids_spill_to_disk_and_still_find_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "BUDGET", 64)  # every few batches spill to bucket files
    path = tmp_path / "many.ragstore"
    nodes = [GraphNode(f"node {i}", {}) for i in range(3000)]
    edges = [GraphEdge(f"node {i}", f"node {(i * 7 + 1) % 3000}", {}) for i in range(3000)]
    for dup in (False, True):
        w = ArchiveWriter(path, workspace="w")
        with w.kv("full_docs") as s:
            rows = [(f"doc {i}", {}) for i in range(5000)]
            s.write(rows + ([("doc 4321", {})] if dup else []))
        with w.graph_nodes() as s:
            s.write(nodes)
        with w.graph_edges() as s:
            s.write(edges)
        w.finish()
        if dup:
            refused(path, "the id 'doc 4321' appears twice")
        else:
            stats = ArchiveReader(path).verify()
            assert stats["kv/full_docs"].records == 5000 and stats["graph/edges"].records == 3000
    w = ArchiveWriter(path, workspace="w")
    with w.graph_nodes() as s:
        s.write(nodes[:-1])
    with w.graph_edges() as s:
        s.write(edges)
    w.finish()
    refused(path, "leads to node 'node 2999'")


def test_verify_leaves_no_temporary_files(good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "BUDGET", 4)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    ArchiveReader(good).verify()
    bad = tmp_path / "b.ragstore"
    edit_lines(good, bad, "kv/full_docs.jsonl.zst", lambda rows: rows + [rows[0]])
    refused(bad, "appears twice")
    assert list((tmp_path / "tmp").iterdir()) == []


# ---------------------------------------------------------------------- float16 that does not fit
def _f16_archive(path: Path, vectors: np.ndarray, batch: int = 10) -> tuple[ArchiveWriter, list[str]]:
    ids = [f"v{i:03d}" for i in range(len(vectors))]
    w = ArchiveWriter(path, workspace="w", embedding_dim=vectors.shape[1], vector_dtype="float16")
    with w.vectors("chunks") as s:
        for i in range(0, len(ids), batch):
            s.write(VectorBatch(ids[i:i + batch], vectors[i:i + batch], [{} for _ in ids[i:i + batch]]))
    w.finish()
    return w, ids


@pytest.mark.parametrize("scale", [1e6, 1e-9])
def test_export_f16_keeps_misfits_lossless(tmp_path: Path, scale: float) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((60, DIM)).astype(np.float32)
    vectors[35] *= np.float32(scale)  # beyond float16's range, or so small it would round to zeros
    path = tmp_path / "f16.ragstore"
    writer, ids = _f16_archive(path, vectors)
    assert len(writer.notes) == 1 and "'v035'" in writer.notes[0] and "float32 (lossless)" in writer.notes[0]
    reader = ArchiveReader(path)
    dtypes = [m.dtype for m in reader.manifest.members if m.kind == "matrix"]
    assert dtypes == ["float16", "float32"]  # the first part (30 rows) stayed float16
    stats = reader.verify()
    got = np.concatenate([b.vectors for s in ArchiveReader(path).sections() if s.key == "vectors/chunks"
                          for b in s.batches()])
    assert np.array_equal(got[30:], vectors[30:])  # exact from the misfit's batch on
    assert np.array_equal(got[:30], vectors[:30].astype(np.float16).astype(np.float32))
    assert stats["vectors/chunks"].extra["max_abs"] == float(np.abs(got).max())


def test_f16_section_may_not_hold_float32_part_under_another_name(tmp_path: Path) -> None:
    vectors = np.ones((12, DIM), dtype=np.float32)
    vectors[5, 0] = 1e5
    path = tmp_path / "f16.ragstore"
    _f16_archive(path, vectors, batch=4)
    bad = tmp_path / "b.ragstore"

    def rename(doc: dict) -> None:
        for m in doc["members"]:
            if m["path"].endswith(".f32.zst"):
                m["path"] = m["path"].replace(".f32.zst", ".f16.zst")

    rewrite(path, bad, manifest=rename)
    with pytest.raises(DataError, match="its name says otherwise"):
        ArchiveReader(bad)


# ---------------------------------------------------------------------- through the CLI: verify == import
def _one_line(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.mark.parametrize("case", ["duplicate id", "edge to a missing node", "NaN"])
def test_verify_and_import_refuse_alike_and_write_nothing(cli, good: Path, tmp_path: Path, case: str) -> None:
    bad = tmp_path / "b.ragstore"
    if case == "duplicate id":
        edit_lines(good, bad, "kv/full_docs.jsonl.zst", lambda rows: rows + [rows[4]])
        fragment = "the id 'doc-0004' appears twice"
    elif case == "edge to a missing node":
        edit_lines(good, bad, "graph/chunk_entity_relation/edges.jsonl.zst",
                   lambda rows: rows + [{"source": "E9", "target": "ghost", "properties": {}}])
        fragment = "leads to node 'ghost'"
    else:
        edit_lines(good, bad, "vectors/chunks/000002.ids.jsonl.zst",
                   lambda rows: rows[:-1] + [b'{"id":"chunk-00049","meta":{"w":NaN}}'])
        fragment = "which JSON cannot carry"
    _one_line(cli("archive", "verify", str(bad)), fragment)
    target = tmp_path / "target"
    target.mkdir()
    env = {"WORKING_DIR": str(target), "XDG_RUNTIME_DIR": str(tmp_path)}
    for extra in (["--dry-run"], []):
        _one_line(cli("import", str(bad), "--to", "files", "--workspace", "w", *extra, env=env), fragment)
    assert list(target.iterdir()) == []


def test_import_into_files_refuses_vectors_beyond_float16_before_writing(cli, tmp_path: Path) -> None:
    vectors = np.ones((5, DIM), dtype=np.float32)
    vectors[3, 7] = 1e5  # fine in float32 (and PostgreSQL), inf in LightRAG's float16 `vector` copy
    path = tmp_path / "big.ragstore"
    w = ArchiveWriter(path, workspace="w", embedding_dim=DIM)
    with w.vectors("chunks") as s:
        s.write(VectorBatch([f"c{i}" for i in range(5)], vectors, [{} for _ in range(5)]))
    w.finish()
    assert cli("archive", "verify", str(path)).exit_code == 0  # a sound archive, for other targets
    target = tmp_path / "target"
    target.mkdir()
    env = {"WORKING_DIR": str(target), "XDG_RUNTIME_DIR": str(tmp_path)}
    for extra in (["--dry-run"], []):
        _one_line(cli("import", str(path), "--to", "files", *extra, env=env), "beyond float16's ±65504")
    assert list(target.iterdir()) == []


def test_lightrag_float16_copies_never_turn_finite_values_into_inf() -> None:
    from ragstore_cli.vectors.codecs import encode_records

    with pytest.raises(DataError, match="beyond float16's range"):
        encode_records(np.array([[1.0, 7e4]], dtype=np.float32))
    assert len(encode_records(np.array([[1.0, 6e4]], dtype=np.float32))) == 1


def test_recode_to_f16_reports_the_lossless_parts(cli, tmp_path: Path) -> None:
    vectors = np.ones((40, DIM), dtype=np.float32)
    vectors[25] *= 1e6
    path = tmp_path / "x.ragstore"
    w = ArchiveWriter(path, workspace="w", embedding_dim=DIM)
    with w.vectors("chunks") as s:
        for i in range(0, 40, 10):
            s.write(VectorBatch([f"c{j}" for j in range(i, i + 10)], vectors[i:i + 10], [{}] * 10))
    w.finish()
    result = cli("vectors", "compress", str(path), "--codec", "f16")
    assert result.exit_code == 0, result.output
    assert "'c25' has values beyond float16's range" in result.stderr and "float32 (lossless)" in result.stderr
    row = next(s for s in cli("--json", "archive", "inspect", str(path)).json()["sections"]
               if s["section"] == "vectors/chunks")
    assert row["dtype"] == "float16" and row["float32_parts"] == 1
    got = np.concatenate([b.vectors for s in ArchiveReader(path).sections() if s.key == "vectors/chunks"
                          for b in s.batches()])
    assert np.array_equal(got, vectors)  # ones are exact in float16; the misfit is exact in float32
