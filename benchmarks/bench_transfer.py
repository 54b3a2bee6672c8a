"""Export/import throughput, files → PostgreSQL and back, with same-run baselines.

    python benchmarks/bench_transfer.py --n 10000 --n 100000 [--dim 1024] [--lightrag-rows 2000]

Workload per N: N chunks (text_chunks KV + 1024-dim chunk vectors), N/10 documents (full_docs, doc
status), N/5 entities (graph nodes + entity vectors) and N/5 relations (graph edges). Every phase runs
in its own process, so its peak RSS (ru_maxrss) is its own; before them ~1 GB is written and dropped
(WAL segments to recycle, as on a server in use) and each starts after a CHECKPOINT. Baselines, measured in the same run on
the same embedded PostgreSQL + pgvector:
- raw binary COPY of the same chunk rows into an unindexed copy of the vector table (load phase: the
  import's chunk-vector section from its first batch written to its last, so archive decoding is in
  and the index build at commit is out; the baseline's rows are pre-encoded, nothing decoded);
- `COPY (SELECT …) TO STDOUT (FORMAT binary)` parsed into ids + a float32 matrix (export);
- LightRAG 1.5.7 `PGVectorStorage.upsert` + `index_done_callback` of `--lightrag-rows` rows into its own
  indexed table: the same table the import filled (LightRAG keeps every workspace in one table behind
  one HNSW index), so it inserts into an index of N rows, as it would at that scale. The end-to-end
  ratio charges LightRAG only for the vector rows the import loads (N chunks + N/5 entities) and
  ragstore for the whole import (KV, doc status and graph included); the chunks-only ratio, which
  charges ragstore's whole import against N chunk rows, is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import struct
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
from pg_timeline import ServerTimeline  # noqa: E402
MODEL = "bench-model"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------ phases
async def phase_gen(ctx: dict[str, Any]) -> dict[str, Any]:
    """The source: a synthetic archive, imported into a files workspace (LightRAG's file formats)."""
    from ragstore_cli.archive import ArchiveWriter
    from ragstore_cli.records import GraphEdge, GraphNode, VectorBatch
    from ragstore_cli.config import load_settings
    from ragstore_cli.engine import ImportPlan, import_archive

    n, dim, rng = ctx["n"], ctx["dim"], np.random.default_rng(1)
    src = Path(ctx["dir"]) / "gen.ragstore"
    w = ArchiveWriter(src, workspace="bench", embedding_model=MODEL, embedding_dim=dim)
    text = "lorem ipsum dolor sit amet " * 11
    docs = max(1, n // 10)
    with w.kv("full_docs") as s:
        for i in range(0, docs, 1000):
            s.write([(f"doc-{j:08d}", {"content": text * 5, "file_path": f"f{j}.txt"}) for j in range(i, min(docs, i + 1000))])
    with w.kv("text_chunks") as s:
        for i in range(0, n, 1000):
            s.write([(f"chunk-{j:08d}", {"tokens": 300, "content": f"{j} {text}", "chunk_order_index": j % 10,
                                         "full_doc_id": f"doc-{j // 10:08d}", "file_path": f"f{j // 10}.txt",
                                         "llm_cache_list": []}) for j in range(i, min(n, i + 1000))])
    with w.doc_status() as s:
        s.write([(f"doc-{j:08d}", {"status": "processed", "content_summary": "x", "content_length": 1500,
                                   "created_at": "2025-01-01T00:00:00+00:00", "updated_at": "2025-01-01T00:00:00+00:00",
                                   "file_path": f"f{j}.txt", "chunks_count": 10, "chunks_list": [], "metadata": {}})
                 for j in range(docs)])
    ents = max(2, n // 5)
    with w.graph_nodes() as s:
        for i in range(0, ents, 1000):
            s.write([GraphNode(f"E{j}", {"entity_id": f"E{j}", "entity_type": "thing", "description": text,
                                         "source_id": f"chunk-{j:08d}", "file_path": "f.txt", "created_at": 1})
                     for j in range(i, min(ents, i + 1000))])
    with w.graph_edges() as s:
        for i in range(0, ents, 1000):
            s.write([GraphEdge(f"E{j}", f"E{(j + 1) % ents}", {"weight": 1.0, "description": text, "keywords": "k",
                                                               "source_id": f"chunk-{j:08d}", "file_path": "f.txt"})
                     for j in range(i, min(ents, i + 1000))])
    with w.vectors("chunks") as s:
        for i in range(0, n, 1000):
            m = min(n, i + 1000) - i
            s.write(VectorBatch([f"chunk-{j:08d}" for j in range(i, i + m)],
                                rng.standard_normal((m, dim), dtype=np.float32),
                                [{"full_doc_id": f"doc-{j // 10:08d}", "content": f"{j} {text}", "file_path": "f.txt",
                                  "__created_at__": 1} for j in range(i, i + m)]))
    with w.vectors("entities") as s:
        for i in range(0, ents, 1000):
            m = min(ents, i + 1000) - i
            s.write(VectorBatch([f"ent-{j:08d}" for j in range(i, i + m)], rng.standard_normal((m, dim), dtype=np.float32),
                                [{"entity_name": f"E{j}", "content": text, "source_id": f"chunk-{j:08d}",
                                  "file_path": "f.txt", "__created_at__": 1} for j in range(i, i + m)]))
    w.vectors("relationships").close()
    w.finish()
    files = load_settings(environ={"WORKING_DIR": ctx["files_dir"], "EMBEDDING_MODEL": MODEL})
    await import_archive(files, ImportPlan(src, workspace="bench", profile="files", if_exists="replace"))
    src.unlink()
    return {}


def _timer() -> tuple[Any, dict[str, list[float]]]:
    """A progress callback and its marks: per section key [first batch done, last batch done, rows after
    the first] in epoch seconds (the span opens when the first batch is done, so its rows are not
    counted), and under "verify" the first and last progress call of the verify pass."""
    marks: dict[str, list[float]] = {}

    def progress(key: str, records: int, nbytes: int) -> None:
        now = time.time()
        if key.startswith("verify"):
            marks.setdefault("verify", [now, now, 0])[1] = now
        elif records:
            if key not in marks:
                marks[key] = [now, now, 0]
                return
            marks[key][1] = now
            marks[key][2] += records
    return progress, marks


async def phase_export(ctx: dict[str, Any], profile: str, out: str) -> dict[str, Any]:
    from ragstore_cli.config import load_settings
    from ragstore_cli.engine import Callbacks, ExportPlan, export_workspace

    settings = load_settings(environ={**ctx["pg"], "WORKING_DIR": ctx["files_dir"], "EMBEDDING_MODEL": MODEL})
    progress, marks = _timer()
    start = time.time()
    report = await export_workspace(settings, ExportPlan(Path(out), workspace="bench", profile=profile), Callbacks(progress=progress))
    seconds = time.time() - start
    first, last, rows = marks["vectors/chunks"]
    return {"seconds": seconds, "records": sum(report.counts.values()), "chunks": report.counts["vectors/chunks"],
            "archive_mb": report.bytes / 1e6, "chunk_section_rows_per_s": rows / max(last - first, 1e-9),
            "section_spans_s": {k: [round(v[0] - start, 2), round(v[1] - start, 2)] for k, v in marks.items()}}


async def phase_import_pg(ctx: dict[str, Any], archive: str) -> dict[str, Any]:
    from ragstore_cli.config import load_settings
    from ragstore_cli.engine import Callbacks, ImportPlan, import_archive

    settings = load_settings(environ={**ctx["pg"], "EMBEDDING_MODEL": MODEL})
    progress, marks = _timer()
    start = time.time()
    cpu = os.times()
    report = await import_archive(settings, ImportPlan(Path(archive), workspace="bench", profile="postgres", if_exists="replace"),
                                  Callbacks(progress=progress))
    end = time.time()
    client_cpu = sum(os.times()[:2]) - sum(cpu[:2])
    first, last, rows = marks["vectors/chunks"]
    spans = {k: [round(v[0] - start, 2), round(v[1] - start, 2)] for k, v in marks.items()}
    return {"seconds": end - start, "records": sum(report.counts.values()), "chunks": report.counts["vectors/chunks"],
            "chunk_load_rows_per_s": rows / max(last - first, 1e-9), "section_spans_s": spans,
            "start_epoch": start, "end_epoch": end, "marks": marks, "client_cpu_s": client_cpu,
            "section_records": report.counts}


async def _vector_table(conn: Any) -> str:
    return await conn.fetchval("SELECT table_name FROM information_schema.tables WHERE table_name LIKE "
                               "'lightrag_vdb_chunks_%' ORDER BY length(table_name) DESC LIMIT 1")


async def phase_baseline_copy(ctx: dict[str, Any]) -> dict[str, Any]:
    """Raw binary COPY of the same chunk rows (pre-encoded pgvector binary) into an unindexed table:
    one COPY statement per 1,000 rows (how this baseline used to be measured), then ONE COPY of all
    rows, as the import streams its section (~10 % faster): the ratio uses that one."""
    import asyncpg

    from ragstore_cli.backends.postgres.copy import encode_vectors, register_raw_vector_codecs

    n, dim = ctx["n"], ctx["dim"]
    conn = await asyncpg.connect(**_pg_kwargs(ctx["pg"]))
    await register_raw_vector_codecs(conn)
    table = await _vector_table(conn)
    cols = ["workspace", "id", "full_doc_id", "chunk_order_index", "tokens", "content", "content_vector", "file_path"]
    rng = np.random.default_rng(2)
    text = "lorem ipsum dolor sit amet " * 11
    batches = []
    for i in range(0, n, 1000):
        m = min(n, i + 1000) - i
        vec = encode_vectors(rng.standard_normal((m, dim), dtype=np.float32))
        batches.append([("b", f"chunk-{j:08d}", f"doc-{j // 10:08d}", j % 10, 300, f"{j} {text}", vec[j - i], "f.txt")
                        for j in range(i, i + m)])
        if len(batches) * 1000 * dim * 4 > 200e6:
            break  # keep the pre-built rows under ~200 MB; rates are per row
    rows = sum(len(b) for b in batches)
    rates = {}
    for how in ("per_1000", "one_copy"):
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
        await conn.execute(f"CREATE TABLE bench_copy (LIKE {table} INCLUDING DEFAULTS)")
        start = time.perf_counter()
        async with conn.transaction():
            if how == "one_copy":
                await conn.copy_records_to_table("bench_copy", records=[r for b in batches for r in b], columns=cols)
            else:
                for b in batches:
                    await conn.copy_records_to_table("bench_copy", records=b, columns=cols)
        rates[how] = rows / (time.perf_counter() - start)
    await conn.execute("DROP TABLE bench_copy")
    await conn.close()
    return {"rows": rows, "rows_per_s": rates["one_copy"], "rows_per_s_per_1000": rates["per_1000"],
            "rows_per_s_one_copy": rates["one_copy"]}


async def phase_baseline_copy_out(ctx: dict[str, Any]) -> dict[str, Any]:
    """COPY … TO STDOUT (FORMAT binary) of ids + vectors, parsed into a list and a float32 matrix."""
    import asyncpg

    dim = ctx["dim"]
    conn = await asyncpg.connect(**_pg_kwargs(ctx["pg"]))
    table = await _vector_table(conn)
    out = Path(ctx["dir"]) / "copy_out.bin"
    start = time.perf_counter()
    await conn.copy_from_query(f"SELECT id, content_vector FROM {table} WHERE workspace = 'bench'", output=str(out),
                               format="binary")
    ids, rows = [], []
    data = memoryview(out.read_bytes())
    pos = 19  # header: signature (11) + flags (4) + extension length (4)
    while True:
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if fields == -1:
            break
        (ln,) = struct.unpack_from(">i", data, pos)
        ids.append(bytes(data[pos + 4:pos + 4 + ln]).decode())
        pos += 4 + ln
        (ln,) = struct.unpack_from(">i", data, pos)
        rows.append(data[pos + 8:pos + 4 + ln])
        pos += 4 + ln
    matrix = np.frombuffer(b"".join(rows), dtype=">f4").reshape(-1, dim).astype(np.float32)
    seconds = time.perf_counter() - start
    out.unlink()
    await conn.close()
    return {"seconds": seconds, "rows": len(ids), "rows_per_s": len(ids) / seconds, "check": int(matrix.shape[0])}


async def phase_baseline_lightrag(ctx: dict[str, Any]) -> dict[str, Any]:
    """LightRAG's own path: PGVectorStorage.upsert + index_done_callback into its indexed table."""
    os.environ.update(ctx["pg"])
    from lightrag.kg.postgres_impl import PGVectorStorage
    from lightrag.kg.shared_storage import initialize_share_data
    from lightrag.utils import EmbeddingFunc

    dim, m = ctx["dim"], ctx["lightrag_rows"]
    rng = np.random.default_rng(3)

    async def embed(texts: list[str], **_: Any) -> np.ndarray:
        return rng.standard_normal((len(texts), dim), dtype=np.float32)

    initialize_share_data(workers=1)
    config = {"working_dir": ctx["dir"], "embedding_batch_num": 32, "vector_storage": "PGVectorStorage",
              "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": 0.2}}
    store = PGVectorStorage(namespace="chunks", workspace="lightrag_bench", global_config=config,
                            embedding_func=EmbeddingFunc(embedding_dim=dim, func=embed, model_name=MODEL),
                            meta_fields={"full_doc_id", "content", "file_path"})
    await store.initialize()
    import asyncpg

    conn = await asyncpg.connect(**_pg_kwargs(ctx["pg"]))
    table_rows = await conn.fetchval(f"SELECT count(*) FROM {await _vector_table(conn)}")
    await conn.close()
    text = "lorem ipsum dolor sit amet " * 11
    data = {f"lr-{j:08d}": {"content": f"{j} {text}", "full_doc_id": "d", "file_path": "f.txt", "tokens": 300,
                            "chunk_order_index": 0} for j in range(m)}
    start, cpu = time.time(), os.times()
    await store.upsert(data)
    await store.index_done_callback()
    end = time.time()
    client_cpu = sum(os.times()[:2]) - sum(cpu[:2])
    await store.finalize()
    return {"seconds": end - start, "rows": m, "rows_per_s": m / (end - start), "table_rows_before": table_rows,
            "start_epoch": start, "end_epoch": end, "client_cpu_s": client_cpu}


async def phase_warmup(ctx: dict[str, Any]) -> dict[str, Any]:
    """Write and drop ~1 GB so that every measured phase finds recycled WAL segments.

    A fresh server creates (zero-fills) each 16 MB WAL segment on first use: the first phase to write
    half a gigabyte ran at ~half the rate of the same COPY repeated later. Without this the import
    (measured first) paid that and the COPY baseline (measured later) did not."""
    import asyncpg

    conn = await asyncpg.connect(**_pg_kwargs(ctx["pg"]))
    await conn.execute("DROP TABLE IF EXISTS bench_warmup")
    await conn.execute("CREATE TABLE bench_warmup (b bytea)")
    await conn.execute("ALTER TABLE bench_warmup ALTER COLUMN b SET STORAGE EXTERNAL")
    block = np.random.default_rng(4).bytes(4096)
    rows = [(block,)] * 10_000
    start = time.perf_counter()
    for _ in range(25):  # 25 × 10,000 × 4 KB ≈ 1 GB of WAL
        await conn.copy_records_to_table("bench_warmup", records=rows)
    await conn.execute("DROP TABLE bench_warmup")
    await conn.execute("CHECKPOINT")
    await conn.close()
    return {"seconds": time.perf_counter() - start}


async def _checkpoint(env: dict[str, str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(**_pg_kwargs(env))
    await conn.execute("CHECKPOINT")
    await conn.close()


def _pg_kwargs(env: dict[str, str]) -> dict[str, Any]:
    return {"host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]), "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"], "database": env["POSTGRES_DATABASE"]}


PHASES = {
    "gen": lambda c: phase_gen(c),
    "warmup": phase_warmup,
    "export_files": lambda c: phase_export(c, "files", str(Path(c["dir"]) / "a.ragstore")),
    "import_pg": lambda c: phase_import_pg(c, str(Path(c["dir"]) / "a.ragstore")),
    "export_pg": lambda c: phase_export(c, "postgres", str(Path(c["dir"]) / "b.ragstore")),
    "baseline_copy": phase_baseline_copy,
    "baseline_copy_out": phase_baseline_copy_out,
    "baseline_lightrag": phase_baseline_lightrag,
}


# ------------------------------------------------------------------------------------------ driver
def run_phase(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    return run_in_child(__file__, name, ctx)


def import_phases(res: dict[str, Any], spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The import's timeline in order: verify pass, each section's load (its first batch done → last
    batch done), each index build and COMMIT the server ran, and the gaps between them (client work:
    checks, preflight, writer set-up, a section's first batch, the commits of its savepoints)."""
    origin, marks = res["start_epoch"], res["marks"]
    rows = []
    if "verify" in marks:
        rows.append({"phase": "verify archive (whole pass)", "start_s": 0.0, "seconds": marks["verify"][1] - origin})
    for key, (first, last, count) in marks.items():
        if key != "verify":
            rows.append({"phase": f"load {key}", "start_s": first - origin, "seconds": last - first,
                         "records": res["section_records"].get(key, count)})
    for sp in spans:
        what = f"index build {sp['method']} on {sp['table']}" if sp["kind"] == "index" else sp["kind"].upper()
        rows.append({"phase": what, "start_s": sp["start_s"], "seconds": sp["seconds"],
                     "server_cpu_s": sp["server_cpu_s"],
                     **{k: sp[k] for k in ("after_last_tuple_s", "parallel_workers") if k in sp}})
    rows.sort(key=lambda r: r["start_s"])
    out, cursor = [], 0.0
    for r in rows:
        if r["start_s"] - cursor > 0.05:
            out.append({"phase": "(between: client work, set-up, first batch)", "start_s": cursor,
                        "seconds": r["start_s"] - cursor})
        out.append(r)
        cursor = max(cursor, r["start_s"] + r["seconds"])
    total = res["end_epoch"] - origin
    if total - cursor > 0.05:
        out.append({"phase": "(after: last commits, ledger, close)", "start_s": cursor, "seconds": total - cursor})
    return [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in out]


def cpu_floor(res: dict[str, Any], vector_rows: int) -> dict[str, Any]:
    """CPU seconds on each side, and what they allow on this machine's cores: the index builds can at
    best spread their server CPU over every core; the rest of the import is taken at its wall time. The
    ratio that floor would give against LightRAG's measured rate is the most these builds allow here."""
    imp, lr = res["import_pg"], res["baseline_lightrag"]
    builds = [sp for sp in imp["server"]["spans"] if sp["kind"] == "index"]
    build_cpu = sum(sp["server_cpu_s"] for sp in builds)
    build_wall = sum(sp["seconds"] for sp in builds)
    cores = os.cpu_count() or 1
    floor = build_cpu / cores + (imp["seconds"] - build_wall)
    lightrag_s = vector_rows / lr["rows_per_s"]
    lr_cpu_per_row = (lr["server"]["server_cpu_s"] + lr["client_cpu_s"]) / lr["rows"]
    return {"cores": cores, "import_server_cpu_s": round(imp["server"]["server_cpu_s"], 1),
            "import_client_cpu_s": round(imp["client_cpu_s"], 1), "index_build_server_cpu_s": round(build_cpu, 1),
            "index_build_wall_s": round(build_wall, 1), "import_wall_outside_builds_s": round(imp["seconds"] - build_wall, 1),
            "import_floor_s": round(floor, 1), "end_to_end_ratio_at_floor": round(lightrag_s / floor, 1),
            "lightrag_cpu_ms_per_row": round(1000 * lr_cpu_per_row, 2),
            "lightrag_server_cpu_s": round(lr["server"]["server_cpu_s"], 1), "lightrag_client_cpu_s": round(lr["client_cpu_s"], 1),
            "import_cpu_ms_per_vector_row": round(1000 * (imp["server"]["server_cpu_s"] + imp["client_cpu_s"]) / vector_rows, 2)}


def print_phases(n: int, phases: list[dict[str, Any]], total: float, extra: str) -> None:
    print(f"\nimport of N={n:,} into PostgreSQL: {total:.1f} s ({extra})", flush=True)
    for r in phases:
        cpu = f"  server CPU {r['server_cpu_s']:.0f} s" if "server_cpu_s" in r else ""
        tail = f", {r['parallel_workers']} parallel workers" if "parallel_workers" in r else ""
        tail += f", {r['after_last_tuple_s']:.1f} s after its last tuple" if "after_last_tuple_s" in r else ""
        print(f"  {r['start_s']:7.1f} s  {r['seconds']:7.2f} s  {r['phase']}{cpu}{tail}", flush=True)


def bench(n: int, dim: int, lightrag_rows: int, pg_env: dict[str, str], work: Path, postmaster: int) -> dict[str, Any]:
    folder = work / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ctx = {"n": n, "dim": dim, "dir": str(folder), "files_dir": str(folder / "files"), "pg": pg_env,
           "lightrag_rows": min(n, lightrag_rows)}
    run_phase("gen", ctx)
    run_phase("warmup", ctx)

    def measured(name: str) -> dict[str, Any]:
        asyncio.run(_checkpoint(pg_env))  # no phase pays for a checkpoint of the one before
        load_before = os.getloadavg()[0]
        if name not in ("import_pg", "baseline_lightrag"):
            result = run_phase(name, ctx)
        else:  # where the server's time goes, and its CPU seconds
            with ServerTimeline(_pg_kwargs(pg_env), postmaster) as timeline:
                result = run_phase(name, ctx)
            result["server"] = {"spans": timeline.report(result["start_epoch"]),
                                "server_cpu_s": timeline.cpu_between(result["start_epoch"], result["end_epoch"])}
        result["load_avg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        return result

    res = {name: measured(name) for name in
           ("export_files", "import_pg", "export_pg", "baseline_copy", "baseline_copy_out", "baseline_lightrag")}
    vec_mb = n * dim * 4 / 1e6
    vector_rows = n + max(2, n // 5)  # chunk and entity vectors in the archive (phase_gen)
    summary = {
        "n": n, "dim": dim,
        "export_files": {"s": res["export_files"]["seconds"], "records_per_s": res["export_files"]["records"] / res["export_files"]["seconds"],
                         "vector_MB_per_s": vec_mb / res["export_files"]["seconds"], "archive_MB": res["export_files"]["archive_mb"],
                         "peak_rss_MB": res["export_files"]["rss_mb"]},
        "import_pg": {"s": res["import_pg"]["seconds"], "records_per_s": res["import_pg"]["records"] / res["import_pg"]["seconds"],
                      "chunks_end_to_end_rows_per_s": n / res["import_pg"]["seconds"],
                      "chunk_load_rows_per_s": res["import_pg"]["chunk_load_rows_per_s"],
                      "vector_MB_per_s": vec_mb / res["import_pg"]["seconds"], "peak_rss_MB": res["import_pg"]["rss_mb"],
                      "section_spans_s": res["import_pg"]["section_spans_s"],
                      "phases": import_phases(res["import_pg"], res["import_pg"]["server"]["spans"]),
                      "client_cpu_s": round(res["import_pg"]["client_cpu_s"], 1),
                      "server_cpu_s": round(res["import_pg"]["server"]["server_cpu_s"], 1)},
        "export_pg": {"s": res["export_pg"]["seconds"], "records_per_s": res["export_pg"]["records"] / res["export_pg"]["seconds"],
                      "chunk_rows_per_s_whole_export": n / res["export_pg"]["seconds"],
                      "chunk_section_rows_per_s": res["export_pg"]["chunk_section_rows_per_s"],
                      "vector_MB_per_s": vec_mb / res["export_pg"]["seconds"], "peak_rss_MB": res["export_pg"]["rss_mb"]},
        "baseline_raw_copy_rows_per_s": res["baseline_copy"]["rows_per_s"],
        "baseline_raw_copy_detail": {k: res["baseline_copy"][k] for k in ("rows_per_s_per_1000", "rows_per_s_one_copy")},
        "baseline_copy_out_parse_rows_per_s": res["baseline_copy_out"]["rows_per_s"],
        "baseline_lightrag_upsert_rows_per_s": res["baseline_lightrag"]["rows_per_s"],
        "baseline_lightrag_rows": res["baseline_lightrag"]["rows"],
        "baseline_lightrag_table_rows_before": res["baseline_lightrag"]["table_rows_before"],
    }
    summary["ratios"] = {
        "import_load_vs_raw_copy": summary["import_pg"]["chunk_load_rows_per_s"] / summary["baseline_raw_copy_rows_per_s"],
        # like for like: the seconds LightRAG's upsert would need for the vector rows this import
        # loaded (chunks + entities), at its measured rate, over the import's whole time (which also
        # loads every KV, doc-status and graph record, none of which LightRAG's side is charged for)
        "import_end_to_end_vs_lightrag_upsert": (vector_rows / summary["baseline_lightrag_upsert_rows_per_s"])
        / res["import_pg"]["seconds"],
        "import_end_to_end_chunks_only_vs_lightrag_upsert": summary["import_pg"]["chunks_end_to_end_rows_per_s"]
        / summary["baseline_lightrag_upsert_rows_per_s"],
        "export_pg_whole_vs_copy_out_parse": summary["export_pg"]["chunk_rows_per_s_whole_export"]
        / summary["baseline_copy_out_parse_rows_per_s"],
        "export_pg_chunk_section_vs_copy_out_parse": summary["export_pg"]["chunk_section_rows_per_s"]
        / summary["baseline_copy_out_parse_rows_per_s"],
    }
    summary["load_avg_per_phase"] = {k: v["load_avg"] for k, v in res.items()}
    summary["cpu"] = cpu_floor(res, vector_rows)
    imp = summary["import_pg"]
    print_phases(n, imp["phases"], imp["s"], f"client CPU {imp['client_cpu_s']:.0f} s, server CPU "
                 f"{imp['server_cpu_s']:.0f} s, load average {res['import_pg']['load_avg'][0]}–{res['import_pg']['load_avg'][1]}")
    c, r = summary["cpu"], summary["ratios"]
    print(f"  end to end {r['import_end_to_end_vs_lightrag_upsert']:.1f}x LightRAG's upsert "
          f"({summary['baseline_lightrag_upsert_rows_per_s']:.0f} rows/s, {c['lightrag_cpu_ms_per_row']:.1f} ms CPU a row; "
          f"load average {res['baseline_lightrag']['load_avg'][0]}–{res['baseline_lightrag']['load_avg'][1]}); index builds "
          f"{c['index_build_server_cpu_s']:.0f} CPU s in {c['index_build_wall_s']:.0f} s; with them spread over all "
          f"{c['cores']} cores and the rest as measured: {c['import_floor_s']:.0f} s = {c['end_to_end_ratio_at_floor']:.1f}x",
          flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="chunks (repeatable); default 10000 and 100000")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--lightrag-rows", type=int, default=2000, help="rows for LightRAG's (slow, indexed) upsert")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--ctx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = asyncio.run(PHASES[args.phase](json.loads(args.ctx)))
        print(json.dumps({**result, "rss_mb": rss_mb()}))
        return
    with scratch_server(args.work, "bench-transfer-") as (server, work):
        for n in args.n or [10000, 100000]:
            fresh_bench_database(server)
            summary = bench(n, args.dim, args.lightrag_rows, server.env(database="bench"), work, server.pid())
            print(json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
