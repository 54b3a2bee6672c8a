"""`ragstore transfer` against `export` then `import`, files → PostgreSQL, same run, same server.

    python benchmarks/bench_direct_transfer.py --n 10000 --n 100000 [--dim 1024] [--back] [--repeat 3]

Workload per N: N chunks (text_chunks KV + `--dim`-wide chunk vectors), N/10 documents (full_docs, doc
status), N/5 entities (graph nodes + entity vectors) and N/5 relations (graph edges), written into a
files workspace by ragstore's own writers (LightRAG's file formats). Measured, each phase in its own
process (its peak RSS is its own) and after a CHECKPOINT, each loading into its own fresh database of
the same embedded PostgreSQL + pgvector (so every load builds the same HNSW index over the same rows):

- the baseline: `export` files → archive, then `import` archive → PostgreSQL (the sum of both);
- `transfer` files → PostgreSQL: the same records, no archive, the target read back and compared;
- with `--back`, the other direction too: PostgreSQL → files by export + import, and by transfer.

Before the measured phases ~1 GB is written to the server and dropped, so no phase pays for fresh WAL
segments (a new server zero-fills each one on first use). Read the same-run ratios: the machine is
shared and absolute times move between runs; `--repeat R` runs R rounds (odd ones transfer first) and
reports each phase's median, with every time seen. Loads into PostgreSQL also report the seconds of
their HNSW builds (`all_index_s`): the same work on both sides and most of the run-to-run noise, so the
time outside them is compared too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from child_phase import run_in_child  # noqa: E402
from pg_server import fresh_bench_database, scratch_server  # noqa: E402
MODEL = "bench-model"


def _settings(ctx: dict[str, Any], database: str | None = None, working_dir: str | None = None) -> Any:
    from ragstore_cli.config import load_settings

    env = {**ctx["pg"], "WORKING_DIR": working_dir or ctx["files"], "EMBEDDING_MODEL": MODEL}
    if database:
        env["POSTGRES_DATABASE"] = database
    return load_settings(environ=env)


async def _write(store_writer: Any, batches: Any) -> None:
    writer = await store_writer
    for batch in batches:
        await writer.write(batch)
    await writer.commit()


async def phase_source(ctx: dict[str, Any]) -> dict[str, Any]:
    """The files workspace `bench`, written through the files backend's own writers."""
    from ragstore_cli.backends.registry import open_backends
    from ragstore_cli.records import GraphEdge, GraphNode, VectorBatch

    n, dim, rng = ctx["n"], ctx["dim"], np.random.default_rng(7)
    words = "the quick brown fox jumps over the lazy dog " * 8
    docs, ents = max(1, n // 10), max(2, n // 5)
    steps = range(0, n, 1000)
    async with await open_backends(_settings(ctx), "files", "bench") as stores:
        await _write(stores.kv.writer("full_docs"), [[(f"d{j}", {"content": words * 6, "file_path": f"{j}.md"})
                                                      for j in range(docs)]])
        await _write(stores.kv.writer("text_chunks"), (
            [(f"c{j}", {"tokens": 250, "content": f"{words}{j}", "chunk_order_index": j % 10, "full_doc_id": f"d{j // 10}",
                        "file_path": f"{j // 10}.md", "llm_cache_list": []}) for j in range(i, min(n, i + 1000))]
            for i in steps))
        await _write(stores.doc_status.writer(), [[(f"d{j}", {
            "status": "processed", "content_summary": "s", "content_length": 2000, "chunks_count": 10, "chunks_list": [],
            "created_at": "2025-02-01T00:00:00+00:00", "updated_at": "2025-02-01T00:00:00+00:00", "file_path": f"{j}.md",
            "metadata": {}}) for j in range(docs)]])
        await _write(stores.graph.writer(), [
            [GraphNode(f"N{j}", {"entity_id": f"N{j}", "entity_type": "concept", "description": words,
                                 "source_id": f"c{j}", "file_path": "x.md", "created_at": 2}) for j in range(ents)],
            [GraphEdge(f"N{j}", f"N{(j + 7) % ents}", {"weight": 2.0, "description": words, "keywords": "kw",
                                                       "source_id": f"c{j}", "file_path": "x.md"}) for j in range(ents)]])
        await _write(stores.vectors.writer("chunks", dim=dim), (
            VectorBatch([f"c{j}" for j in range(i, min(n, i + 1000))],
                        rng.standard_normal((min(n, i + 1000) - i, dim), dtype=np.float32),
                        [{"full_doc_id": f"d{j // 10}", "content": f"{words}{j}", "file_path": f"{j // 10}.md"}
                         for j in range(i, min(n, i + 1000))]) for i in steps))
        await _write(stores.vectors.writer("entities", dim=dim), [
            VectorBatch([f"e{j}" for j in range(ents)], rng.standard_normal((ents, dim), dtype=np.float32),
                        [{"entity_name": f"N{j}", "content": words, "source_id": f"c{j}", "file_path": "x.md"}
                         for j in range(ents)])])
    return {}


async def phase_warmup(ctx: dict[str, Any]) -> dict[str, Any]:
    """~1 GB written and dropped: every measured phase finds recycled WAL segments."""
    import asyncpg

    conn = await asyncpg.connect(**_pg_kwargs(ctx["pg"]))
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_wal (b bytea)")
    await conn.execute("ALTER TABLE bench_wal ALTER COLUMN b SET STORAGE EXTERNAL")
    chunk = [(np.random.default_rng(8).bytes(8192),)] * 5000
    for _ in range(25):
        await conn.copy_records_to_table("bench_wal", records=chunk)
    await conn.execute("DROP TABLE bench_wal")
    await conn.execute("CHECKPOINT")
    await conn.close()
    return {}


class IndexClock:
    """An Observer summing the seconds of the `index` phases (the HNSW builds): the time a load and a
    transfer into PostgreSQL share, and where this machine's run-to-run noise lives."""

    def __init__(self) -> None:
        self.seconds, self._started = 0.0, 0.0

    def phase(self, name: str, total: Any = None, unit: str = "records") -> None:
        if name == "index":
            self._started = time.perf_counter()

    def phase_done(self, name: str) -> None:
        if name == "index":
            self.seconds += time.perf_counter() - self._started

    def section(self, *_: Any) -> None: ...
    def progress(self, *_: Any) -> None: ...
    def point(self, *_: Any) -> None: ...


async def phase_export(ctx: dict[str, Any], profile: str, database: str | None, archive: str) -> dict[str, Any]:
    from ragstore_cli.engine import ExportPlan, export_workspace

    started = time.perf_counter()
    report = await export_workspace(_settings(ctx, database), ExportPlan(Path(archive), workspace="bench",
                                                                         profile=profile, overwrite=True))
    return {"seconds": time.perf_counter() - started, "records": sum(report.counts.values()), "bytes": report.bytes}


async def phase_import(ctx: dict[str, Any], profile: str, database: str | None, archive: str,
                       working_dir: str | None) -> dict[str, Any]:
    from ragstore_cli.engine import ImportPlan, import_archive

    clock, started = IndexClock(), time.perf_counter()
    report = await import_archive(_settings(ctx, database, working_dir),
                                  ImportPlan(Path(archive), workspace="bench", profile=profile), clock)
    return {"seconds": time.perf_counter() - started, "records": sum(report.counts.values()), "index_s": clock.seconds}


async def phase_transfer(ctx: dict[str, Any], source: str, target: str, database: str | None,
                         working_dir: str | None) -> dict[str, Any]:
    """A transfer: the source database / folder is the context's, the target's the arguments'."""
    from ragstore_cli.engine import TransferPlan, transfer_workspace

    settings = _settings(ctx, database, working_dir)
    clock, started = IndexClock(), time.perf_counter()
    report = await transfer_workspace(settings, TransferPlan(source, target, "bench"), clock)
    assert report.verified == report.counts, report.verified
    return {"seconds": time.perf_counter() - started, "records": sum(report.counts.values()), "index_s": clock.seconds}


def _pg_kwargs(env: dict[str, str]) -> dict[str, Any]:
    return {"host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]), "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"], "database": env["POSTGRES_DATABASE"]}


def _phase(name: str, ctx: dict[str, Any]) -> Any:
    folder = Path(ctx["dir"])
    archive = str(folder / "a.ragstore")
    return {
        "source": lambda: phase_source(ctx),
        "warmup": lambda: phase_warmup(ctx),
        "export_files": lambda: phase_export(ctx, "files", None, archive),
        "import_pg": lambda: phase_import(ctx, "postgres", "bench_ei", archive, None),
        "transfer_files_pg": lambda: phase_transfer(ctx, "files", "postgres", "bench_tr", None),
        # the other direction reads bench_tr (filled by the transfer above) into two fresh folders
        "export_pg": lambda: phase_export(ctx, "postgres", "bench_tr", archive),
        "import_files": lambda: phase_import(ctx, "files", None, archive, str(folder / "files_ei")),
        "transfer_pg_files": lambda: phase_transfer(ctx, "postgres", "files", "bench_tr", str(folder / "files_tr")),
    }[name]()


def run_phase(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    return run_in_child(__file__, name, ctx)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time (its own RSS and counts), with every time seen."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "all_s": [round(r["seconds"], 2) for r in runs],
            "all_index_s": [round(r.get("index_s", 0.0), 2) for r in runs]}


def _fresh_database(server: Any, name: str) -> None:
    server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server.psql(f"CREATE DATABASE {name}")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)


def bench(n: int, dim: int, back: bool, server: Any, work: Path, repeat: int = 1) -> dict[str, Any]:
    folder = work / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for db in ("bench_ei", "bench_tr"):
        _fresh_database(server, db)
    ctx = {"n": n, "dim": dim, "dir": str(folder), "files": str(folder / "files"), "pg": server.env(database="bench")}
    run_phase("source", ctx)
    run_phase("warmup", ctx)
    names = ["export_files", "import_pg", "transfer_files_pg"]
    names += ["export_pg", "import_files", "transfer_pg_files"] if back else []
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(repeat):  # odd rounds run the transfer first: neither side always goes first
        order = names if round_ % 2 == 0 else [n for n in names if n.startswith("transfer")] + \
            [n for n in names if not n.startswith("transfer")]
        for name in order:
            if round_ and name in ("import_pg", "transfer_files_pg"):
                _fresh_database(server, "bench_ei" if name == "import_pg" else "bench_tr")
            if round_ and name in ("import_files", "transfer_pg_files"):
                shutil.rmtree(folder / ("files_ei" if name == "import_files" else "files_tr"), ignore_errors=True)
            if round_ and name == "export_pg":
                continue  # reads bench_tr, which the transfer of this round fills: the first round's figure stands
            server.psql("CHECKPOINT")
            runs[name].append(run_phase(name, ctx))
    res = {name: _median(found) for name, found in runs.items()}
    out: dict[str, Any] = {"n": n, "dim": dim, "phases": {k: {"s": round(v["seconds"], 2), "records": v["records"],
                                                             "peak_rss_MB": round(v["rss_mb"]), "all_s": v["all_s"],
                                                             "all_index_s": v["all_index_s"]} for k, v in res.items()}}
    pairs = [("files_to_postgres", "export_files", "import_pg", "transfer_files_pg")]
    pairs += [("postgres_to_files", "export_pg", "import_files", "transfer_pg_files")] if back else []
    for label, export, load, direct in pairs:
        both = res[export]["seconds"] + res[load]["seconds"]
        out[label] = {"export_plus_import_s": round(both, 2), "transfer_s": round(res[direct]["seconds"], 2),
                      "transfer_records_per_s": round(res[direct]["records"] / res[direct]["seconds"]),
                      "export_plus_import_records_per_s": round(res[load]["records"] / both),
                      "speedup_transfer_vs_export_plus_import": round(both / res[direct]["seconds"], 2)}
        outside = [both - res[load].get("index_s", 0.0), res[direct]["seconds"] - res[direct].get("index_s", 0.0)]
        if res[load].get("index_s"):  # the index builds are the same work on both sides: the rest compared
            out[label].update(outside_index_builds_s={"export_plus_import": round(outside[0], 2),
                                                      "transfer": round(outside[1], 2)},
                              speedup_outside_index_builds=round(outside[0] / outside[1], 2))
    shutil.rmtree(folder, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="chunks (repeatable); default 10000 and 100000")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--back", action="store_true", help="also PostgreSQL → files")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per N, alternating which side goes first; "
                        "medians reported")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--ctx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = asyncio.run(_phase(args.phase, json.loads(args.ctx)))
        print(json.dumps({**result, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    with scratch_server(args.work, "bench-direct-") as (server, work):
        fresh_bench_database(server)
        for n in args.n or [10000, 100000]:
            print(json.dumps(bench(n, args.dim, args.back, server, work, args.repeat), indent=1), flush=True)


if __name__ == "__main__":
    main()
