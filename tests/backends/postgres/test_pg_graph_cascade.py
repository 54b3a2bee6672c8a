"""Deleting a workspace's graph nodes cascades to their edges by index lookups, not by rescanning every edge.

The measure is the server's own count of index entries read from the (workspace, namespace, tgt_id)
index: a cascade planned without statistics reads all of the workspace's edges once per node (~n²/2).
"""

from __future__ import annotations

import asyncio

import asyncpg

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings

N = 2000
TGT_INDEX = "idx_lightrag_graph_edges_namespace_tgt"


def _settings(env: dict[str, str]):
    return load_settings(environ={**env, "EMBEDDING_MODEL": "m"})


async def _write_graph(env: dict[str, str], workspace: str) -> None:
    async with await open_backends(_settings(env), "postgres", workspace) as stores:
        writer = await stores.graph.writer(replace=True)
        await writer.write([GraphNode(f"E{j}", {"entity_id": f"E{j}"}) for j in range(N)])
        await writer.write([GraphEdge(f"E{j}", f"E{(j + 1) % N}", {"weight": 1.0}) for j in range(N)])
        await writer.commit()


async def _stats(env: dict[str, str], deleted_at_least: int, table: str = "lightrag_graph_edges") -> int:
    """idx_tup_read of the tgt index once `table`'s deletions have reached the statistics (bounded wait)."""
    conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])
    try:
        for _ in range(100):
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            deleted = await conn.fetchval("SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = $1", table)
            if deleted >= deleted_at_least:
                return await conn.fetchval("SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = $1",
                                           TGT_INDEX)
            await asyncio.sleep(0.1)
        raise AssertionError(f"{table} deletions never reached the statistics ({deleted} < {deleted_at_least})")
    finally:
        await conn.close()


async def test_a_graph_replace_on_never_analyzed_tables_reads_each_edge_once(pg_database):
    await _write_graph(pg_database, "w")  # bulk-loaded: no statistics yet
    before = await _stats(pg_database, 0)
    await _write_graph(pg_database, "w")  # replace: deletes N nodes, cascading to N edges
    read = await _stats(pg_database, N) - before
    assert read < 20 * N, f"{read} index entries read for {N} cascaded deletes"


async def test_dropping_a_workspace_reads_each_edge_once(pg_database):
    await _write_graph(pg_database, "w")
    before = await _stats(pg_database, 0)
    async with await open_backends(_settings(pg_database), "postgres", "w") as stores:
        done = await next(iter(stores.backends.values())).drop_workspace()
    assert sum(done.values()) >= 2 * N
    read = await _stats(pg_database, N) - before
    assert read < 20 * N, f"{read} index entries read for {N} deleted nodes"


async def test_renaming_a_workspace_reads_each_edge_once(pg_database):
    await _write_graph(pg_database, "w")
    before = await _stats(pg_database, 0)
    async with await open_backends(_settings(pg_database), "postgres", "w") as stores:
        await next(iter(stores.backends.values())).rename_workspace("v")
    async with await open_backends(_settings(pg_database), "postgres", "v") as stores:
        assert await stores.graph.count() == (N, N)
    # the old nodes' deletion is what cascades
    read = await _stats(pg_database, N, table="lightrag_graph_nodes")
    assert read - before < 20 * N, f"{read - before} index entries read for {N} moved nodes"
