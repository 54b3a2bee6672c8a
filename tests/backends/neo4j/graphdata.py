"""Small graphs in LightRAG's shapes (docs/lightrag-formats.md, GraphML), shared by the neo4j tests."""

from __future__ import annotations

from ragstore_cli.records import GraphEdge, GraphNode

SEP = "<SEP>"


def node(name: str, kind: str = "person", **extra) -> GraphNode:
    return GraphNode(name, {
        "entity_id": name, "entity_type": kind, "description": f"{name} is a {kind}.",
        "source_id": f"chunk-1{SEP}chunk-2", "file_path": f"notes.txt{SEP}unknown_source",
        "created_at": 1735689600, "truncate": "", **extra})


def edge(source: str, target: str, weight: float = 1.0, **extra) -> GraphEdge:
    return GraphEdge(source, target, {
        "weight": weight, "description": f"{source} knows {target}", "keywords": "friend,knows",
        "source_id": "chunk-1", "file_path": "notes.txt", "created_at": 1735689601, "truncate": "", **extra})


def sample(n: int = 12) -> tuple[list[GraphNode], list[GraphEdge]]:
    """n nodes, a ring of edges (stored in both orientations), one self loop."""
    names = [f"Entity {i:03d}" for i in range(n)]
    nodes = [node(name, "person" if i % 2 else "organization") for i, name in enumerate(names)]
    edges = [edge(names[i], names[(i + 1) % n], float(i)) if i % 3 else edge(names[(i + 1) % n], names[i], float(i))
             for i in range(n)]
    edges.append(edge(names[0], names[0], 9.0))
    return nodes, edges


async def write(backend, nodes, edges, *, replace=True, commit=True):
    """Nodes, then edges, through the backend's writer; committed unless `commit` is False."""
    writer = await backend.graph().writer(replace=replace)
    await writer.write(nodes)
    await writer.write(edges)
    if commit:
        await writer.commit()
    return writer


async def read_all(graph, batch_size: int = 1000) -> tuple[dict, dict]:
    """Every node and edge, checking no item is read twice."""
    nodes, edges = {}, {}
    async for batch in graph.read_nodes(batch_size):
        assert 0 < len(batch) <= batch_size
        for n in batch:
            assert n.id not in nodes
            nodes[n.id] = n.properties
    async for batch in graph.read_edges(batch_size):
        assert 0 < len(batch) <= batch_size
        for e in batch:
            assert (e.source, e.target) not in edges
            edges[(e.source, e.target)] = e.properties
    return nodes, edges


def as_dicts(nodes: list[GraphNode], edges: list[GraphEdge]) -> tuple[dict, dict]:
    return {n.id: n.properties for n in nodes}, {(e.source, e.target): e.properties for e in edges}
