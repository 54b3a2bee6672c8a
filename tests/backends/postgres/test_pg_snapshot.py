"""A source's consistent view: every PostgreSQL role read through snapshot()'s view sees one database state."""

from __future__ import annotations

import asyncpg

from ragstore_cli.records import GraphNode
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings


async def test_reads_inside_snapshot_ignore_later_commits(pg_database):
    settings = load_settings(environ=pg_database)
    async with await open_backends(settings, "postgres", "snap") as stores:
        kv = await stores.kv.writer("full_entities")
        await kv.write([("d1", {"entity_names": ["A"], "count": 1, "create_time": 1, "update_time": 1})])
        await kv.commit()
        docs = await stores.doc_status.writer()
        await docs.write([("d1", {"status": "processed", "content_summary": "s", "content_length": 1,
                                  "created_at": "2025-01-01T00:00:00+00:00", "updated_at": "2025-01-01T00:00:00+00:00",
                                  "file_path": "a.txt", "chunks_list": [], "metadata": {}})])
        await docs.commit()
        graph = await stores.graph.writer()
        await graph.write([GraphNode("A", {"entity_id": "A"})])
        await graph.commit()

        [backend] = stores.backends.values()
        async with backend.snapshot() as snap:
            # Another client commits to three roles while the export is under way.
            other = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                          user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                          database=pg_database["POSTGRES_DATABASE"])
            try:
                async with other.transaction():
                    await other.execute("INSERT INTO lightrag_full_entities (workspace, id, entity_names, count) "
                                        "VALUES ('snap', 'd2', '[\"B\"]', 1)")
                    await other.execute("UPDATE lightrag_doc_status SET status = 'failed' WHERE workspace = 'snap'")
                    await other.execute("INSERT INTO lightrag_graph_nodes (workspace, namespace, id, properties) "
                                        "VALUES ('snap', 'chunk_entity_relation', 'B', '{\"entity_id\": \"B\"}')")
            finally:
                await other.close()
            ids = [i async for batch in snap.kv().read("full_entities") for i, _ in batch]
            statuses = [r["status"] async for batch in snap.doc_status().read() for _, r in batch]
            nodes = [n.id async for batch in snap.graph().read_nodes() for n in batch]
            assert (ids, statuses, nodes) == (["d1"], ["processed"], ["A"])
            # the backend itself (not the view) reads the latest state: the snapshot is no hidden state of it
            assert [i async for batch in stores.kv.read("full_entities") for i, _ in batch] == ["d1", "d2"]
        # Outside the snapshot the new state is visible.
        ids = [i async for batch in stores.kv.read("full_entities") for i, _ in batch]
        assert ids == ["d1", "d2"]
