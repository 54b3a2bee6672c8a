"""Short statements for the FalkorDB bulk path: rows CREATEd into a replace-mode staging label.

FalkorDB's Bolt endpoint renders the parameters into the query text and the whole text must fit its
4 KB buffer (see falkordb_text.FALKORDB_TEXT_BUFFER), so every byte of statement is a byte less of rows:
the rows parameter is `$r`, the row variable `w`. Labels and property names go through
`workspace.quote_label`; every id and value travels as a parameter.

CREATE is only correct for a row whose node id (or unordered node pair) this import has not written
yet (the writer's `SeenFilter` says which); the others take LightRAG's MERGE (cypher.py). On
FalkorDB an undirected MERGE of an edge costs ~3x a CREATE (it probes both directions).
"""

from __future__ import annotations

from ragstore_cli.backends.neo4j.cypher import REL, TAG, positional
from ragstore_cli.workspace import quote_label

ROWS = "r"  # the rows parameter


def _props(keys: tuple[str, ...], first: int, floats: frozenset[str]) -> str:
    return "".join(f", {quote_label(k)}: {positional('w', i + first, k, floats)}" for i, k in enumerate(keys))


def create_nodes(label: str, keys: tuple[str, ...], floats: frozenset[str] = frozenset()) -> str:
    """Rows `[id, v1, v2, ...]` for one key set (keys without entity_id, which is the id); the
    values of `floats` as [m, e] pairs (inline.exact_float)."""
    return f"UNWIND ${ROWS} AS w CREATE (:{quote_label(label)} {{entity_id: w[0]{_props(keys, 1, floats)}}})"


def create_edges(label: str, keys: tuple[str, ...], floats: frozenset[str] = frozenset()) -> str:
    """Rows `[src, tgt, v1, ...]`; stored in the row's direction, as MERGE does for a new pair.
    Returns how many were created: fewer than the rows means an endpoint is missing."""
    q = quote_label(label)
    props = _props(keys, 2, floats)
    return (f"UNWIND ${ROWS} AS w MATCH (s:{q} {{entity_id: w[0]}}) MATCH (t:{q} {{entity_id: w[1]}}) "
            f"CREATE (s)-[e:{REL}{' {' + props[2:] + '}' if props else ''}]->(t) RETURN count(e) AS c")


# A text value too large for one request (inline.py): appended in chunks to PART, then moved into place.
PART = f"{TAG}_part"


def append_node_part(label: str, *, first: bool) -> str:
    return f"MATCH (n:{quote_label(label)} {{entity_id: $i}}) SET n.{PART} = {'' if first else f'n.{PART} + '}$c"


def finish_node_part(label: str, key: str) -> str:
    return f"MATCH (n:{quote_label(label)} {{entity_id: $i}}) SET n.{quote_label(key)} = n.{PART}, n.{PART} = NULL"


def append_edge_part(label: str, *, first: bool) -> str:
    """DISTINCT: an undirected pattern meets a self loop twice."""
    q = quote_label(label)
    return (f"MATCH (:{q} {{entity_id: $s}})-[r:{REL}]-(:{q} {{entity_id: $t}}) WITH DISTINCT r "
            f"SET r.{PART} = {'' if first else f'r.{PART} + '}$c")


def finish_edge_part(label: str, key: str) -> str:
    q = quote_label(label)
    return (f"MATCH (:{q} {{entity_id: $s}})-[r:{REL}]-(:{q} {{entity_id: $t}}) WITH DISTINCT r "
            f"SET r.{quote_label(key)} = r.{PART}, r.{PART} = NULL")


def clear_parts(label: str) -> tuple[str, str]:
    """Remove what a killed import left in PART (the values themselves were never replaced)."""
    q = quote_label(label)
    return (f"MATCH (n:{q}) WHERE n.{PART} IS NOT NULL SET n.{PART} = NULL",
            f"MATCH (:{q})-[r:{REL}]->(:{q}) WHERE r.{PART} IS NOT NULL SET r.{PART} = NULL")
