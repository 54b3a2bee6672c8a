"""The FalkorDB bulk path: requests packed to the byte under its 4 KB text buffer, CREATE for rows new
to the import, LightRAG's MERGE for repeats (across write() calls too)."""

from __future__ import annotations

import math

import pytest

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.neo4j import bulk_cypher, inline
from ragstore_cli.backends.neo4j.inline import SPLIT_AT
from ragstore_cli.backends.neo4j.falkordb_text import (
    FALKORDB_TEXT_LIMIT, escape, escaped_size, falkordb_batches, falkordb_text_size, rendered_size,
)
from ragstore_cli.backends.neo4j.writer import SeenFilter
from ragstore_cli.errors import DataError, OperationFailed
from tests.backends.neo4j.graphdata import as_dicts, edge, node, read_all


def falkordb_text(query: str, params: dict) -> str:
    """What FalkorDB's Bolt endpoint builds from a RUN (bolt_api.c get_query / write_value)."""
    def render(v) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "%f" % v
        if isinstance(v, str):
            return f"'{v}'"
        if isinstance(v, list):
            return "[" + ", ".join(render(x) for x in v) + "]"
        return "{" + ", ".join(f"{k}: {render(x)}" for k, x in v.items()) + "}"
    return "CYPHER " + "".join(f"{k}={render(v)} " for k, v in params.items()) + query


@pytest.mark.parametrize("value", ["", "abc", "é中😀", 0, -17, 2**63 - 1, 1.0, -0.5, 1e300, 1e-9, True, False, None,
                                   [], [1, "a", [2.5, []]], {"k": "v", "n": [1]}, {}])
def test_rendered_size_is_exactly_falkordbs_text(value):
    assert rendered_size(value) == len(falkordb_text("", {"x": value}).encode()) - len("CYPHER x= ")


def test_batches_fill_the_text_buffer_to_the_byte_and_never_past_it():
    query = bulk_cypher.create_edges("__ragstore_import_0123456789abcdef__ws", ("weight", "description"))
    rows = [[f"Entity {i:06d}", f"Entity {i + 1:06d}", i / 7, "d" * (i % 97)] for i in range(3000)]
    parts = list(falkordb_batches(rows, query, bulk_cypher.ROWS, max_rows=1000))
    assert sum(map(len, parts)) == 3000 and [r for p in parts for r in p] == rows
    sizes = [len(falkordb_text(query, {bulk_cypher.ROWS: p}).encode()) for p in parts]
    assert sizes == [falkordb_text_size(query, {bulk_cypher.ROWS: p}) for p in parts]
    assert max(sizes) <= FALKORDB_TEXT_LIMIT < 4095
    assert min(sizes[:-1]) > FALKORDB_TEXT_LIMIT - 200  # full: the next row would not have fitted
    tagged = list(falkordb_batches(rows, query, "rows", {"tag": "0123456789abcdef"}, max_rows=1000))
    assert all(falkordb_text_size(query, {"rows": p, "tag": "0123456789abcdef"}) <= FALKORDB_TEXT_LIMIT for p in tagged)
    assert [len(p) for p in falkordb_batches(rows, query, "r", max_rows=7)][:3] == [7, 7, 7]
    quoted = [[f"it's {i}", "a\\b", i / 7, "'\\" * (i % 97)] for i in range(3000)]  # sized as sent: escaped
    parts = list(falkordb_batches(quoted, query, bulk_cypher.ROWS, max_rows=1000))
    sizes = [len(falkordb_text(query, {bulk_cypher.ROWS: escape(p)}).encode()) for p in parts]
    assert max(sizes) <= FALKORDB_TEXT_LIMIT and min(sizes[:-1]) > FALKORDB_TEXT_LIMIT - 400


def test_bulk_statements_create_with_every_property():
    assert bulk_cypher.create_nodes("ws", ("entity_type", "description")) == (
        "UNWIND $r AS w CREATE (:`ws` {entity_id: w[0], `entity_type`: w[1], `description`: w[2]})")
    assert bulk_cypher.create_nodes("ws", ()) == "UNWIND $r AS w CREATE (:`ws` {entity_id: w[0]})"
    assert bulk_cypher.create_edges("ws", ("weight",)) == (
        "UNWIND $r AS w MATCH (s:`ws` {entity_id: w[0]}) MATCH (t:`ws` {entity_id: w[1]}) "
        "CREATE (s)-[e:DIRECTED {`weight`: w[2]}]->(t) RETURN count(e) AS c")
    assert "CREATE (s)-[e:DIRECTED]->(t) RETURN" in bulk_cypher.create_edges("ws", ())


def test_seen_filter_never_forgets_a_key():
    seen = SeenFilter(bits=1 << 12)  # small: many false positives, never a false negative
    keys = [f"n{i}" for i in range(3000)] + [("a", f"b{i}") for i in range(3000)]
    first = [seen.seen(k) for k in keys]
    assert all(seen.seen(k) for k in keys)
    assert not all(first)
    roomy = SeenFilter()
    assert not any(roomy.seen(f"n{i}") for i in range(10_000))


async def test_largest_request_is_accepted_by_falkordb_and_one_byte_more_is_refused(open_backend, is_real_neo4j):
    if is_real_neo4j:
        pytest.skip("the 4 KB text buffer is FalkorDB's")
    backend = await open_backend()
    query = "RETURN $s AS s"
    largest = "x" * (FALKORDB_TEXT_LIMIT - falkordb_text_size(query, {"s": ""}))
    assert falkordb_text_size(query, {"s": largest}) == FALKORDB_TEXT_LIMIT
    assert await backend.bolt.scalar(query, {"s": largest}) == largest
    with pytest.raises(DataError, match="larger than this server accepts"):  # any statement, not only the writer's
        await backend.bolt.run(query, {"s": largest + "x"})
    quoted = "'" * ((FALKORDB_TEXT_LIMIT - falkordb_text_size(query, {"s": ""})) // 2)  # escaped: two bytes each
    assert await backend.bolt.scalar(query, {"s": quoted}) == quoted
    with pytest.raises(DataError, match="larger than this server accepts"):
        await backend.bolt.run(query, {"s": quoted + "'"})
    assert await backend.bolt.scalar("RETURN 1 AS ok") == 1  # server still up


async def test_rows_on_both_sides_of_the_split_threshold_round_trip(open_backend):
    """A row up to inline.SPLIT_AT travels whole; past it, its largest text values go in pieces."""
    backend = await open_backend()
    writer = await backend.graph().writer()
    base = escaped_size("n0") + len("description") + 4
    nodes = [GraphNode(f"n{i}", {"entity_id": f"n{i}", "description": "d" * (SPLIT_AT - base - 2 + i)}) for i in range(3)]
    nodes.append(GraphNode("n3", {"entity_id": "n3", "description": "x" * 20_000, "summary": "it's \\ " * 900,
                                  "weight": 1.5}))
    edges = [GraphEdge("n0", "n1", {"description": "e" * 9_000}), GraphEdge("n3", "n3", {"description": "'" * 5_000})]
    await writer.write(nodes)
    await writer.write(edges)
    await writer.commit()
    assert await read_all(backend.graph()) == as_dicts(nodes, edges)
    raw = await backend.bolt.run(f"MATCH (n:`{backend.label}`) RETURN properties(n) AS p")
    assert not any(bulk_cypher.PART in r["p"] for r in raw)


async def test_repeats_across_write_calls_merge_like_lightrag(open_backend):
    backend = await open_backend()
    writer = await backend.graph().writer()
    await writer.write([node("A"), node("B"), node("C")])
    await writer.write([edge("A", "B", 1.0), edge("C", "A", 4.0)])
    await writer.write([node("A", extra="second"), node("D")])
    await writer.write([edge("B", "A", 2.0, note="reverse"), edge("A", "C", 5.0), edge("D", "D", 3.0)])
    await writer.commit()
    got_nodes, got_edges = await read_all(backend.graph())
    assert set(got_nodes) == {"A", "B", "C", "D"} and got_nodes["A"]["extra"] == "second"
    assert got_nodes["A"]["description"] == "A is a person."
    assert set(got_edges) == {("A", "B"), ("C", "A"), ("D", "D")}  # first orientation kept
    assert got_edges[("A", "B")]["weight"] == 2.0 and got_edges[("A", "B")]["note"] == "reverse"
    assert got_edges[("C", "A")]["weight"] == 5.0


async def test_a_batch_retried_after_a_failure_does_not_duplicate(open_backend):
    backend = await open_backend()
    writer = await backend.graph().writer()
    nodes = [node(f"n{i}") for i in range(50)]
    edges = [edge(f"n{i}", f"n{i + 1}") for i in range(49)]
    await writer.write(nodes)
    real_scalar, calls = backend.bolt.scalar, []

    async def flaky(query, params=None, **kw):
        calls.append(query)
        if len(calls) == 1:
            await real_scalar(query, params, **kw)  # written, then the answer is lost
            raise ConnectionError("lost")
        return await real_scalar(query, params, **kw)

    backend.bolt.scalar = flaky
    with pytest.raises(ConnectionError):
        await writer.write(edges)
    await writer.write(nodes)
    await writer.write(edges)
    backend.bolt.scalar = real_scalar
    await writer.commit()
    assert await backend.graph().count() == (50, 49)
    assert await read_all(backend.graph()) == as_dicts(nodes, edges)


async def test_edges_to_missing_nodes_still_fail_on_the_create_path(open_backend):
    backend = await open_backend()
    writer = await backend.graph().writer()
    await writer.write([GraphNode("A", {"entity_id": "A"})])
    with pytest.raises(DataError, match="'Ghost'"):
        await writer.write([GraphEdge("A", "Ghost", {"weight": 1.0})])
    await writer.abort()
    assert await backend.graph().count() == (0, 0)


async def test_property_names_that_are_not_identifiers_on_the_create_path(open_backend):
    backend = await open_backend()
    props = {"a b": 1, "é中": "x", "weird-key.dot": True, "CREATE": 2.5, "truncate": ""}
    nodes = [GraphNode("a", {"entity_id": "a", **props}), GraphNode("b", {"entity_id": "b"})]
    edges = [GraphEdge("a", "b", dict(props))]
    writer = await backend.graph().writer()
    await writer.write(nodes)
    await writer.write(edges)
    await writer.commit()
    assert await read_all(backend.graph()) == as_dicts(nodes, edges)


async def test_a_value_a_killed_merge_import_was_writing_in_pieces_is_left_whole(open_backend, is_real_neo4j):
    if is_real_neo4j:
        pytest.skip("only FalkorDB's 4 KB requests make values go in pieces")
    backend = await open_backend()
    writer = await backend.graph().writer()
    await writer.write([GraphNode("a", {"entity_id": "a", "description": "the old one"})])
    await writer.commit()
    # a merge-mode import killed after the first append of a 9 KB description
    query, params = next(inline.piece_statements(backend.label, inline.Piece(("a",), "description", "x" * 9000)))
    await backend.bolt.run(query, params)
    assert (await read_all(backend.graph()))[0]["a"]["description"] == "the old one"  # the real value untouched
    await backend.cleanup_stale_imports()
    raw = await backend.bolt.run(f"MATCH (n:`{backend.label}`) RETURN properties(n) AS p")
    assert raw == [{"p": {"entity_id": "a", "description": "the old one"}}]


FLOATS = [0.0078125, 1e-9, 1 / 3, 1.7000000000000002, 5e-324, -2.5e-310, 1e300, 1.7976931348623157e308, -0.0, 1.0, 0.85]


def test_exact_float_pairs_rebuild_every_double():
    for value in FLOATS:
        m, e = inline.exact_float(value)
        assert math.ldexp(m, e) == value and math.copysign(1, math.ldexp(m, e)) == math.copysign(1, value)
    assert inline.exact_float(0.25) == [0.25, 0] and inline.exact_float(1 / 3)[1] == -54


async def test_floats_round_trip_exactly(open_backend):
    """FalkorDB renders a float parameter with six decimals (0.0078125 came back as 0.007812)."""
    backend = await open_backend()
    nodes = [GraphNode(f"n{i}", {"entity_id": f"n{i}", "score": v}) for i, v in enumerate(FLOATS)]
    edges = [GraphEdge(f"n{i}", f"n{i + 1}", {"weight": v}) for i, v in enumerate(FLOATS[:-1])]
    writer = await backend.graph().writer()
    await writer.write(nodes)
    await writer.write(edges)
    await writer.commit()
    merged = await backend.graph().writer(replace=False)  # the MERGE path too
    await merged.write([GraphNode("n0", {"entity_id": "n0", "other": 1e-7}), GraphEdge("n1", "n0", {"w2": 1 / 7})])
    await merged.commit()
    got_nodes, got_edges = await read_all(backend.graph())
    assert [got_nodes[f"n{i}"]["score"] for i in range(len(FLOATS))] == FLOATS
    assert str(got_nodes["n8"]["score"]) == "-0.0" and got_nodes["n0"]["other"] == 1e-7
    assert [got_edges[(f"n{i}", f"n{i + 1}")]["weight"] for i in range(len(FLOATS) - 1)] == FLOATS[:-1]
    assert got_edges[("n0", "n1")]["w2"] == 1 / 7


async def test_an_edge_the_commit_cannot_copy_fails_loudly(open_backend, is_real_neo4j, monkeypatch):
    """FalkorDB's commit copies staged edges by looking their nodes up; one it cannot find must not
    vanish silently (found with ids that FalkorDB's index cannot find, now refused up front)."""
    if is_real_neo4j:
        pytest.skip("Neo4j's commit relabels the staged nodes; nothing is looked up")
    from ragstore_cli.backends.neo4j import cypher, limits

    backend = await open_backend()
    monkeypatch.setattr(limits, "check_rows", lambda *a: None)
    writer = await backend.graph().writer()
    await writer.write([GraphNode(" a", {"entity_id": " a"}), GraphNode("b", {"entity_id": "b"})])
    await backend.bolt.run(f"MATCH (s:`{writer.stage}`), (t:`{writer.stage}`) WHERE toString(s.entity_id) = 'b' "
                           f"AND toString(t.entity_id) = ' a' CREATE (s)-[:{cypher.REL}]->(t)")  # off the index
    with pytest.raises(OperationFailed, match="1 staged edges could not be copied"):
        await writer.commit()
