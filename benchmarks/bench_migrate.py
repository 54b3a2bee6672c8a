"""`migrate upgrade` across the LLM-cache revisions (0001 → 0006) with 10k and 1M cache rows.

    python -m benchmarks.bench_migrate                      # 10k (median of 3) and 1M rows, embedded PG 18
    python -m benchmarks.bench_migrate --rows 10000,100000  # quicker
    python -m benchmarks.bench_migrate --no-baseline        # skip LightRAG's own start-up migration

For each size: a fresh database at revision 0001 (the mode-keyed layout), half the rows legacy ids in
six modes, half flat `mode:cache_type:hash` ids; then each revision 0002..0006 is applied and timed.
A writer probe on its own connection updates one cache row every 20 ms throughout and records the
slowest update, and a watcher samples pg_locks every 10 ms for the longest stretch a writer-blocking
lock (Share / ShareRowExclusive / Exclusive / AccessExclusive) was held on the table.
Same-run baseline: LightRAG 1.5.7's start-up migration (`PostgreSQLDB.check_tables`) on an identical
database, with the same probe (it drops `mode` before flattening, so its legacy rows stay unflattened).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from ragstore_cli.config import load_settings
from ragstore_cli.schema import api

MODES = ("default", "local", "global", "hybrid", "naive", "mix")
PROBE_ID = "default:extract:probe"


async def admin(env: dict[str, str], sql: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(**_kw(env, database))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _kw(env: dict[str, str], database: str | None = None) -> dict[str, Any]:
    return {"host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]), "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"], "database": database or env["POSTGRES_DATABASE"]}


async def prepare(env: dict[str, str], rows: int) -> None:
    """Layout 0001 with `rows` cache rows: half legacy (no ':'), half flat, spread over six modes."""
    await api.upgrade(load_settings(environ=env), "0001")
    conn = await asyncpg.connect(**_kw(env))
    try:
        await conn.execute(f"""
            INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt, return_value, update_time)
            SELECT 'default',
                   CASE WHEN g % 2 = 0 THEN md5(g::text)
                        ELSE (ARRAY{list(MODES)})[1 + g % 6] || ':query:' || md5(g::text) END,
                   (ARRAY{list(MODES)})[1 + g % 6], 'prompt ' || g, repeat('r', 200), now()
            FROM generate_series(1, {rows}) g""")
        await conn.execute("INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt, return_value) "
                           f"VALUES ('default', '{PROBE_ID}', 'default', 'probe', 'x')")
        await conn.execute("VACUUM ANALYZE lightrag_llm_cache")
    finally:
        await conn.close()


class Probe:
    """A writer that updates one row every 20 ms and remembers its slowest statement."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.worst, self.count, self.errors = env, 0.0, 0, 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        conn = await asyncpg.connect(**_kw(self.env), statement_cache_size=0)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    await conn.execute("UPDATE lightrag_llm_cache SET return_value = $1 WHERE workspace = 'default' "
                                       f"AND id = '{PROBE_ID}'", str(self.count))
                except asyncpg.PostgresError:
                    self.errors += 1
                self.worst = max(self.worst, time.perf_counter() - started)
                self.count += 1
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop.set()


class LockWatch:
    """Samples pg_locks every 10 ms: the longest stretch a writer-blocking table lock was held (granted).

    Only table-level locks count (row/tuple locks a waiting writer takes are not table locks).
    """

    BLOCKING = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.longest, self.modes = env, 0.0, set()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        conn = await asyncpg.connect(**_kw(self.env))
        since: float | None = None
        try:
            while not self._stop.is_set():
                held = await conn.fetch("SELECT mode FROM pg_locks WHERE granted AND locktype = 'relation' AND relation = "
                                        "to_regclass('lightrag_llm_cache') AND mode = ANY($1::text[])",
                                        list(self.BLOCKING))
                now = time.perf_counter()
                if held:
                    self.modes.update(r["mode"] for r in held)
                    since = now if since is None else since
                    self.longest = max(self.longest, now - since)
                else:
                    since = None
                await asyncio.sleep(0.01)
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop.set()


async def ragstore_run(env: dict[str, str]) -> dict[str, Any]:
    settings = load_settings(environ=env)
    probe, watch = Probe(env), LockWatch(env)
    task, watching = asyncio.create_task(probe.run()), asyncio.create_task(watch.run())
    await asyncio.sleep(0.2)
    steps: dict[str, float] = {}
    total = time.perf_counter()
    for revision in ("0002", "0003", "0004", "0005", "0006"):
        started = time.perf_counter()
        await api.upgrade(settings, revision)
        steps[revision] = round(time.perf_counter() - started, 3)
    elapsed = time.perf_counter() - total
    probe.stop()
    watch.stop()
    await task
    await watching
    conn = await asyncpg.connect(**_kw(env))
    try:
        legacy = await conn.fetchval("SELECT count(*) FROM lightrag_llm_cache WHERE id NOT LIKE '%:%'")
    finally:
        await conn.close()
    return {"seconds": round(elapsed, 3), "per_revision_s": steps, "max_writer_wait_s": round(probe.worst, 3),
            "longest_blocking_lock_s": round(watch.longest, 3), "blocking_lock_modes": sorted(watch.modes),
            "probe_updates": probe.count, "probe_errors": probe.errors, "legacy_rows_left": legacy}


async def lightrag_run(env: dict[str, str]) -> dict[str, Any]:
    from lightrag.kg.postgres_impl import ClientManager, PostgreSQLDB
    from lightrag.utils import logger

    logger.setLevel("ERROR")

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        db = PostgreSQLDB(ClientManager.get_config())
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    probe, watch = Probe(env), LockWatch(env)
    task, watching = asyncio.create_task(probe.run()), asyncio.create_task(watch.run())
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await db.initdb()
    await db.check_tables()
    elapsed = time.perf_counter() - started
    await db.pool.close()
    probe.stop()
    watch.stop()
    await task
    await watching
    conn = await asyncpg.connect(**_kw(env))
    try:
        legacy = await conn.fetchval("SELECT count(*) FROM lightrag_llm_cache WHERE id NOT LIKE '%:%'")
    finally:
        await conn.close()
    return {"seconds": round(elapsed, 3), "max_writer_wait_s": round(probe.worst, 3),
            "longest_blocking_lock_s": round(watch.longest, 3), "blocking_lock_modes": sorted(watch.modes),
            "probe_updates": probe.count,
            "legacy_rows_left": legacy, "note": "whole check_tables run (all tables), not only the LLM cache"}


async def measure(base_env: dict[str, str], rows: int, baseline: bool, repeat: int) -> dict[str, Any]:
    """Each tool `repeat` times on a fresh identical database, interleaved; the median run by time is kept."""
    out: dict[str, Any] = {"rows": rows}
    runs = [("ragstore", ragstore_run)] + ([("lightrag_1_5_7", lightrag_run)] if baseline else [])
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in runs}
    for label, runner in [r for _ in range(repeat) for r in runs]:
        name = f"bench_{label}_{rows}"
        await admin(base_env, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin(base_env, f"CREATE DATABASE {name}")
        env = {**base_env, "POSTGRES_DATABASE": name}
        started = time.perf_counter()
        await prepare(env, rows)
        load_s = time.perf_counter() - started
        result = await runner(env)
        result["load_s"] = round(load_s, 1)
        samples[label].append(result)
        await admin(base_env, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        print(json.dumps({"rows": rows, label: result}), flush=True)
    for label, results in samples.items():
        ordered = sorted(results, key=lambda r: r["seconds"])
        out[label] = {**ordered[len(ordered) // 2], "runs": len(ordered),
                      "max_writer_wait_all_runs_s": max(r["max_writer_wait_s"] for r in ordered),
                      "longest_blocking_lock_all_runs_s": max(r["longest_blocking_lock_s"] for r in ordered)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="10000,1000000", help="comma-separated cache sizes")
    parser.add_argument("--repeat", default="3,1", help="runs per size (comma-separated, last value repeats)")
    parser.add_argument("--no-baseline", action="store_true", help="skip LightRAG's start-up migration")
    parser.add_argument("--use-env", action="store_true", help="use POSTGRES_* from the environment instead of "
                        "starting an embedded server (needs CREATEDB)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    server = None
    if args.use_env:
        env = {k: os.environ[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD",
                                          "POSTGRES_DATABASE")}
    else:
        from ragstore_cli.embedded.postgres import EmbeddedPostgres

        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="rs-bench-")) / "pg", password="bench")
        server.start()
        env = server.env()
    try:
        repeats = [int(x) for x in args.repeat.split(",")]
        results = [asyncio.run(measure(env, n, not args.no_baseline, repeats[min(i, len(repeats) - 1)]))
                   for i, n in enumerate(sizes)]
    finally:
        if server is not None:
            server.stop()
    small, big = results[0], results[-1]
    if len(results) > 1:
        ratio = big["ragstore"]["seconds"] / max(small["ragstore"]["seconds"], 1e-9)
        print(f"\nragstore 0001->0006: {small['rows']:,} rows {small['ragstore']['seconds']} s, "
              f"{big['rows']:,} rows {big['ragstore']['seconds']} s, ratio {ratio:.1f}x for "
              f"{big['rows'] / small['rows']:.0f}x rows")
    for r in results:
        print(f"{r['rows']:>9,} rows per revision (s): {r['ragstore']['per_revision_s']}")
    for r in results:
        line = f"{r['rows']:>9,} rows: ragstore {r['ragstore']['seconds']} s (median of {r['ragstore']['runs']}), " \
               f"longest writer wait {r['ragstore']['max_writer_wait_all_runs_s']} s, longest writer-blocking " \
               f"lock {r['ragstore']['longest_blocking_lock_all_runs_s']} s, " \
               f"legacy rows left {r['ragstore']['legacy_rows_left']}"
        if "lightrag_1_5_7" in r:
            lr = r["lightrag_1_5_7"]
            line += f" | LightRAG {lr['seconds']} s, longest writer wait {lr['max_writer_wait_all_runs_s']} s, " \
                    f"longest writer-blocking lock {lr['longest_blocking_lock_all_runs_s']} s, " \
                    f"legacy rows left {lr['legacy_rows_left']}"
        print(line)


if __name__ == "__main__":
    main()
