"""Hostile ids and values against files and postgres: stored verbatim or refused whole, never injected."""

from __future__ import annotations

import numpy as np
import pytest

from ragstore_cli.records import GraphEdge, GraphNode, VectorBatch
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError

HOSTILE = ["q'uote", 'dq"uote', "back`tick", "star*", "../../etc/passwd", "semi;DROP TABLE lightrag_doc_full;--",
           "$1", "<SEP>", "x" * 10_000, "ünï©ødé ✓", "{}", "%_", "\\", "a\tb\nc"]
NUL = "nul\x00byte"


def _settings(tmp_path, env=None):
    return load_settings(environ={"WORKING_DIR": str(tmp_path / "rag"), **(env or {})})


LONG = "y" * 10_240


def _kv(ids):
    return [(i, {"entity_names": [i, i[::-1], LONG], "count": 3, "create_time": 1700000000, "update_time": 1700000001,
                 "_id": i}) for i in ids]


async def _roundtrip(settings, profile, ids):
    async with await open_backends(settings, profile, "hostile") as stores:
        writer = await stores.kv.writer("full_entities")
        await writer.write(_kv(ids))
        await writer.commit()
        got = [r async for batch in stores.kv.read("full_entities", batch_size=5) for r in batch]
        assert dict(got) == dict(_kv(ids))
        graph = await stores.graph.writer()
        await graph.write([GraphNode(i, {"entity_id": i, "description": i, "weight": 1.5}) for i in HOSTILE])
        await graph.write([GraphEdge(a, b, {"description": a + b, "weight": 2.0}) for a, b in zip(HOSTILE, HOSTILE[1:])])
        await graph.commit()
        nodes = {n.id: n.properties async for batch in stores.graph.read_nodes(4) for n in batch}
        assert nodes == {i: {"entity_id": i, "description": i, "weight": 1.5} for i in HOSTILE}
        edges = {frozenset((e.source, e.target)): e.properties async for batch in stores.graph.read_edges(4) for e in batch}
        assert edges == {frozenset((a, b)): {"description": a + b, "weight": 2.0} for a, b in zip(HOSTILE, HOSTILE[1:])}
        vectors = await stores.vectors.writer("entities", dim=4)
        mat = np.arange(len(ids) * 4, dtype=np.float32).reshape(-1, 4) + 1
        meta = [{"entity_name": i, "content": i + LONG, "source_id": "c1<SEP>c2", "file_path": i} for i in ids]
        await vectors.write(VectorBatch(list(ids), mat, meta))
        await vectors.commit()
        back = [b async for b in stores.vectors.read("entities", 5)]
        assert sorted(i for b in back for i in b.ids) == sorted(ids)
        assert {m["content"] for b in back for m in b.meta} == {i + LONG for i in ids}
        got_vectors = {i: v for b in back for i, v in zip(b.ids, b.vectors)}
        for i, row in zip(ids, mat):
            assert np.allclose(got_vectors[i], row, rtol=1e-3)
    return stores


async def _nul_refused(settings, profile):
    async with await open_backends(settings, profile, "hostile") as stores:
        before = [r async for b in stores.kv.read("full_entities") for r in b]
        graph_before = await stores.graph.count()
        if profile == "postgres":  # JSON can carry NUL; PostgreSQL text/jsonb cannot
            writer = await stores.kv.writer("full_entities")
            with pytest.raises(DataError, match="NUL"):
                await writer.write(_kv(["fine", NUL]))
                await writer.commit()
            assert [r async for b in stores.kv.read("full_entities") for r in b] == before
        graph = await stores.graph.writer()
        with pytest.raises(DataError):
            await graph.write([GraphNode("ok", {"entity_id": "ok"}), GraphNode(NUL, {"entity_id": NUL})])
            await graph.commit()
        assert await stores.graph.count() == graph_before


async def test_hostile_values_files(tmp_path):
    settings = _settings(tmp_path)
    await _roundtrip(settings, "files", HOSTILE)
    await _nul_refused(settings, "files")
    assert sorted(p.name for p in (tmp_path / "rag").iterdir()) == ["hostile"]  # nothing escaped the folder
    assert not list((tmp_path / "rag" / "hostile").glob("*.tmp.*"))
    async with await open_backends(settings, "files", "hostile") as stores:  # NUL is fine in JSON KV
        writer = await stores.kv.writer("full_entities")
        await writer.write(_kv([NUL]))
        await writer.commit()
        assert [r async for b in stores.kv.read("full_entities") for r in b] == _kv([NUL])


async def test_hostile_values_postgres(tmp_path, pg_database, pg_server):
    settings = _settings(tmp_path, pg_database)
    short = [i for i in HOSTILE if len(i) <= 255]  # LightRAG's PG ids are VARCHAR(255)
    await _roundtrip(settings, "postgres", short)
    await _nul_refused(settings, "postgres")
    async with await open_backends(settings, "postgres", "hostile") as stores:
        writer = await stores.kv.writer("full_entities")
        with pytest.raises(DataError, match="too long"):  # surfaces at write or at commit (pipelined COPY)
            await writer.write(_kv(["x" * 10_000]))
            await writer.commit()
        assert len([r async for b in stores.kv.read("full_entities") for r in b]) == len(short)
    tables = pg_server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'lightrag_doc_full'",
                            database=pg_database["POSTGRES_DATABASE"])
    assert tables.strip() == "1"
