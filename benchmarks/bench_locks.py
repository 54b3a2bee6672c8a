"""Lock throughput and acquire latency: ragstore's backends beside LightRAG's own keyed locks.

    python benchmarks/bench_locks.py [--seconds 3] [--repeat 3] [--procs 1 4] [--keys 100000]

Every configuration runs P processes (forked after set-up, started together by a barrier) that
take and release ONE shared key in a loop for `--seconds`: acquisitions/s is the total over all
processes, latency is the time from asking to holding. LightRAG 1.5.7 is measured in the same run
in its multiprocess mode (`initialize_share_data(workers=P)` before the fork, then
`get_storage_keyed_lock`), exactly how gunicorn workers use it. PostgreSQL 18 and Redis are started
locally (loopback). Medians of `--repeat` runs are printed, and the ratio file / LightRAG. A last
section locks `--keys` distinct keys once each and reports what is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BACKENDS = ("lightrag", "file", "postgres", "redis")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _loop_ours(env: dict[str, str], seconds: float, barrier, out) -> None:
    from ragstore_cli.config import load_settings
    from ragstore_cli.coordination import open_coordinator

    settings = load_settings(environ=env)
    latencies: list[float] = []
    async with open_coordinator(settings, env["RAGSTORE_LOCK_BACKEND"], command="bench", lease=10) as coord:
        async with coord.lock("warm-up"):  # connect before the clock starts
            pass
        barrier.wait()
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            asked = time.perf_counter()
            async with coord.lock("bench:shared"):
                latencies.append(time.perf_counter() - asked)
        out.put((start, time.monotonic(), latencies))


async def _loop_lightrag(seconds: float, barrier, out) -> None:
    from lightrag.kg.shared_storage import get_storage_keyed_lock

    latencies: list[float] = []
    async with get_storage_keyed_lock(["warm-up"], namespace="bench"):
        pass
    barrier.wait()
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        asked = time.perf_counter()
        async with get_storage_keyed_lock(["shared"], namespace="bench"):
            latencies.append(time.perf_counter() - asked)
    out.put((start, time.monotonic(), latencies))


def _child(kind: str, env: dict[str, str], seconds: float, barrier, out) -> None:
    if kind == "lightrag":
        asyncio.run(_loop_lightrag(seconds, barrier, out))
    else:
        asyncio.run(_loop_ours(env, seconds, barrier, out))


def run_config(kind: str, procs: int, seconds: float, env: dict[str, str]) -> dict[str, float]:
    ctx = mp.get_context("fork")  # LightRAG's Manager proxies are inherited across fork (gunicorn preload)
    if kind == "lightrag":
        from lightrag.kg import shared_storage

        shared_storage.initialize_share_data(workers=max(procs, 2))  # multiprocess mode even for 1 process
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    children = [ctx.Process(target=_child, args=(kind, env, seconds, barrier, out)) for _ in range(procs)]
    for child in children:
        child.start()
    results = [out.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join(30)
    if kind == "lightrag":
        from lightrag.kg import shared_storage

        shared_storage.finalize_share_data()  # stops the Manager; the next run starts a fresh one
    latencies = [lat for _, _, lats in results for lat in lats]
    wall = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    counts = [len(lats) for _, _, lats in results]
    return {"per_s": len(latencies) / wall, "p50_ms": _percentile(latencies, 0.5) * 1e3,
            "p99_ms": _percentile(latencies, 0.99) * 1e3, "fair": min(counts) / max(max(counts), 1)}


async def _distinct_keys(env: dict[str, str], keys: int) -> dict[str, float]:
    import psutil

    from ragstore_cli.config import load_settings
    from ragstore_cli.coordination import open_coordinator

    settings = load_settings(environ=env)
    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    async with open_coordinator(settings, env["RAGSTORE_LOCK_BACKEND"], command="bench") as coord:
        for i in range(keys):
            async with coord.lock(f"distinct:{i}"):
                pass
        left = len(await coord.holders())
        gates = len(coord._gates)  # local bookkeeping left behind (0 when nothing is held)
        locks = getattr(coord.backend, "locks", None)  # the file backend's lock folder
        files = len(os.listdir(locks)) if locks is not None and locks.is_dir() else None
    return {"seconds": time.perf_counter() - started, "holders_left": left, "gates_left": gates,
            "lock_files_left": files, "rss_growth_mb": (psutil.Process().memory_info().rss - rss) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()

    from tests.servers import PlainRedis, start_postgres

    root = Path(tempfile.mkdtemp(prefix="bench-locks-"))
    pg = start_postgres(root / "pg") if "postgres" in args.backends else None
    redis = PlainRedis(root / "redis") if "redis" in args.backends else None
    if redis:
        redis.start()
    try:
        base = {"WORKING_DIR": str(root / "rag")}
        envs = {"file": {**base, "RAGSTORE_LOCK_BACKEND": "file"}, "lightrag": base}
        if pg:
            envs["postgres"] = {**base, **pg.env(), "RAGSTORE_LOCK_BACKEND": "postgres"}
        if redis:
            envs["redis"] = {**base, "REDIS_URI": redis.uri, "RAGSTORE_LOCK_BACKEND": "redis"}
        print(f"# lock benchmark: {args.seconds:g} s per run, median of {args.repeat}, {os.cpu_count()} CPUs, one shared key")
        print(f"{'backend':<10}{'procs':>6}{'acq/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'min/max share':>15}")
        medians: dict[tuple[str, int], dict[str, float]] = {}
        for procs in args.procs:
            runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in args.backends}
            for _ in range(args.repeat):  # interleave backends so drift hits them all alike
                for kind in args.backends:
                    runs[kind].append(run_config(kind, procs, args.seconds, envs[kind]))
            for kind in args.backends:
                med = {m: statistics.median(r[m] for r in runs[kind]) for m in ("per_s", "p50_ms", "p99_ms", "fair")}
                medians[(kind, procs)] = med
                print(f"{kind:<10}{procs:>6}{med['per_s']:>12,.0f}{med['p50_ms']:>10.3f}{med['p99_ms']:>10.3f}{med['fair']:>15.2f}", flush=True)
        if "lightrag" in args.backends and "file" in args.backends:
            for procs in args.procs:
                ratio = medians[("file", procs)]["per_s"] / medians[("lightrag", procs)]["per_s"]
                print(f"# file / lightrag acquisitions per second, {procs} process(es): {ratio:.2f}x")
        if args.keys:
            print(f"# {args.keys:,} distinct keys locked once each, one process")
            for kind in [k for k in ("file", "redis", "postgres") if k in args.backends]:
                result = asyncio.run(_distinct_keys(envs[kind], args.keys if kind == "file" else min(args.keys, 20_000)))
                print(f"{kind:<10} " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    finally:
        if pg:
            pg.stop()
        if redis:
            redis.stop()


if __name__ == "__main__":
    main()
