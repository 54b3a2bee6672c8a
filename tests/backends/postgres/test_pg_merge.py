"""replace=False: COPY into a temp table, then one INSERT … ON CONFLICT; create_time kept, as LightRAG does."""

from __future__ import annotations

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings


def rec(names, t):
    return {"entity_names": names, "count": len(names), "create_time": t, "update_time": t}


async def test_merge_upserts_and_keeps_create_time(tmp_path, pg_database):
    settings = load_settings(environ=pg_database)
    async with await open_backends(settings, "postgres", "m") as stores:
        writer = await stores.kv.writer("full_entities")
        await writer.write([("a", rec(["A"], 1700000000)), ("b", rec(["B"], 1700000000))])
        await writer.commit()
        merge = await stores.kv.writer("full_entities", replace=False)
        await merge.write([("b", rec(["B", "B2"], 1800000000)), ("c", rec(["C"], 1800000000))])
        await merge.commit()
        got = {i: r async for batch in stores.kv.read("full_entities") for i, r in batch}
        assert sorted(got) == ["a", "b", "c"]
        assert got["b"]["entity_names"] == ["B", "B2"] and got["b"]["count"] == 2
        assert (got["b"]["create_time"], got["b"]["update_time"]) == (1700000000, 1800000000)
        assert got["a"] == {**rec(["A"], 1700000000), "_id": "a"}
        aborted = await stores.kv.writer("full_entities")  # replace, then abort: nothing changes
        await aborted.write([("z", rec(["Z"], 1))])
        await aborted.abort()
        assert await stores.kv.count("full_entities") == 3

        graph = await stores.graph.writer()
        await graph.write([GraphNode("A", {"entity_id": "A", "x": 1}), GraphEdge("B", "A", {"w": 1.0})])
        await graph.commit()
        more = await stores.graph.writer(replace=False)
        await more.write([GraphNode("A", {"entity_id": "A", "y": 2}), GraphEdge("A", "B", {"w": 2.0})])
        await more.commit()
        nodes = {n.id: n.properties async for batch in stores.graph.read_nodes() for n in batch}
        edges = [(e.source, e.target, e.properties) async for batch in stores.graph.read_edges() for e in batch]
        assert nodes == {"A": {"entity_id": "A", "x": 1, "y": 2}, "B": {"entity_id": "B"}}
        assert edges == [("A", "B", {"w": 2.0})]  # one undirected edge, canonical order, replaced
