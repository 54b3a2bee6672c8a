"""The graph role over Bolt, in LightRAG's Neo4JStorage model (docs/lightrag-formats.md, Neo4j).

A workspace is a node label (NEO4J_WORKSPACE > workspace > `base`); nodes carry `entity_id` == the
node id; one `DIRECTED` relationship per unordered pair, read once in its stored direction. Reads
are keyset pages on `entity_id`, so memory does not grow with the graph.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ragstore_cli.backends.contract import LoadPlan, NamespaceStats
from ragstore_cli.records import (
    DEFAULT_BATCH, GRAPH_NAMESPACE, GraphEdge, GraphNode, Role,
)
from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.backends.neo4j.dialect import Dialect
from ragstore_cli.backends.neo4j.session import Bolt
from ragstore_cli.backends.neo4j.writer import DELETE_BATCH, GraphWriter
from ragstore_cli.config import Settings
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.workspace import NEO4J_DEFAULT, neo4j_label, validate_workspace

ROLES = frozenset({Role.GRAPH})


def effective_workspace(settings: Settings, workspace: str) -> str:
    """NEO4J_WORKSPACE overrides the workspace, as in LightRAG's Neo4JStorage."""
    return settings.neo4j.workspace or workspace  # validated where it was read (config.py)


class Neo4jGraph:
    """GraphStore for one label."""

    def __init__(self, bolt: Bolt, label: str, ensure_indexes=None) -> None:
        self.bolt, self.label, self._ensure_indexes = bolt, label, ensure_indexes

    async def count(self) -> tuple[int, int]:
        nodes = await self.bolt.scalar(cypher.count_nodes(self.label), read=True)
        edges = await self.bolt.scalar(cypher.count_edges(self.label), read=True)
        return int(nodes or 0), int(edges or 0)

    async def read_nodes(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphNode]]:
        if self.bolt.dialect.pages_as_lists:
            async for batch in self._read_node_lists(batch_size):
                yield batch
            return
        after = ""
        while True:
            rows = await self.bolt.run(cypher.node_page(self.label, self.bolt.dialect), {"after": after, "limit": batch_size}, read=True)
            if not rows:
                return
            yield [GraphNode(r["id"], cypher.strip_internal(dict(r["props"]))) for r in rows]
            after = rows[-1]["id"]
            if len(rows) < batch_size:
                return

    async def read_edges(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphEdge]]:
        """Edges grouped by their start node, a range of start nodes per query.

        The range width adapts so a page holds about `batch_size` edges; a single hub node's
        edges are still fetched in one query (memory bounded by the largest degree).
        """
        if self.bolt.dialect.pages_as_lists:
            async for batch in self._read_edge_lists(batch_size):
                yield batch
            return
        after, width = "", max(batch_size // 2, 1)
        pending: list[GraphEdge] = []
        while True:
            ids = await self.bolt.run(cypher.node_id_page(self.label, self.bolt.dialect), {"after": after, "limit": width}, read=True)
            if not ids:
                break
            upto = ids[-1]["id"]
            rows = await self.bolt.run(cypher.edges_from_range(self.label, self.bolt.dialect), {"after": after, "upto": upto}, read=True)
            pending.extend(GraphEdge(r["s"], r["t"], cypher.strip_internal(dict(r["props"]))) for r in rows)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
            after = upto
            if len(ids) < width:
                break
            # aim the next range at ~batch_size edges, within [1, 10 × batch_size] start nodes
            width = max(1, min(10 * batch_size, int(width * batch_size / max(len(rows), 1))))
        if pending:
            yield pending

    async def _read_node_lists(self, batch_size: int) -> AsyncIterator[list[GraphNode]]:
        """Neo4j: one record per page (cypher.node_page_list)."""
        after = ""
        while True:
            page = await self.bolt.scalar(cypher.node_page_list(self.label), {"after": after, "limit": batch_size},
                                          read=True)
            if not page:
                return
            yield [GraphNode(node_id, cypher.strip_internal(dict(props))) for node_id, props in page]
            after = page[-1][0]
            if len(page) < batch_size:
                return

    async def _read_edge_lists(self, batch_size: int) -> AsyncIterator[list[GraphEdge]]:
        """Neo4j: one record per range of start nodes (cypher.edge_page_list), the range sized as in
        read_edges."""
        after, width = "", max(batch_size // 2, 1)
        pending: list[GraphEdge] = []
        query = cypher.edge_page_list(self.label)
        while True:
            rows = await self.bolt.run(query, {"after": after, "limit": width}, read=True)
            if not rows or not rows[0]["starts"]:
                break
            page = rows[0]
            pending.extend(GraphEdge(s, t, cypher.strip_internal(dict(props))) for s, t, props in page["edges"])
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
            after = page["upto"]
            if page["starts"] < width:
                break
            width = max(1, min(10 * batch_size, int(width * batch_size / max(len(page["edges"]), 1))))
        if pending:
            yield pending

    async def writer(self, *, replace: bool = True) -> GraphWriter:
        writer = GraphWriter(self.bolt, self.label, replace=replace, ensure_indexes=self._ensure_indexes)
        await writer.start()
        return writer


class Neo4jBackend:
    """Backend serving only the graph role: a BackendSource (by re-reading) and a BackendTarget (load.py)."""

    name = "neo4j"
    roles = ROLES

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings = settings
        self.workspace = effective_workspace(settings, workspace)
        self.label = neo4j_label(self.workspace)
        self.bolt = Bolt(settings)

    async def open(self) -> None:
        await self.bolt.open()

    async def close(self) -> None:
        await self.bolt.close()

    @property
    def dialect(self) -> Dialect | None:
        return self.bolt.dialect

    def graph(self) -> Neo4jGraph:
        return Neo4jGraph(self.bolt, self.label, self.ensure_indexes)

    def loader(self, plan: LoadPlan) -> Any:
        """The Bolt server as a load's target (load.py)."""
        from ragstore_cli.backends.neo4j.load import Neo4jLoader

        return Neo4jLoader(self, plan)

    async def traces(self, workspace: str, *, remove: bool) -> list[str]:
        return []  # staged nodes of killed loads go with the workspace's own nodes (drop_workspace)

    def kv(self):
        raise UsageError("the neo4j backend serves only the graph role")

    vectors = doc_status = kv

    async def ensure_indexes(self, label: str | None = None) -> list[str]:
        """Create the indexes LightRAG's Neo4JStorage creates; returns the statements now in effect.

        Best effort, as in LightRAG: a server that refuses one (an edition without the CJK
        analyzer) does not fail the caller. Statements already in effect are skipped (dialect.present_indexes).
        """
        label = label or self.label
        statements = self.bolt.dialect.index_statements(label)
        present = await self.bolt.dialect.present_indexes(self.bolt, label, statements)
        done = []
        for statement in statements:
            if statement in present:
                done.append(statement)
                continue
            try:
                await self.bolt.run(statement)
                done.append(statement)
            except OperationFailed:
                if "FULLTEXT" in statement:
                    try:
                        await self.bolt.run(cypher.fulltext_fallback(label))
                        done.append(cypher.fulltext_fallback(label))
                    except OperationFailed:
                        pass
        return done

    async def create_workspace(self, *, embedding_model: str | None = None,
                               embedding_dim: int | None = None) -> list[str]:
        return await self.ensure_indexes()

    async def list_workspaces(self) -> list[str]:
        """Labels holding at least one node with entity_id; `base` is reported as "" (default)."""
        labels = await self.bolt.run("CALL db.labels() YIELD label RETURN label", read=True)
        found = []
        for row in sorted(labels, key=lambda r: r["label"]):
            label = row["label"]
            if label.startswith(cypher.STAGE_PREFIX):
                continue
            try:
                name = "" if label == NEO4J_DEFAULT else validate_workspace(label)
            except UsageError:
                continue  # a label ragstore refuses to address (see workspace.py)
            probe = f"MATCH (n:{cypher.quote_label(label)}) WHERE n.entity_id IS NOT NULL RETURN 1 AS x LIMIT 1"
            if await self.bolt.run(probe, read=True):
                found.append(name)
        return found

    async def stats(self) -> list[NamespaceStats]:
        nodes, edges = await self.graph().count()
        if not nodes and not edges:
            return []
        return [NamespaceStats(GRAPH_NAMESPACE, Role.GRAPH, nodes + edges, location=f"label {self.label}")]

    async def _empty_target(self, target: str, *, resume: bool = False) -> str:
        label = neo4j_label(validate_workspace(target))
        if label == self.label:
            raise UsageError(f"workspace {target!r} is the source workspace")
        if not resume and await self.bolt.scalar(cypher.count_nodes(label), read=True):
            raise UsageError(f"workspace {target!r} already holds graph nodes (label {label})")
        return label

    resumable_rename = True  # a rename killed between batches is continued by rename_workspace(resume=True)

    async def rename_workspace(self, target: str, *, resume: bool = False) -> dict[str, int]:
        """Relabel every node server-side, in bounded batches (relationships follow their nodes).

        Not atomic; `resume` (set by engine/copy.py from its ledger note) accepts a target that an
        interrupted rename of this workspace already filled in part, and moves the rest."""
        label = await self._empty_target(target, resume=resume)
        nodes, edges = await self.graph().count()
        await self.bolt.repeat_until_zero(cypher.relabel_batch(self.label, label), {}, expected=nodes,
                                          limit=DELETE_BATCH)
        await self.ensure_indexes(label)
        return {GRAPH_NAMESPACE: nodes + edges}

    async def copy_workspace(self, target: str) -> dict[str, int]:
        """Copy nodes, then relationships, server-side in keyset batches (no round trip of the data).

        Not atomic: a killed copy is restarted from an empty target by engine/copy.py."""
        label = await self._empty_target(target)
        await self.ensure_indexes(label)  # the edge copy looks nodes up by entity_id
        dialect, nodes, edges = self.bolt.dialect, 0, 0
        for statement in (cypher.copy_nodes_range, cypher.copy_edges_range):  # all nodes before any edge
            after = ""
            while True:
                ids = await self.bolt.run(cypher.node_id_page(self.label, dialect),
                                          {"after": after, "limit": 500}, read=True)
                if not ids:
                    break
                upto = ids[-1]["id"]
                done = int(await self.bolt.scalar(statement(self.label, label, dialect),
                                                  {"after": after, "upto": upto}) or 0)
                if statement is cypher.copy_nodes_range:
                    nodes += done
                else:
                    edges += done
                after = upto
        want = await self.graph().count()
        if (nodes, edges) != want:  # e.g. an endpoint FalkorDB's index cannot find: loud, never fewer edges
            raise OperationFailed(f"workspace copy: {nodes} nodes and {edges} edges copied of {want[0]} and {want[1]}")
        return {GRAPH_NAMESPACE: nodes + edges}

    async def cleanup_stale_imports(self) -> int:
        """Delete nodes staged for this workspace by imports that never committed or aborted (a
        killed process) and their staging indexes, and what else the dialect says a killed import can leave
        (FalkorDB: halves of values written in pieces); returns the number of staged nodes removed.
        Only safe while no import into this workspace is running (the workspace lock's job)."""
        for statement in self.bolt.dialect.leftover_statements(self.label):
            await self.bolt.run(statement)
        removed = 0
        for row in await self.bolt.run("CALL db.labels() YIELD label RETURN label", read=True):
            parts = cypher.stage_parts(row["label"])
            if parts is None or parts[1] != self.label:
                continue
            stale = row["label"]
            count = int(await self.bolt.scalar(f"MATCH (n:{cypher.quote_label(stale)}) RETURN count(n) AS c") or 0)
            removed += await self.bolt.repeat_until_zero(cypher.delete_nodes_batch(stale), {}, expected=count,
                                                         limit=DELETE_BATCH)
            try:
                await self.bolt.run(self.bolt.dialect.stage_index(stale)[1])
            except OperationFailed:
                pass  # no index (FalkorDB has no IF EXISTS)
        return removed

    async def drop_workspace(self) -> dict[str, int]:
        """DETACH DELETE the workspace's nodes (and nodes staged for it by killed imports) in bounded
        batches; nodes + edges removed (as `stats`)."""
        nodes, edges = await self.graph().count()
        await self.cleanup_stale_imports()
        await self.bolt.repeat_until_zero(cypher.delete_nodes_batch(self.label), {}, expected=nodes,
                                          limit=DELETE_BATCH)
        return {GRAPH_NAMESPACE: nodes + edges}
