"""Graph import and export on a real Neo4j, against LightRAG 1.5.7's own Neo4JStorage, same server, same run.

- import: `ragstore import` of an archive holding N nodes + 2N edges (LightRAG-shaped) into a Neo4j
  workspace, end to end (archive verify, preflight, staged UNWIND batches, commit), against LightRAG's
  Neo4JStorage.upsert_node / upsert_edge loop writing the same graph into another workspace;
- export: ragstore's keyset stream (read_nodes + read_edges, what `ragstore export` reads) against a
  plain full `MATCH` scan of the same workspace through the same driver;
- memory: the process's RSS growth while streaming the export, at N and at 4N nodes (flat = it does
  not grow with the graph).

Both paths are first run once on a small graph, so neither pays for the fresh server's warm-up.

    python benchmarks/bench_neo4j.py                  # 10k nodes + 20k edges, RSS also at 40k + 80k
    python benchmarks/bench_neo4j.py --nodes 2000     # quicker

Without NEO4J_URI in the environment it starts ragstore's embedded Neo4j Community (Java + Maven).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_graph import graph  # noqa: E402
from ragstore_cli.backends.neo4j import create as create_neo4j  # noqa: E402
from ragstore_cli.backends.neo4j import cypher  # noqa: E402
from ragstore_cli.backends.registry import open_backends  # noqa: E402
from ragstore_cli.config import load_settings  # noqa: E402
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive  # noqa: E402


class PeakRSS:
    """Peak resident memory of this process above its level at start, sampled every 10 ms."""

    def __init__(self) -> None:
        self.process, self.base, self.peak = psutil.Process(), 0, 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


async def make_archive(folder: Path, n_nodes: int, n_edges: int) -> Path:
    """A files workspace holding only this graph, exported to a ragstore archive."""
    nodes, edges = graph(n_nodes, n_edges)
    settings = load_settings(environ={"WORKING_DIR": str(folder / "src")})
    async with await open_backends(settings, "files", "g") as stores:
        writer = await stores.graph.writer()
        for i in range(0, len(nodes), 1000):
            await writer.write(nodes[i:i + 1000])
        for i in range(0, len(edges), 1000):
            await writer.write(edges[i:i + 1000])
        await writer.commit()
    archive = folder / f"graph-{n_nodes}.ragstore"
    await export_workspace(settings, ExportPlan(archive, workspace="g", profile="files"))
    return archive


async def ragstore_import(env: dict[str, str], folder: Path, archive: Path, workspace: str) -> float:
    settings = load_settings(environ={**env, "WORKING_DIR": str(folder / "dst")})
    started = time.perf_counter()
    await import_archive(settings, ImportPlan(archive, workspace=workspace, profile="neo4j,files", if_exists="replace"))
    return time.perf_counter() - started


async def lightrag_upserts(env: dict[str, str], folder: Path, workspace: str, n_nodes: int, n_edges: int) -> float:
    from tests.interop.lightrag_builder import fresh_shared_state, global_config, make_embedding_func, storage_class

    os.environ.update(env)  # LightRAG reads NEO4J_* from the process environment
    fresh_shared_state()
    store = storage_class("Neo4JStorage")(namespace="chunk_entity_relation", workspace=workspace,
                                          global_config=global_config(folder), embedding_func=make_embedding_func())
    await store.initialize()
    nodes, edges = graph(n_nodes, n_edges)
    try:
        started = time.perf_counter()
        for n in nodes:
            await store.upsert_node(n.id, n.properties)
        for e in edges:
            await store.upsert_edge(e.source, e.target, e.properties)
        return time.perf_counter() - started
    finally:
        await store.finalize()


async def export_both(env: dict[str, str], workspace: str) -> dict[str, float]:
    """ragstore's stream and a plain MATCH scan, alternated twice each (the best of two)."""
    backend = create_neo4j(load_settings(environ=env), workspace)
    await backend.open()
    out: dict[str, float] = {"ragstore_s": float("inf"), "plain_s": float("inf"), "rss_mb": 0.0, "peak_mb": 0.0}
    label = cypher.quote_label(backend.label)
    try:
        for _ in range(2):
            with PeakRSS() as rss:
                started = time.perf_counter()
                items = 0
                async for page in backend.graph().read_nodes(1000):
                    items += len(page)
                async for page in backend.graph().read_edges(1000):
                    items += len(page)
                out["ragstore_s"] = min(out["ragstore_s"], time.perf_counter() - started)
            out["rss_mb"] = max(out["rss_mb"], rss.growth_mb)
            out["peak_mb"] = max(out["peak_mb"], rss.peak_mb)
            out["items"] = items
            started = time.perf_counter()
            plain = 0
            async with backend.bolt.driver.session(database=backend.bolt.database) as session:
                for query in (f"MATCH (n:{label}) RETURN n.entity_id AS id, properties(n) AS p",
                              f"MATCH (a:{label})-[r:DIRECTED]->(b:{label}) "
                              "RETURN a.entity_id AS s, b.entity_id AS t, properties(r) AS p"):
                    result = await session.run(query)
                    async for _record in result:
                        plain += 1
            out["plain_s"] = min(out["plain_s"], time.perf_counter() - started)
            assert plain == items, (plain, items)
    finally:
        await backend.close()
    return out


async def drop(env: dict[str, str], workspace: str) -> None:
    backend = create_neo4j(load_settings(environ=env), workspace)
    await backend.open()
    try:
        await backend.drop_workspace()
    finally:
        await backend.close()


async def server_version(env: dict[str, str]) -> str:
    backend = create_neo4j(load_settings(environ=env), "bench")
    await backend.open()
    try:
        return backend.dialect.agent
    finally:
        await backend.close()


async def run(env: dict[str, str], folder: Path, n_nodes: int, rss_factor: int) -> None:
    n_edges = 2 * n_nodes
    items = n_nodes + n_edges
    print(f"server: {await server_version(env)}; load average at start {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    # Warm the server's JIT and query caches on both paths first: the first statements a fresh Neo4j runs
    # take ~2.5x as long (measured), and whichever side ran first would pay for it.
    warm, warm_lr = "bench_warm_" + uuid.uuid4().hex[:6], "bench_warm_lr_" + uuid.uuid4().hex[:6]
    await ragstore_import(env, folder / "warm", await make_archive(folder / "warm", 1000, 2000), warm)
    await lightrag_upserts(env, folder, warm_lr, 300, 600)
    for workspace in (warm, warm_lr):
        await drop(env, workspace)
    archive = await make_archive(folder, n_nodes, n_edges)
    ours, theirs = "bench_rs_" + uuid.uuid4().hex[:6], "bench_lr_" + uuid.uuid4().hex[:6]
    try:
        imported = await ragstore_import(env, folder, archive, ours)
        upserted = await lightrag_upserts(env, folder, theirs, n_nodes, n_edges)
        print(f"import {n_nodes} nodes + {n_edges} edges")
        print(f"  ragstore import (archive -> Neo4j, end to end): {imported:7.1f} s  {items / imported:8.0f} items/s")
        print(f"  LightRAG Neo4JStorage upsert_node/upsert_edge  : {upserted:7.1f} s  {items / upserted:8.0f} items/s")
        print(f"  ratio: {upserted / imported:.1f}x")
        await drop(env, theirs)
        small = await export_both(env, ours)
        print(f"export {small['items']} items")
        print(f"  ragstore keyset stream: {small['ragstore_s']:6.2f} s  {small['items'] / small['ragstore_s']:8.0f} items/s")
        print(f"  plain MATCH scan      : {small['plain_s']:6.2f} s  {small['items'] / small['plain_s']:8.0f} items/s")
        print(f"  ratio (scan time / ragstore time): {small['plain_s'] / small['ragstore_s']:.2f}x")
        await drop(env, ours)
        if rss_factor > 1:
            big_archive = await make_archive(folder / "big", n_nodes * rss_factor, n_edges * rss_factor)
            await ragstore_import(env, folder / "big", big_archive, ours)
            big = await export_both(env, ours)
            print(f"RSS growth while streaming the export: {small['rss_mb']:.1f} MB at {small['items']} items "
                  f"(peak {small['peak_mb']:.0f} MB), {big['rss_mb']:.1f} MB at {big['items']} items "
                  f"(peak {big['peak_mb']:.0f} MB; {rss_factor}x the graph); "
                  f"at {big['items']} items ragstore {big['ragstore_s']:.2f} s vs scan {big['plain_s']:.2f} s "
                  f"({big['plain_s'] / big['ragstore_s']:.2f}x)")
    finally:
        for workspace in (ours, theirs):
            await drop(env, workspace)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes (edges: twice as many)")
    parser.add_argument("--rss-factor", type=int, default=4, help="the larger graph for the RSS check (1 skips it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragstore-bench-neo4j-") as tmp:
        folder = Path(tmp)
        stop = None
        if os.environ.get("NEO4J_URI"):
            env = {k: v for k, v in os.environ.items() if k.startswith("NEO4J_")}
        else:
            from ragstore_cli.embedded.neo4j import EmbeddedNeo4j

            server = EmbeddedNeo4j(folder / "neo4j", password=uuid.uuid4().hex, heap="1g", page_cache="512m")
            started = time.perf_counter()
            server.start()
            print(f"embedded Neo4j started in {time.perf_counter() - started:.1f} s")
            env, stop = server.env(), server.stop
        try:
            asyncio.run(run(env, folder, args.nodes, args.rss_factor))
        finally:
            if stop:
                stop()


if __name__ == "__main__":
    main()
