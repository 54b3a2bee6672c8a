"""PostgreSQL and NanoVectorDB backends: bulk write and stream read, each with its same-run baseline.

    python -m benchmarks.bench_backends                     # 100k chunks x 1024 (shared/baselines.md workload)
    python -m benchmarks.bench_backends --n 10000 --dim 256 # quicker
    python -m benchmarks.bench_backends --n 10000 --n 100000 --rss   # + peak RSS of full reads per size

Measured, per n (rows = chunk vectors, ~300-char contents, random ids, float32 vectors):
- PG bulk write: ragstore's `postgres` vector writer (replace: DELETE + binary COPY in one transaction)
  vs raw `copy_records_to_table` of the same rows pre-encoded (the practical limit) vs LightRAG 1.5.7's
  `PGVectorStorage.upsert` + `index_done_callback` on `--lightrag-rows` rows. All into tables without an
  ANN index (bulk load first, index after; the writer drops/rebuilds it itself, timed separately).
- PG stream read: ragstore's reader (server-side cursor, raw pgvector bytes → numpy per batch) vs a
  plain cursor with pgvector's own codec, fetch(5000).
- Nano: ragstore writes vdb_chunks.json from the PG stream; then a full read by ragstore's streaming
  reader vs LightRAG's `NanoVectorDBStorage.initialize()` (each in a fresh subprocess: time, peak RSS).
Peak RSS = VmHWM of a fresh subprocess minus its RSS after imports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pg_server import fresh_bench_database, scratch_server  # noqa: E402

TEXT = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 5
MODEL = "bench-embed"


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def batches(n: int, dim: int, size: int = 1000, seed: int = 7):
    """Deterministic chunk batches (ids, float32 vectors, metadata) without holding all of them."""
    from ragstore_cli.records import VectorBatch

    rng = np.random.default_rng(seed)
    for start in range(0, n, size):
        m = min(n, start + size) - start
        ids = [f"chunk-{rng.integers(1 << 62):016x}-{start + j}" for j in range(m)]
        meta = [{"full_doc_id": f"doc-{(start + j) // 10}", "content": f"{start + j} {TEXT}", "file_path": "f.txt",
                 "tokens": 300, "chunk_order_index": (start + j) % 10, "__created_at__": 1735689600} for j in range(m)]
        yield VectorBatch(ids, rng.standard_normal((m, dim), dtype=np.float32), meta)


def settings_for(env: dict[str, str], dim: int, workdir: Path):
    from ragstore_cli.config import load_settings

    return load_settings(environ={**env, "EMBEDDING_MODEL": MODEL, "EMBEDDING_DIM": str(dim),
                                  "WORKING_DIR": str(workdir)})


async def _connect(env: dict[str, str]):
    import asyncpg

    return await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])


async def drop_ann_indexes(env: dict[str, str], table: str) -> None:
    conn = await _connect(env)
    for row in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef ~* 'hnsw|ivfflat'", table):
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    await conn.close()


async def ragstore_write(env: dict[str, str], n: int, dim: int, workdir: Path) -> dict[str, Any]:
    from ragstore_cli.backends.registry import open_backends

    settings = settings_for(env, dim, workdir)
    async with await open_backends(settings, "postgres", "bench") as stores:
        await stores.backend(next(iter(stores.profile))).ensure_schema(dim=dim)
        table = stores.backend(next(iter(stores.profile))).vector_table_for("chunks", dim)
        await drop_ann_indexes(env, table)
        writer = await stores.vectors.writer("chunks", dim=dim)
        spent = 0.0
        for batch in batches(n, dim):
            start = time.perf_counter()
            await writer.write(batch)
            spent += time.perf_counter() - start
        start = time.perf_counter()
        await writer.commit()
        spent += time.perf_counter() - start
    return {"rows": n, "seconds": spent, "rows_per_s": n / spent, "table": table}


async def raw_copy(env: dict[str, str], n: int, dim: int, table: str) -> dict[str, Any]:
    """The practical limit: copy_records_to_table of the same rows, pre-encoded, into a LIKE table."""
    from ragstore_cli.backends.postgres.copy import encode_vectors, register_raw_vector_codecs

    conn = await _connect(env)
    await register_raw_vector_codecs(conn)
    await conn.execute("DROP TABLE IF EXISTS bench_copy")
    await conn.execute(f"CREATE TABLE bench_copy (LIKE {table} INCLUDING DEFAULTS)")
    cols = ["workspace", "id", "full_doc_id", "chunk_order_index", "tokens", "content", "content_vector", "file_path"]
    prepared, rows = [], 0
    for batch in batches(n, dim):
        encoded = encode_vectors(batch.vectors)
        prepared.append([("b", i, m["full_doc_id"], m["chunk_order_index"], m["tokens"], m["content"], encoded[k],
                          m["file_path"]) for k, (i, m) in enumerate(zip(batch.ids, batch.meta))])
        rows += len(batch)
        if rows * dim * 4 > 450e6:
            break  # pre-built rows capped at ~450 MB; rates are per row
    start = time.perf_counter()
    async with conn.transaction():
        for chunk in prepared:
            await conn.copy_records_to_table("bench_copy", records=chunk, columns=cols)
    seconds = time.perf_counter() - start
    await conn.execute("DROP TABLE bench_copy")
    await conn.close()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


async def ragstore_read(env: dict[str, str], dim: int, workdir: Path) -> dict[str, Any]:
    from ragstore_cli.backends.registry import open_backends

    rows = 0
    async with await open_backends(settings_for(env, dim, workdir), "postgres", "bench") as stores:
        await stores.vectors.dimension("chunks")  # connect + catalog lookups outside the timed loop
        start = time.perf_counter()
        async for batch in stores.vectors.read("chunks", 5000):
            rows += len(batch)
        seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


async def cursor_read(env: dict[str, str], table: str) -> dict[str, Any]:
    """Incumbent read: server-side cursor with pgvector's own asyncpg codec, fetch(5000)."""
    from pgvector.asyncpg import register_vector

    conn = await _connect(env)
    await register_vector(conn)
    rows = 0
    start = time.perf_counter()
    async with conn.transaction():
        cursor = await conn.cursor(f"SELECT * FROM {table} WHERE workspace = 'bench' ORDER BY id")
        while batch := await cursor.fetch(5000):
            rows += len(batch)
            _ = [r["content_vector"] for r in batch]
    seconds = time.perf_counter() - start
    await conn.close()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


async def pg_to_nano(env: dict[str, str], dim: int, workdir: Path) -> dict[str, Any]:
    from ragstore_cli.backends.registry import open_backends
    from ragstore_cli.engine.observer import NOTHING
    from ragstore_cli.engine.pump import pump

    settings = settings_for(env, dim, workdir)
    start = time.perf_counter()
    async with await open_backends(settings, "postgres", "bench") as src, await open_backends(settings, "files", "bench") as dst:
        writer = await dst.vectors.writer("chunks", dim=dim)
        try:
            rows = await pump("vectors/chunks", src.vectors.read("chunks", 5000), writer, NOTHING)
        except BaseException:
            await writer.abort()
            raise
        await writer.commit()
    seconds = time.perf_counter() - start
    size = (workdir / "bench" / "vdb_chunks.json").stat().st_size
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "file_mb": size / 1e6}


# --------------------------------------------------------------------------- children (fresh processes)
async def child(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    base = _rss_mb("VmRSS")
    start = time.perf_counter()
    rows = 0
    if kind == "nano-ragstore":
        from ragstore_cli.backends.files.nano import FilesVectors

        async for batch in FilesVectors(Path(args.folder)).read("chunks", 5000):
            rows += len(batch)
    elif kind == "nano-lightrag":
        from lightrag.kg.nano_vector_db_impl import NanoVectorDBStorage
        from lightrag.kg.shared_storage import initialize_share_data
        from lightrag.utils import EmbeddingFunc

        initialize_share_data(workers=1)
        folder = Path(args.folder)

        async def embed(texts: list[str], **_: Any) -> np.ndarray:
            return np.zeros((len(texts), args.dim), dtype=np.float32)

        store = NanoVectorDBStorage(namespace="chunks", workspace=folder.name,
                                    global_config={"working_dir": str(folder.parent), "embedding_batch_num": 10,
                                                   "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": 0.2}},
                                    embedding_func=EmbeddingFunc(args.dim, embed, model_name=MODEL),
                                    meta_fields={"full_doc_id", "content", "file_path"})
        await store.initialize()
        rows = len(store._client)  # noqa: SLF001 - the loaded record count
    elif kind == "pg-ragstore":
        env = json.loads(args.env)
        rows = (await ragstore_read(env, args.dim, Path(args.folder)))["rows"]
    elif kind == "lightrag-pg-write":
        return await lightrag_pg_write(json.loads(args.env), args.rows, args.dim, args.table)
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds if seconds else 0,
            "peak_rss_mb": round(_rss_mb("VmHWM") - base, 1)}


async def lightrag_pg_write(env: dict[str, str], rows: int, dim: int, table: str) -> dict[str, Any]:
    """LightRAG's own path: PGVectorStorage.upsert + index_done_callback (embedding = table lookup)."""
    os.environ.update(env)
    from lightrag.kg.postgres_impl import PGVectorStorage
    from lightrag.kg.shared_storage import initialize_share_data
    from lightrag.utils import EmbeddingFunc

    initialize_share_data(workers=1)
    data, vectors = {}, {}
    for batch in batches(rows, dim, seed=11):
        for i, m, v in zip(batch.ids, batch.meta, batch.vectors):
            data[i] = {k: m[k] for k in ("full_doc_id", "content", "file_path", "tokens", "chunk_order_index")}
            vectors[m["content"]] = v

    async def embed(texts: list[str], **_: Any) -> np.ndarray:
        return np.vstack([vectors[t] for t in texts])

    # its own (empty) table: on the shared one, initialize() would first rebuild the HNSW index over every row
    store = PGVectorStorage(namespace="chunks", workspace="lightrag",
                            embedding_func=EmbeddingFunc(dim, embed, model_name=MODEL + "-lightrag"),
                            global_config={"embedding_batch_num": 200, "vector_storage": "PGVectorStorage",
                                           "vector_db_storage_cls_kwargs": {"cosine_better_than_threshold": 0.2}},
                            meta_fields={"full_doc_id", "content", "file_path", "tokens", "chunk_order_index"})
    await store.initialize()
    await drop_ann_indexes(env, store.table_name.lower())
    start = time.perf_counter()
    await store.upsert(data)
    await store.index_done_callback()
    seconds = time.perf_counter() - start
    await store.finalize()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def run_child(kind: str, **kw: Any) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_backends", "--child", kind]
    for key, value in kw.items():
        cmd += [f"--{key}", str(value)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _prepare_table(settings: Any, dim: int) -> str:
    from ragstore_cli.backends.registry import open_backends

    async with await open_backends(settings, "postgres", "bench") as stores:
        backend = stores.backends["postgres"]
        await backend.ensure_schema(dim=dim)
        return backend.vector_table_for("chunks", dim)


def bench(n: int, dim: int, lightrag_rows: int, env: dict[str, str], work: Path, rss: bool,
          skip_nano: bool = False) -> dict[str, Any]:
    workdir = work / f"rag-{n}"
    result: dict[str, Any] = {"n": n, "dim": dim}
    settings = settings_for(env, dim, workdir)
    table = asyncio.run(_prepare_table(settings, dim))
    copy = asyncio.run(raw_copy(env, n, dim, table))  # baseline first: the server is in the same state
    write = asyncio.run(ragstore_write(env, n, dim, workdir))
    write.pop("table")
    lightrag = run_child("lightrag-pg-write", env=json.dumps(env), rows=min(lightrag_rows, n), dim=dim, table=table)
    result["pg_write"] = {"ragstore": write, "raw_copy": copy, "lightrag_upsert": lightrag,
                          "ratio_vs_raw_copy": round(write["rows_per_s"] / copy["rows_per_s"], 2),
                          "ratio_vs_lightrag": round(write["rows_per_s"] / lightrag["rows_per_s"], 1)}
    read = asyncio.run(ragstore_read(env, dim, workdir))
    if skip_nano:
        result["pg_read"] = {"ragstore": read}
        cursor = asyncio.run(cursor_read(env, table))
        result["pg_read"].update(cursor_pgvector_codec=cursor, ratio=round(read["rows_per_s"] / cursor["rows_per_s"], 2))
        return result
    cursor = asyncio.run(cursor_read(env, table))
    result["pg_read"] = {"ragstore": read, "cursor_pgvector_codec": cursor,
                         "ratio": round(read["rows_per_s"] / cursor["rows_per_s"], 2)}
    if rss:
        result["pg_read"]["ragstore_child"] = run_child("pg-ragstore", env=json.dumps(env), dim=dim, folder=workdir)
    result["nano_write_from_pg"] = asyncio.run(pg_to_nano(env, dim, workdir))
    ours = run_child("nano-ragstore", folder=workdir / "bench", dim=dim)
    theirs = run_child("nano-lightrag", folder=workdir / "bench", dim=dim)
    result["nano_read"] = {"ragstore_stream": ours, "lightrag_load": theirs,
                           "speedup": round(theirs["seconds"] / ours["seconds"], 2),
                           "rss_ratio": round(ours["peak_rss_mb"] / max(theirs["peak_rss_mb"], 0.1), 3)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="rows (repeatable; default 100000)")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--lightrag-rows", type=int, default=2000, help="rows for LightRAG's (slow) upsert path")
    parser.add_argument("--rss", action="store_true", help="also measure ragstore's PG full read in a subprocess")
    parser.add_argument("--work", help="scratch folder (default: a temp dir)")
    parser.add_argument("--skip-nano", action="store_true", help="PostgreSQL only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("folder", "env", "table"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args))))
        return
    with scratch_server(args.work, "bench-backends-", keep_given=True) as (server, work):
        for n in args.n or [100000]:
            fresh_bench_database(server)
            print(json.dumps(bench(n, args.dim, args.lightrag_rows, server.env(database="bench"), work, args.rss, args.skip_nano),
                             indent=1), flush=True)


if __name__ == "__main__":
    main()
