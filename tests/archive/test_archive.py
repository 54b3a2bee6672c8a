"""Archive format v1: round trips, readability without ragstore, and every refused input."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ragstore_cli.archive import ArchiveReader, ArchiveWriter
from ragstore_cli.archive import writer as writer_module
from ragstore_cli.records import VectorBatch
from ragstore_cli.errors import DataError, UsageError
from tests.archive.helpers import DIM, rewrite, write_sample


def read_all(path: Path, batch_size: int = 5) -> dict:
    got: dict = {}
    for section in ArchiveReader(path).sections(batch_size):
        items: list = []
        for batch in section.batches():
            items.append(batch)
        got[section.key] = items
    return got


def test_round_trip_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "ROWS_PER_PART", 20)  # several vector parts
    out = tmp_path / "a.ragstore"
    rec = write_sample(out)
    got = read_all(out)
    assert [r for b in got["kv/full_docs"] for r in b] == rec["full_docs"]
    assert [r for b in got["doc_status"] for r in b] == rec["doc_status"]
    assert [(n.id, n.properties) for b in got["graph/nodes"] for n in b] == [(n.id, n.properties) for n in rec["nodes"]]
    assert [(e.source, e.target, e.properties) for b in got["graph/edges"] for e in b] == \
        [(e.source, e.target, e.properties) for e in rec["edges"]]
    vb = got["vectors/chunks"]
    assert all(len(b) <= 5 for b in vb)
    assert [i for b in vb for i in b.ids] == rec["chunks"].ids
    assert [m for b in vb for m in b.meta] == rec["chunks"].meta
    assert np.array_equal(np.concatenate([b.vectors for b in vb]), rec["chunks"].vectors)
    assert got["vectors/entities"] == []
    manifest = ArchiveReader(out).manifest
    assert manifest.counts() == {"kv/full_docs": 30, "doc_status": 30, "graph/nodes": 10, "graph/edges": 9,
                                 "vectors/chunks": 50, "vectors/entities": 0}
    assert manifest.embedding == {"model": "fake-embed", "dim": DIM}
    assert manifest.source["not_carried"] == {"vectors/entities": ["description", "entity_type"]}
    assert len([m for m in manifest.members if m.section == "vectors/chunks"]) == 6  # 3 parts × (ids, matrix)
    assert not list(tmp_path.glob(".ragstore-spool-*")) and not list(tmp_path.glob("*.partial"))


def test_float16_vectors(tmp_path: Path) -> None:
    out = tmp_path / "h.ragstore"
    rec = write_sample(out, dtype="float16")
    got = np.concatenate([b.vectors for b in read_all(out)["vectors/chunks"]])
    assert got.dtype == np.float32
    assert np.allclose(got, rec["chunks"].vectors, rtol=1e-3, atol=1e-3)
    assert not np.array_equal(got, rec["chunks"].vectors)  # it really went through float16
    assert any(m.path.endswith(".f16.zst") for m in ArchiveReader(out).manifest.members)


def test_readable_with_tar_zstd_and_numpy(tmp_path: Path) -> None:
    """The recipe of docs/archive-format.md, with the system's tar and zstd and plain numpy."""
    if not shutil.which("zstd"):
        pytest.skip("zstd binary not installed")
    out = tmp_path / "a.ragstore"
    rec = write_sample(out)
    root = tmp_path / "x"
    root.mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(root)], check=True, timeout=60)
    subprocess.run(["sha256sum", "-c", "manifest.json.sha256"], cwd=root, check=True, timeout=60, capture_output=True)
    manifest = json.loads((root / "manifest.json").read_text())
    for m in manifest["members"]:
        subprocess.run(["zstd", "-q", "-d", "--rm", m["path"]], cwd=root, check=True, timeout=60)
    lines = (root / "kv/full_docs.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [k for k, _ in rec["full_docs"]]
    matrix = np.fromfile(root / "vectors/chunks/000000.f32", dtype="<f4").reshape(-1, manifest["embedding"]["dim"])
    ids = [json.loads(x)["id"] for x in (root / "vectors/chunks/000000.ids.jsonl").read_text().splitlines()]
    assert ids == rec["chunks"].ids
    assert np.array_equal(matrix, rec["chunks"].vectors)


def test_writer_refuses_nan_and_mixed_dimensions(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path / "n.ragstore", workspace="")
    s = w.vectors("chunks")
    bad = np.ones((2, 4), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match="'b'.*not finite"):
        s.write(VectorBatch(["a", "b"], bad, [{}, {}]))
    s.write(VectorBatch(["a"], np.ones((1, 4), np.float32), [{}]))
    with pytest.raises(DataError, match="dimension 5"):
        w.vectors("entities").write(VectorBatch(["e"], np.ones((1, 5), np.float32), [{}]))
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w = ArchiveWriter(tmp_path / "h.ragstore", workspace="", vector_dtype="float16")
    w.vectors("chunks").write(VectorBatch(["a"], np.full((1, 4), 1e6, np.float32), [{}]))  # kept as float32
    assert "beyond float16's range" in w.notes[0]
    w.abort()
    with pytest.raises(UsageError):
        ArchiveWriter(tmp_path / "nope" / "x.ragstore", workspace="")


# ---------------------------------------------------------------------------------- bad input
@pytest.fixture
def good(tmp_path: Path) -> Path:
    out = tmp_path / "good.ragstore"
    write_sample(out)
    return out


def refused(path: Path, match: str) -> None:
    with pytest.raises(DataError, match=match):
        ArchiveReader(path).verify()


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.6, 0.97])
def test_truncated(good: Path, tmp_path: Path, keep: float) -> None:
    with tarfile.open(good) as tar:
        last = tar.getmembers()[-1]
    end = last.offset_data + last.size  # after this only tar padding follows
    cut = tmp_path / "cut.ragstore"
    cut.write_bytes(good.read_bytes()[: int(end * keep)])
    refused(cut, "truncated|damaged|not a ragstore archive")


def test_truncated_at_member_boundary(good: Path, tmp_path: Path) -> None:
    with tarfile.open(good) as tar:
        last = tar.getmembers()[-1]
    cut = tmp_path / "cut.ragstore"
    cut.write_bytes(good.read_bytes()[: last.offset])  # a whole, well-formed tar minus its last member
    refused(cut, "truncated: the file ends at byte [0-9]+, where member '.*' should begin")


def test_flipped_byte_in_every_member(good: Path, tmp_path: Path) -> None:
    with tarfile.open(good) as tar:
        infos = tar.getmembers()
    data = good.read_bytes()
    assert len(infos) >= 8
    for info in infos:
        for where in (0, info.size // 2, info.size - 1):
            bad = bytearray(data)
            bad[info.offset_data + where] ^= 0x10
            path = tmp_path / "flip.ragstore"
            path.write_bytes(bytes(bad))
            refused(path, "damaged|mismatch|not valid JSON|not a ragstore|disagree|invalid")


def test_flipped_byte_in_tar_header(good: Path, tmp_path: Path) -> None:
    with tarfile.open(good) as tar:
        info = tar.getmembers()[4]
    bad = bytearray(good.read_bytes())
    bad[info.offset + 3] ^= 0x01  # the member's name, covered by the tar header checksum
    path = tmp_path / "hdr.ragstore"
    path.write_bytes(bytes(bad))
    refused(path, "damaged|truncated|found where")


def test_newer_format_version(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "v2.ragstore"
    rewrite(good, out, manifest=lambda d: d.update(format_version=2))
    with pytest.raises(DataError, match="format version 2 is newer"):
        ArchiveReader(out)


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.ragstore"
    path.write_bytes(b"hello world" * 100)
    with pytest.raises(DataError, match="not a ragstore archive"):
        ArchiveReader(path)
    with pytest.raises(UsageError, match="does not exist"):
        ArchiveReader(tmp_path / "missing.ragstore")


@pytest.mark.parametrize("evil", ["../evil.jsonl.zst", "/etc/evil", "kv/../../x", "kv//x.jsonl.zst"])
def test_member_path_outside_root_in_manifest(good: Path, tmp_path: Path, evil: str) -> None:
    out = tmp_path / "evil.ragstore"
    rewrite(good, out, manifest=lambda d: d["members"][0].update(path=evil))
    with pytest.raises(DataError, match="absolute|outside the archive root"):
        ArchiveReader(out)


@pytest.mark.parametrize("name,kind", [("../escape", tarfile.REGTYPE), ("/abs/path", tarfile.REGTYPE),
                                       ("kv/link.jsonl.zst", tarfile.SYMTYPE), ("kv/hard.jsonl.zst", tarfile.LNKTYPE),
                                       ("somedir", tarfile.DIRTYPE)])
def test_unlisted_or_unsafe_tar_member(good: Path, tmp_path: Path, name: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    info.size = 10 if kind == tarfile.REGTYPE else 0
    out = tmp_path / "extra.ragstore"
    rewrite(good, out, extra=[info])
    refused(out, "outside the archive root|absolute|link|not a regular file")


def test_unlisted_regular_member(good: Path, tmp_path: Path) -> None:
    info = tarfile.TarInfo("kv/sneaky.jsonl.zst")
    info.size = 10
    out = tmp_path / "extra.ragstore"
    rewrite(good, out, extra=[info])
    refused(out, "does not list")


def test_counts_disagree_in_manifest(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.ragstore"
    rewrite(good, out, manifest=lambda d: d["sections"][0].update(records=31))
    with pytest.raises(DataError, match="counts disagree"):
        ArchiveReader(out)


def test_counts_disagree_with_data(good: Path, tmp_path: Path) -> None:
    """Manifest consistent with itself, but a member holds one more line than it says."""
    out = tmp_path / "c.ragstore"
    extra_line = b'{"id":"doc-9999","value":{}}\n'
    rewrite(good, out, raw=lambda name, data: data + extra_line if name == "kv/full_docs.jsonl.zst" else None)
    refused(out, "counts disagree")


def test_vector_ids_and_rows_disagree(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.ragstore"
    rewrite(good, out, raw=lambda name, data: data[: len(data) // 2 - 3]
            if name == "vectors/chunks/000000.ids.jsonl.zst" else None)
    refused(out, "line end|counts disagree|not valid JSON")


def test_nan_vector(good: Path, tmp_path: Path) -> None:
    def poison(name: str, data: bytes) -> bytes | None:
        if not name.endswith(".f32.zst"):
            return None
        matrix = np.frombuffer(data, "<f4").copy()
        matrix[DIM * 3 + 1] = np.nan
        return matrix.tobytes()

    out = tmp_path / "nan.ragstore"
    rewrite(good, out, raw=poison)
    refused(out, "chunk-00003.*NaN or infinite")


def test_wrong_dimension(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "dim.ragstore"
    rewrite(good, out, raw=lambda name, data: data[:-4] if name.endswith(".f32.zst") else None)
    with pytest.raises(DataError, match="size does not match|dimension"):
        ArchiveReader(out).verify()

    def relabel(doc: dict) -> None:  # a consistent manifest claiming another dimension than the data has
        doc["embedding"]["dim"] = DIM * 2
        for s in doc["sections"]:
            if s["kind"] == "vectors":
                s["dim"] = DIM * 2
        for m in doc["members"]:
            if m["kind"] == "matrix":
                m["dim"] = DIM * 2
                m["records"] = m["records"]
    out2 = tmp_path / "dim2.ragstore"
    rewrite(good, out2, manifest=relabel)
    with pytest.raises(DataError, match="size does not match"):
        ArchiveReader(out2)


def test_bad_record_shape(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "shape.ragstore"
    rewrite(good, out, raw=lambda name, data: data.replace(b'"value":', b'"valeu":', 1)
            if name == "doc_status.jsonl.zst" else None)
    refused(out, "line 1: expected exactly the fields id, value")


def test_members_listed_out_of_order(good: Path, tmp_path: Path) -> None:
    def swap(doc: dict) -> None:
        doc["members"][0], doc["members"][1] = doc["members"][1], doc["members"][0]
    out = tmp_path / "order.ragstore"
    rewrite(good, out, manifest=swap)
    refused(out, "found where the manifest lists")
