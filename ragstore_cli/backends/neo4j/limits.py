"""What a Bolt server cannot store, found before anything is written.

The import preflight (transfer.importer) runs `check_batch` over the archive's graph sections once the
target server is known, so a record the server would refuse stops the import before its first write;
the writer runs the same checks on every batch (other callers, e.g. a workspace copy across backends).
Everything else — quotes, backslashes, backticks in names, values of any size — is stored as it is.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.backends.neo4j.dialect import Dialect
from ragstore_cli.errors import DataError


def check_rows(dialect: Dialect, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    """Raise DataError for the first row (from cypher.node_row / edge_row) this server cannot store."""
    for row in nodes:
        dialect.check_id(row["id"])
    for row in edges:
        dialect.check_id(row["src"])
        dialect.check_id(row["tgt"])
    for row in nodes:
        if (key := dialect.refused_key(row["props"])) is not None:
            raise DataError(f"node {row['id'][:60]!r}: property name {key!r} {dialect.key_rule}")
    for row in edges:
        if (key := dialect.refused_key(row["props"])) is not None:
            raise DataError(f"edge {row['src'][:60]!r} - {row['tgt'][:60]!r}: property name {key!r} {dialect.key_rule}")


def rows_of(batch: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The checked UNWIND rows of a batch of GraphNode / GraphEdge (DataError for anything else)."""
    nodes = [cypher.node_row(n.id, n.properties) for n in batch if isinstance(n, GraphNode)]
    edges = [cypher.edge_row(e.source, e.target, e.properties) for e in batch if isinstance(e, GraphEdge)]
    if len(nodes) + len(edges) != len(batch):
        odd = next(x for x in batch if not isinstance(x, (GraphNode, GraphEdge)))
        raise DataError(f"graph writer takes GraphNode/GraphEdge, got {type(odd).__name__}")
    return nodes, edges


def check_batch(dialect: Dialect, batch: list[Any]) -> None:
    """Every check the writer makes on `batch`, without writing (the import preflight)."""
    check_rows(dialect, *rows_of(batch))
