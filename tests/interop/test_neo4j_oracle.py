"""LightRAG 1.5.7's own Neo4JStorage as the oracle on a real Neo4j: hostile names and values over 4 KB,
both directions, zero differences; workspace copy / rename / drop as LightRAG then sees them; and the
indexes ragstore makes are the ones LightRAG makes.

Neo4j only: through FalkorDB's Bolt endpoint LightRAG's own queries fail on an apostrophe (it inlines
parameters unescaped), so it cannot be the oracle there; ragstore's side of that is tested on both
servers in tests/backends/neo4j/test_graph.py.
"""

from __future__ import annotations

import uuid

import pytest

from ragstore_cli.engine import workspace_ops
from ragstore_cli.backends.neo4j import create as create_neo4j
from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.config import load_settings
from tests.backends.neo4j.graphdata import edge, node, write
from tests.interop.lightrag_builder import fresh_shared_state, global_config, make_embedding_func, storage_class

pytestmark = pytest.mark.parametrize("bolt_server", ["neo4j"], indirect=True)

NAMES = ["O'Brien", "Alice's friend", "back`tick", "C:\\temp\\new", "two \\\\ slashes", 'say "hi"', "end\\",
         "é中😀 ünï", "a'b\\c`d\"e", "<SEP>{$x}%s"]
BIG = "O'Brien \\ said \"it's\" — 中文 `x`\n" * 160  # ~5.8 KB, over FalkorDB's 4 KB request


def hostile_graph():
    nodes = [node(name, description=f"{name}: {BIG if i % 3 == 0 else 'short'}") for i, name in enumerate(NAMES)]
    edges = [edge(NAMES[i], NAMES[i + 1], float(i), description=BIG[: 600 * i], keywords=NAMES[i])
             for i in range(len(NAMES) - 1)]
    edges.append(edge(NAMES[0], NAMES[0], 9.5, description=BIG))  # a self loop
    return nodes, edges


@pytest.fixture
async def lightrag(bolt_env, monkeypatch, tmp_path):
    """Factory: an initialised Neo4JStorage on a workspace (LightRAG reads NEO4J_* from the environment)."""
    for name, value in bolt_env.items():
        monkeypatch.setenv(name, value)
    opened = []

    async def make(workspace: str):
        fresh_shared_state()
        store = storage_class("Neo4JStorage")(namespace="chunk_entity_relation", workspace=workspace,
                                              global_config=global_config(tmp_path), embedding_func=make_embedding_func())
        await store.initialize()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.finalize()


@pytest.fixture
def graph_settings(bolt_env, tmp_path):
    return load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path)}, cwd=tmp_path)


@pytest.fixture
async def workspaces(graph_settings):
    """Names for this test's workspaces; every one is dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        names.append("t" + uuid.uuid4().hex[:10])
        return names[-1]

    yield make
    for name in names:
        backend = create_neo4j(graph_settings, name)
        await backend.open()
        try:
            await backend.drop_workspace()
        finally:
            await backend.close()


async def as_lightrag_sees_it(store) -> tuple[dict, dict]:
    """Every node and edge through LightRAG's own reads (get_all_*, then get_node / get_edge of each)."""
    nodes = {n["id"]: {k: v for k, v in n.items() if k != "id"} for n in await store.get_all_nodes()}
    for node_id, props in nodes.items():
        assert await store.get_node(node_id) == props
    edges = {}
    for e in await store.get_all_edges():
        pair = tuple(sorted((e["source"], e["target"])))
        edges[pair] = {k: v for k, v in e.items() if k not in ("source", "target")}
        assert await store.get_edge(e["source"], e["target"]) == edges[pair]
    return nodes, edges


async def lightrag_writes(store, nodes, edges):
    """The graph through LightRAG's own upserts, one record at a time."""
    for n in nodes:
        await store.upsert_node(n.id, n.properties)
    for e in edges:
        await store.upsert_edge(e.source, e.target, e.properties)
    return store


def expected(nodes, edges) -> tuple[dict, dict]:
    return ({n.id: n.properties for n in nodes},
            {tuple(sorted((e.source, e.target))): e.properties for e in edges})


async def ragstore_reads(settings, workspace: str) -> tuple[dict, dict]:
    backend = create_neo4j(settings, workspace)
    await backend.open()
    try:
        nodes = {n.id: n.properties async for batch in backend.graph().read_nodes(4) for n in batch}
        edges = {tuple(sorted((e.source, e.target))): e.properties
                 async for batch in backend.graph().read_edges(4) for e in batch}
        return nodes, edges
    finally:
        await backend.close()


async def test_ragstore_writes_lightrag_reads_the_same(graph_settings, workspaces, lightrag):
    workspace = workspaces()
    nodes, edges = hostile_graph()
    backend = create_neo4j(graph_settings, workspace)
    await backend.open()
    try:
        await write(backend, nodes, edges)
    finally:
        await backend.close()
    assert await as_lightrag_sees_it(await lightrag(workspace)) == expected(nodes, edges)


async def test_lightrag_writes_ragstore_reads_the_same(graph_settings, workspaces, lightrag):
    workspace = workspaces()
    nodes, edges = hostile_graph()
    store = await lightrag_writes(await lightrag(workspace), nodes, edges)
    assert await ragstore_reads(graph_settings, workspace) == expected(nodes, edges)
    assert await ragstore_reads(graph_settings, workspace) == await as_lightrag_sees_it(store)


async def test_copy_rename_and_drop_as_lightrag_sees_them(graph_settings, workspaces, lightrag, tmp_path):
    source, copy, moved = workspaces(), workspaces(), workspaces()
    nodes, edges = hostile_graph()
    await lightrag_writes(await lightrag(source), nodes, edges)
    want = expected(nodes, edges)
    (tmp_path / source).mkdir()
    await workspace_ops.copy_workspace(graph_settings, "neo4j,files", source, copy)
    assert await as_lightrag_sees_it(await lightrag(copy)) == want
    await workspace_ops.copy_workspace(graph_settings, "neo4j,files", copy, moved, move=True)
    assert await as_lightrag_sees_it(await lightrag(moved)) == want
    assert await as_lightrag_sees_it(await lightrag(copy)) == ({}, {})
    await workspace_ops.drop_workspace(graph_settings, "neo4j,files", moved, yes=True)
    assert await as_lightrag_sees_it(await lightrag(moved)) == ({}, {})
    assert await as_lightrag_sees_it(await lightrag(source)) == want  # the source never changed


async def test_ragstore_makes_the_indexes_lightrag_makes(graph_settings, workspaces, lightrag):
    theirs, ours = workspaces(), workspaces()
    await lightrag(theirs)  # Neo4JStorage.initialize creates its indexes
    backend = create_neo4j(graph_settings, ours)
    await backend.open()
    try:
        await backend.create_workspace()
        rows = await backend.bolt.run("SHOW INDEXES YIELD name, type, labelsOrTypes, properties, options "
                                      "RETURN name, type, labelsOrTypes, properties, options", read=True)
    finally:
        await backend.close()

    def shapes(label: str) -> set:
        return {(r["type"], tuple(r["properties"]), (r["options"].get("indexConfig") or {}).get("fulltext.analyzer"),
                 r["name"] if r["type"] == "FULLTEXT" else None)
                for r in rows if r["labelsOrTypes"] == [label]}

    assert {(t, p, a) for t, p, a, _ in shapes(theirs)} == {(t, p, a) for t, p, a, _ in shapes(ours)}
    assert {("RANGE", ("entity_id",), None), ("FULLTEXT", ("entity_id",), "cjk")} <= \
        {(t, p, a) for t, p, a, _ in shapes(ours)}
    store = await lightrag(ours)  # LightRAG finds ragstore's full-text index under the name it looks for
    assert {n for *_, n in shapes(ours) if n} == {store._get_fulltext_index_name(ours)} == \
        {cypher.fulltext_index_name(ours)}
