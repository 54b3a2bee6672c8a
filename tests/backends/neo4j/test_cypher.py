"""The generated Cypher and the value rules, checked as strings (no server needed)."""

from __future__ import annotations

import pytest

from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.backends.neo4j.dialect import FALKORDB, NEO4J, by_payload, dialect_for_probe
from ragstore_cli.errors import DataError


def test_label_is_quoted_and_backticks_doubled_everywhere():
    hostile = "a`) DETACH DELETE n //"
    for build in (cypher.count_nodes, cypher.count_edges, lambda label: cypher.node_page(label, NEO4J),
                  cypher.delete_nodes_batch, cypher.untag_nodes_batch, lambda label: cypher.node_page(label, FALKORDB)):
        text = build(hostile)
        assert "`a``) DETACH DELETE n //`" in text
        assert text.count("`a``)") == text.count("DETACH DELETE n //`")
    assert "`a``) DETACH DELETE n //`" in cypher.merge_nodes_positional(hostile, ("k`x",), tag=False)


def test_merge_statements_match_lightrag_upserts():
    assert cypher.merge_nodes_positional("ws", ("description", "we`ird"), tag=False) == (
        "UNWIND $rows AS row MERGE (n:`ws` {entity_id: row[0]}) SET n.`description` = row[1], n.`we``ird` = row[2]")
    edge = cypher.merge_edges_positional("ws", ("weight",), tag=True, floats=frozenset({"weight"}))
    assert "MERGE (s)-[r:DIRECTED]-(t) ON CREATE SET r._ragstore_import = $tag SET r.`weight` = row[2][0] * 2.0 ^ row[2][1]" in edge
    assert "MATCH (s:`ws` {entity_id: row[0]}) WITH s, row MATCH (t:`ws` {entity_id: row[1]})" in edge


def test_neo4j_index_statements_are_lightrags():
    create_btree, create_fulltext = NEO4J.index_statements("my-ws")
    assert create_btree == "CREATE INDEX IF NOT EXISTS FOR (n:`my-ws`) ON (n.entity_id)"
    assert create_fulltext.startswith(
        "CREATE FULLTEXT INDEX entity_id_fulltext_idx_my_ws IF NOT EXISTS FOR (n:`my-ws`) ON EACH [n.entity_id]")
    assert "`fulltext.analyzer`: 'cjk'" in create_fulltext
    assert cypher.fulltext_fallback("my-ws").endswith("FOR (n:`my-ws`) ON EACH [n.entity_id]")
    # LightRAG's lossy names: a-b and a_b share one full-text index; digits get a ws_ prefix
    assert cypher.fulltext_index_name("a-b") == cypher.fulltext_index_name("a_b") == "entity_id_fulltext_idx_a_b"
    assert cypher.fulltext_index_name("9x") == "entity_id_fulltext_idx_ws_9x"
    assert cypher.fulltext_index_name("---") == "entity_id_fulltext_idx_base"


def test_falkordb_index_statements_use_its_dialect():
    btree, fulltext = FALKORDB.index_statements("ws")
    assert btree == "CREATE INDEX FOR (n:`ws`) ON (n.entity_id)"
    assert fulltext == "CALL db.idx.fulltext.createNodeIndex('ws', 'entity_id')"
    stage = cypher.stage_label("abc", "my-ws")
    assert stage == "__ragstore_import_abc__my-ws" and cypher.stage_parts(stage) == ("abc", "my-ws")
    assert cypher.stage_parts("my-ws") is None and cypher.stage_parts("__ragstore_import_x") is None
    create, drop = NEO4J.stage_index(stage)
    assert create == "CREATE INDEX ragstore_stage_abc IF NOT EXISTS FOR (n:`__ragstore_import_abc__my-ws`) ON (n.entity_id)"
    assert drop == "DROP INDEX ragstore_stage_abc IF EXISTS"


def test_dialect_from_the_components_probe():
    neo = dialect_for_probe([{"name": "Neo4j Kernel", "versions": ["5.26.1"], "edition": "community"}])
    assert neo.name == "neo4j" and neo.agent == "Neo4j Kernel 5.26.1 community" and neo.max_payload > 1_000_000
    falkordb = dialect_for_probe(None)
    assert falkordb.name == "falkordb" and falkordb.inlines and falkordb.max_id_bytes < 4096
    assert neo.sort_key("n") == "n.entity_id" and falkordb.sort_key("n") == "toString(n.entity_id)"


@pytest.mark.parametrize("value, words", [
    (float("nan"), "finite"), (float("inf"), "finite"), (2**63, "64 bits"), (-(2**63) - 1, "64 bits"),
    (None, "NoneType"), ([1, 2], "list"), ({"a": 1}, "dict"), ("a\x00b", "NUL"), ("x\ud800", "surrogate"),
    ("bell\x07", "control"),
])
def test_non_portable_values_are_refused_naming_the_node(value, words):
    with pytest.raises(DataError) as err:
        cypher.node_row("Alice", {"entity_id": "Alice", "description": value})
    assert "node 'Alice'" in str(err.value) and "'description'" in str(err.value) and words in str(err.value)


def test_portable_values_pass_and_entity_id_is_forced():
    props = {"weight": 1.5, "count": 2**63 - 1, "flag": True, "text": "tab\tnew\nline é 中 😀 <SEP>"}
    row = cypher.node_row("Bob", props)
    assert row == {"id": "Bob", "props": {**props, "entity_id": "Bob"}}
    with pytest.raises(DataError, match="differs from the node id"):
        cypher.node_row("Bob", {"entity_id": "Robert"})
    with pytest.raises(DataError, match="reserved"):
        cypher.node_row("Bob", {"_ragstore_import": "x"})
    with pytest.raises(DataError, match="node id"):
        cypher.node_row("", {})
    with pytest.raises(DataError, match="edge target id"):
        cypher.edge_row("a", "b\x00", {})


def test_batches_respect_row_and_byte_budgets():
    rows = [{"id": str(i), "props": {"d": "x" * 100}} for i in range(50)]
    parts = list(by_payload(rows, max_rows=7, max_bytes=10_000))
    assert [len(p) for p in parts] == [7] * 7 + [1]
    parts = list(by_payload(rows, max_rows=1000, max_bytes=1000))
    assert sum(len(p) for p in parts) == 50 and all(len(p) <= 7 for p in parts)
    with pytest.raises(DataError, match="larger than this server accepts"):
        list(by_payload([{"d": "x" * 2000}], max_rows=10, max_bytes=1000))


def test_edge_range_avoids_falkordbs_broken_upper_bound():
    assert "a.entity_id > $after AND a.entity_id <= $upto" in cypher.edges_from_range("ws", NEO4J)
    assert ("toString(a.entity_id) > $after AND toString(a.entity_id) <= $upto"
            in cypher.edges_from_range("ws", FALKORDB))
    assert "WHERE n.entity_id > $after" in cypher.node_page("ws", NEO4J)
    assert "WHERE toString(n.entity_id) > $after" in cypher.node_page("ws", FALKORDB)


def test_positional_statements_set_the_same_properties_as_the_map_form():
    assert cypher.merge_nodes_positional("ws", ("entity_type", "description"), tag=False) == (
        "UNWIND $rows AS row MERGE (n:`ws` {entity_id: row[0]}) "
        "SET n.`entity_type` = row[1], n.`description` = row[2]")
    edge = cypher.merge_edges_positional("ws", ("weight",), tag=True)
    assert "MATCH (s:`ws` {entity_id: row[0]})" in edge and "MATCH (t:`ws` {entity_id: row[1]})" in edge
    assert "ON CREATE SET r._ragstore_import = $tag SET r.`weight` = row[2] RETURN count(r) AS c" in edge
    assert cypher.merge_nodes_positional("ws", (), tag=False).endswith("{entity_id: row[0]})")
    assert not cypher.positional_ok(("a`b",)) and cypher.positional_ok(("a b", "é"))


def test_inlined_size_counts_falkordbs_text_rendering():
    from ragstore_cli.backends.neo4j.falkordb_text import inlined_size

    assert inlined_size(1.0) == len("1.000000") and inlined_size(1e300) > 300
    assert inlined_size("it's") == 4 + 2 + 1 and inlined_size("é") == 2 + 2
    assert inlined_size(["a", 1]) == 2 + (3 + 2) + (1 + 2)
    parts = list(by_payload([[f"n{i:04d}", f"n{i:04d}", 1e10] for i in range(200)], max_rows=1000,
                            max_bytes=3000, measure=inlined_size))
    assert all(sum(inlined_size(r) + 2 for r in p) <= 3000 for p in parts) and sum(map(len, parts)) == 200


def test_falkordb_commit_copies_staged_nodes_instead_of_relabelling():
    nodes = cypher.copy_staged_nodes_batch("__ragstore_import_x", "ws")
    assert nodes.startswith("MATCH (s:`__ragstore_import_x`) WHERE s._ragstore_import IS NULL WITH s LIMIT $limit")
    assert "CREATE (n:`ws`) SET n = properties(s) SET s._ragstore_import = 'copied'" in nodes
    edges = cypher.copy_staged_edges_batch("__ragstore_import_x", "ws")
    assert "MATCH (x:`ws` {entity_id: a.entity_id})" in edges and "CREATE (x)-[e:DIRECTED]->(y)" in edges
    assert cypher.copy_nodes_range("a", "b", FALKORDB).count("toString(n.entity_id)") == 2
