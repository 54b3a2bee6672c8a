"""The revision chain on real servers: empty → head → base, one revision at a time, catalog declarations."""

from __future__ import annotations


from ragstore_cli.schema import api, catalog, names
from tests.schema.conftest import pg, settings_for, snapshot, user_tables

MODEL = "BAAI/bge-m3"


async def test_empty_to_head_to_base(pg_database):
    settings = settings_for(pg_database, EMBEDDING_MODEL=MODEL, EMBEDDING_DIM="8")
    assert user_tables(await snapshot(pg_database)) == set()
    result = await api.upgrade(settings)
    assert result["from"] is None and result["to"] == "0012"
    assert result["applied"] == [f"{i:04d}" for i in range(1, 13)]
    tables = user_tables(await snapshot(pg_database))
    expected = {t.lower() for t in names.KV_TABLES} | {"ragstore_alembic_version", "lightrag_graph_nodes", "lightrag_graph_edges"}
    expected |= {t.lower() for t in names.vector_table_names(MODEL, 8).values()}
    assert tables == expected
    snap = await snapshot(pg_database)
    indexes = {row[1] for row in snap["indexes"]}
    assert "idx_lightrag_vdb_chunks_baai_bge_m3_8d_hnsw_cosine" in indexes
    assert (await api.check(settings))["behind"] is False

    down = await api.downgrade(settings, "base")
    assert down["to"] is None and down["reverted"][0] == "0012" and down["reverted"][-1] == "0001"
    assert user_tables(await snapshot(pg_database)) == {"ragstore_alembic_version"}
    again = await api.upgrade(settings)
    assert again["to"] == "0012"


async def test_each_revision_matches_its_declared_fingerprint(pg_database):
    settings = settings_for(pg_database)
    conn = await pg(pg_database)
    try:
        for revision in catalog.EXPECTED:
            await api.upgrade(settings, revision)
            found = await catalog.fingerprint(conn)
            assert catalog.differences(found, catalog.EXPECTED[revision]) == [], revision
            assert catalog.match(found)["revision"] <= revision
    finally:
        await conn.close()
    # and back down, one step at a time, each step landing on its declared catalog
    conn = await pg(pg_database)
    try:
        chain = list(catalog.EXPECTED)
        for revision in reversed(chain[:-1]):
            await api.downgrade(settings, revision)
            found = await catalog.fingerprint(conn)
            assert catalog.differences(found, catalog.EXPECTED[revision]) == [], revision
    finally:
        await conn.close()
