"""Hypothesis: damaged LightRAG files and archives give a one-line RagstoreError, never a crash.

Each test starts from a valid file (written by ragstore's own writers, which LightRAG reads back —
see the interop tests), damages it (flipped bytes, truncation, inserted junk), and reads it through
the same paths the commands use. Reads must either complete or raise a RagstoreError whose message
is one line; nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ragstore_cli.backends.files import create as create_files
from ragstore_cli.config import load_settings
from ragstore_cli.errors import RagstoreError
from ragstore_cli.vectors.nanofile import NanoVectorFile, NanoVectorWriter

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@st.composite
def damage(draw, size: int):
    """A list of edits: (kind, offset, payload)."""
    edits = draw(st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "zero"]),
                                    st.integers(0, max(size - 1, 0)),
                                    st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
    return edits


def apply(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, offset, payload in edits:
        offset = min(offset, max(len(buf) - 1, 0))
        if kind == "flip" and buf:
            buf[offset] ^= payload[0] or 0x20
        elif kind == "cut":
            del buf[offset:]
        elif kind == "insert":
            buf[offset:offset] = payload
        elif kind == "zero" and buf:
            buf[offset] = 0
    return bytes(buf)


def _one_line(exc: RagstoreError) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 2000


@pytest.fixture(scope="module")
def seed_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seed")
    kv = {f"doc-{i}": {"content": f"text {i} ünïcode \"q\" <SEP>", "file_path": "a.txt", "create_time": i,
                       "update_time": i, "_id": f"doc-{i}"} for i in range(12)}
    (folder / "kv_store_full_docs.json").write_text(json.dumps(kv, indent=2, ensure_ascii=False), encoding="utf-8")
    graphml = ['<?xml version="1.0" encoding="utf-8"?>',
               '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
               '<key id="d0" for="node" attr.name="entity_id" attr.type="string"/>',
               '<key id="d1" for="edge" attr.name="weight" attr.type="double"/>',
               '<graph edgedefault="undirected">']
    graphml += [f'<node id="n{i}"><data key="d0">n{i}</data></node>' for i in range(8)]
    graphml += [f'<edge source="n{i}" target="n{i + 1}"><data key="d1">1.5</data></edge>' for i in range(7)]
    graphml += ["</graph>", "</graphml>"]
    (folder / "graph_chunk_entity_relation.graphml").write_text("\n".join(graphml), encoding="utf-8")
    rng = np.random.default_rng(7)
    with NanoVectorWriter(folder / "vdb_entities.json", 8) as writer:
        ids = [f"ent-{i}" for i in range(10)]
        writer.add_vectors(ids, rng.normal(size=(10, 8)).astype(np.float32),
                           [{"entity_name": f"E{i}", "content": "c", "source_id": "s", "file_path": "f",
                             "__created_at__": 1} for i in range(10)])
    return folder


async def _drain_files(folder: Path) -> None:
    settings_ = load_settings(environ={"WORKING_DIR": str(folder), "EMBEDDING_DIM": "8"}, cwd=folder)
    backend = create_files(settings_, "")
    await backend.open()
    async for _ in backend.kv().read("full_docs", 5):
        pass
    async for _ in backend.graph().read_nodes(3):
        pass
    async for _ in backend.graph().read_edges(3):
        pass


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@FUZZ
@given(data=st.data())
def test_damaged_kv_and_graphml(seed_folder: Path, tmp_path: Path, data):
    folder = tmp_path / "ws"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(seed_folder, folder)
    target = folder / data.draw(st.sampled_from(["kv_store_full_docs.json", "graph_chunk_entity_relation.graphml"]))
    target.write_bytes(apply(target.read_bytes(), data.draw(damage(target.stat().st_size))))
    before = _snapshot(folder)
    try:
        asyncio.run(_drain_files(folder))
    except RagstoreError as exc:
        _one_line(exc)
    assert _snapshot(folder) == before  # reading never writes


@FUZZ
@given(data=st.data())
def test_damaged_nanovectordb(seed_folder: Path, tmp_path: Path, data):
    path = tmp_path / "vdb_entities.json"
    raw = (seed_folder / "vdb_entities.json").read_bytes()
    path.write_bytes(apply(raw, data.draw(damage(len(raw)))))
    on_error = data.draw(st.sampled_from(["stop", "skip"]))
    try:
        nf = NanoVectorFile(path, expected_dim=8)
        for batch in nf.batches(4, vectors="raw", on_error=on_error):
            assert batch.vectors.shape[1] == 8
    except RagstoreError as exc:
        _one_line(exc)


@pytest.fixture(scope="module")
def seed_archive(seed_folder: Path, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from ragstore_cli.cli.app import app

    out = tmp_path_factory.mktemp("arch") / "seed.ragstore"
    env = {"WORKING_DIR": str(seed_folder.parent), "EMBEDDING_DIM": "8"}
    result = CliRunner().invoke(app, ["export", "--profile", "files", "--workspace", seed_folder.name, "-o", str(out)],
                                env=env)
    assert result.exit_code == 0, f"export of the seed workspace failed: {result.output[-300:]}"  # an error, not a skip
    return out


@FUZZ
@given(data=st.data())
def test_damaged_archive_verify_is_one_line(cli, seed_archive: Path, tmp_path: Path, data):
    raw = seed_archive.read_bytes()
    damaged = tmp_path / "damaged.ragstore"
    damaged.write_bytes(apply(raw, data.draw(damage(len(raw)))))
    result = cli("archive", "verify", str(damaged))
    if damaged.read_bytes() == raw:
        return
    assert result.exit_code in (0, 1, 2)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(data=st.data())
def test_fuzzed_manifests(seed_archive: Path, data):
    """A real manifest with random fields replaced or removed: parsed, or one DataError line."""
    import tarfile

    from ragstore_cli.archive.manifest import Manifest

    with tarfile.open(seed_archive, mode="r|") as tar:
        first = tar.next()
        doc = json.loads(tar.extractfile(first).read())
    for _ in range(data.draw(st.integers(1, 3))):
        path = [data.draw(st.sampled_from(sorted(doc)))]
        node = doc[path[0]]
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            node = node[key]
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = data.draw(JSON_VALUES)
    try:
        Manifest.parse(json.dumps(doc).encode())
    except RagstoreError as exc:
        _one_line(exc)
