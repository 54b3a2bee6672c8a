"""files writers: merge keeps untouched records, a failed batch leaves the old file and no tmp behind."""

from __future__ import annotations

import json

import pytest

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError


async def test_merge_and_failed_writes(tmp_path):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)})
    async with await open_backends(settings, "files", "w") as stores:
        writer = await stores.kv.writer("text_chunks")
        await writer.write([("a", {"content": "A"}), ("b", {"content": "B"})])
        await writer.commit()
        merge = await stores.kv.writer("text_chunks", replace=False)
        await merge.write([("b", {"content": "B2"}), ("c", {"content": "C"})])
        await merge.commit()
        path = tmp_path / "w" / "kv_store_text_chunks.json"
        assert json.loads(path.read_text(encoding="utf-8")) == {"b": {"content": "B2"}, "c": {"content": "C"},
                                                                 "a": {"content": "A"}}
        before = path.read_bytes()
        broken = await stores.kv.writer("text_chunks")
        with pytest.raises(DataError, match="cannot be written"):
            await broken.write([("x", {"content": "ok"}), ("y", {"bad": object()})])
        with pytest.raises(DataError, match="written twice"):
            again = await stores.kv.writer("text_chunks")
            await again.write([("x", {}), ("x", {})])
        assert path.read_bytes() == before
        graph = await stores.graph.writer()
        await graph.write([GraphNode("A", {"entity_id": "A"}), GraphEdge("A", "B", {"weight": 1.0})])
        await graph.commit()
        more = await stores.graph.writer(replace=False)
        await more.write([GraphNode("C", {"entity_id": "C"}), GraphEdge("B", "A", {"weight": 3.0})])
        await more.commit()
        nodes = [n.id async for b in stores.graph.read_nodes() for n in b]
        edges = [(e.source, e.target, e.properties) async for b in stores.graph.read_edges() for e in b]
        assert sorted(nodes) == ["A", "B", "C"] and edges == [("B", "A", {"weight": 3.0})]
        endpoint = [n.properties async for b in stores.graph.read_nodes() for n in b if n.id == "B"]
        assert endpoint == [{"entity_id": "B"}]  # created for the edge, as LightRAG does
        bad = await stores.graph.writer()
        with pytest.raises(DataError, match="cannot be stored in GraphML"):
            await bad.write([GraphNode("D", {"entity_id": "D", "tags": ["x"]})])
        assert sorted([n.id async for b in stores.graph.read_nodes() for n in b]) == ["A", "B", "C"]
    assert not list((tmp_path / "w").glob("*.tmp.*"))
