"""The HNSW build that dominates an import into PostgreSQL, measured alone: where its time goes.

    python benchmarks/bench_hnsw_build.py [--n 30000] [--workers 0,1,2] [--data random,realistic]
                                          [--order asis,clustered] [--recall]

For every combination: a fresh LightRAG chunk table (schema/vectors.py's DDL) holding N 1024-dim
vectors, then LightRAG's index on it (`index_spec`: vector_cosine_ops, m=16, ef_construction=64)
built as an import rebuilds it (`maintenance_work_mem` from ann_index.build_memory,
`min_parallel_table_scan_size = 0`) with `max_parallel_maintenance_workers` set: wall time, server CPU
seconds (every server process, parallel workers included), the cores it kept busy on average and,
with --recall, recall@10 at pgvector's default ef_search against exact neighbours. `random` is what
bench_transfer.py imports (Gaussian); `realistic` is low rank + noise, normalised (bench_codecs.py's
kind). `clustered` loads the rows grouped by their nearest of 256 sampled rows (insertion order).

Also measured: reading a 1024-dim float32 vector for an inner product from cache vs from anywhere in
N vectors (numpy gathers). A build is mostly that: perf on the building backend put 73 %
of its samples in pgvector's `vector_negative_inner_product`, which streams one 4 KB vector per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from pg_server import scratch_server  # noqa: E402
from pg_timeline import server_cpu_seconds  # noqa: E402

DIM = 1024
TABLE = "lightrag_vdb_chunks_bench_1024d"


def vectors(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    if kind == "random":
        return rng.standard_normal((n, DIM), dtype=np.float32)
    basis = rng.standard_normal((64, DIM), dtype=np.float32)
    x = rng.standard_normal((n, 64), dtype=np.float32) @ basis + 4 * rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def insertion_order(x: np.ndarray, how: str) -> np.ndarray:
    if how == "asis":
        return np.arange(len(x))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    centres = unit[np.random.default_rng(3).choice(len(x), 256, replace=False)]
    labels = np.concatenate([np.argmax(unit[i:i + 10000] @ centres.T, axis=1) for i in range(0, len(x), 10000)])
    return np.argsort(labels, kind="stable")


def vector_read_ns(n: int) -> dict[str, float]:
    """ns per stored 1024-dim row read for an inner product: rows gathered 64 at a time into a buffer
    that stays in cache (mode="clip": numpy buffers `out` in the default mode), then multiplied with a
    query; the same 4 rows over and over (cache) vs rows picked at random among n (memory)."""
    rows = np.random.default_rng(1).standard_normal((n, DIM), dtype=np.float32)
    q = np.ones(DIM, dtype=np.float32)
    picks = np.random.default_rng(2).integers(0, n, (4000, 64))
    buf = np.empty((64, DIM), dtype=np.float32)
    out = {}
    for name, idx in (("cached", picks % 4), ("anywhere", picks)):
        start = time.perf_counter()
        for block in idx:
            np.take(rows, block, axis=0, out=buf, mode="clip")
            buf @ q
        out[f"{name}_ns"] = round((time.perf_counter() - start) / idx.size * 1e9)
    return out


async def build_once(server: Any, kind: str, order: str, n: int, workers: int, recall: bool) -> dict[str, Any]:
    import asyncpg

    from ragstore_cli.backends.postgres.ann_index import MB, build_memory
    from ragstore_cli.backends.postgres.copy import encode_vectors, register_raw_vector_codecs
    from ragstore_cli.config import load_settings
    from ragstore_cli.schema import names
    from ragstore_cli.schema.vectors import COLUMNS, index_spec

    x = vectors(kind, n)
    perm = insertion_order(x, order)
    env = server.env()
    conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])
    try:
        await register_raw_vector_codecs(conn)
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(f"CREATE TABLE {TABLE} ({COLUMNS[names.VDB_CHUNKS].format(vtype=f'VECTOR({DIM})')})")
        enc = encode_vectors(x)
        text = "lorem ipsum dolor sit amet " * 11
        for s in range(0, n, 5000):
            await conn.copy_records_to_table(TABLE, columns=["workspace", "id", "content", "content_vector"], records=[
                ("bench", str(int(i)), text, enc[i]) for i in perm[s:s + 5000]])
        await conn.execute(f"VACUUM ANALYZE {TABLE}")
        await conn.execute("CHECKPOINT")
        using = index_spec(load_settings(environ={}, cwd=Path(tempfile.gettempdir())), DIM)["using"]
        async with conn.transaction():
            await conn.execute(f"SET LOCAL maintenance_work_mem = '{build_memory(n, DIM) // MB}MB'")
            await conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
            await conn.execute(f"SET LOCAL max_parallel_maintenance_workers = {workers}")
            cpu, load, start = server_cpu_seconds(server.pid()), os.getloadavg()[0], time.time()
            await conn.execute(f"CREATE INDEX {TABLE}_hnsw ON {TABLE} {using}", timeout=7 * 24 * 3600)
            wall, cpu = time.time() - start, server_cpu_seconds(server.pid()) - cpu
        out = {"data": kind, "order": order, "n": n, "workers": workers, "wall_s": round(wall, 1),
               "server_cpu_s": round(cpu, 1), "cores_busy": round(cpu / wall, 2), "cpu_ms_per_row": round(cpu / n * 1e3, 2),
               "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)]}
        if recall:
            out["recall@10"] = await _recall(conn, x)
        return out
    finally:
        await conn.close()


async def _recall(conn: Any, x: np.ndarray, queries: int = 200) -> float:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    picks = np.random.default_rng(11).choice(len(x), queries, replace=False)
    truth = np.argsort(-(unit[picks] @ unit.T), axis=1)[:, 1:11]
    hits = 0
    for q, want in zip(picks.tolist(), truth):
        rows = await conn.fetch(f"SELECT id FROM {TABLE} ORDER BY content_vector <=> "
                                f"(SELECT content_vector FROM {TABLE} WHERE id = $1) LIMIT 11", str(q))
        got = [int(r["id"]) for r in rows if int(r["id"]) != q][:10]
        hits += len(set(got) & set(want.tolist()))
    return round(hits / (10 * queries), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30000)
    parser.add_argument("--workers", default="0,1,2", help="max_parallel_maintenance_workers values, comma-separated")
    parser.add_argument("--data", default="random", help="random and/or realistic, comma-separated")
    parser.add_argument("--order", default="asis", help="asis and/or clustered, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the combinations alternate within each")
    parser.add_argument("--recall", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"vector_read": vector_read_ns(args.n)}), flush=True)
    with scratch_server(None, "bench-hnsw-") as (server, _):
        server.psql("CREATE EXTENSION IF NOT EXISTS vector")
        for _ in range(args.repeat):
            for kind in args.data.split(","):
                for order in args.order.split(","):
                    for workers in (int(w) for w in args.workers.split(",")):
                        print(json.dumps(asyncio.run(build_once(server, kind, order, args.n, workers, args.recall))),
                              flush=True)


if __name__ == "__main__":
    main()
