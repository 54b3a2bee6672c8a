"""When a replace drops and rebuilds a vector table's ANN index, and how the rebuild runs (real servers)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from ragstore_cli.records import VectorBatch
from ragstore_cli.backends.postgres.ann_index import MB, IndexRebuild, build_memory, worth_rebuilding
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from tests.servers import TEST_PASSWORD

DIM = 16
TABLE = f"lightrag_vdb_chunks_m_{DIM}d"


def test_build_memory_is_sized_to_the_graph_within_bounds():
    assert build_memory(0, 1024) == 64 * MB
    assert 64 * MB < build_memory(10_000, 1024) < 200 * MB
    assert build_memory(100_000, 1024) > build_memory(10_000, 1024)
    assert build_memory(10_000_000, 1024) == 2048 * MB


@pytest.mark.parametrize(("expected", "old", "others", "rebuild"), [
    (100, 0, 0, True), (100, 100, 0, True), (100, 60, 41, False), (5, 0, 50, False), (None, 10, 0, True),
    (None, 0, 1, False), (0, 0, 0, True),
])
def test_worth_rebuilding(expected, old, others, rebuild):
    assert worth_rebuilding(expected, old, others) is rebuild


def _batch(prefix: str, n: int, seed: int = 0) -> VectorBatch:
    ids = [f"{prefix}-{i}" for i in range(n)]
    meta = [{"full_doc_id": "d", "content": i, "file_path": "f", "tokens": 1, "chunk_order_index": 0} for i in ids]
    return VectorBatch(ids, np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32), meta)


async def _write(env: dict[str, str], workspace: str, batch: VectorBatch, expected: int | None) -> IndexRebuild:
    settings = load_settings(environ={**env, "EMBEDDING_MODEL": "m", "EMBEDDING_DIM": str(DIM)})
    async with await open_backends(settings, "postgres", workspace) as stores:
        writer = await stores.vectors.writer("chunks", dim=DIM, expected_rows=expected)
        await writer.write(batch)
        rebuild = writer.rebuild
        await writer.commit()
        return rebuild


async def _ann_oid(env: dict[str, str]) -> int:
    conn = await _connect(env)
    try:
        return await conn.fetchval("SELECT c.oid FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                                   "JOIN pg_index x ON x.indexrelid = c.oid WHERE am.amname = 'hnsw' "
                                   "AND x.indrelid = $1::regclass AND x.indisvalid", TABLE)
    finally:
        await conn.close()


async def _connect(env: dict[str, str]) -> asyncpg.Connection:
    return await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])


async def test_a_small_replace_in_a_shared_table_writes_into_the_live_index(pg_database):
    await _write(pg_database, "big", _batch("big", 300), expected=300)
    index = await _ann_oid(pg_database)
    assert index is not None

    small = await _write(pg_database, "small", _batch("small", 20, seed=1), expected=20)
    assert small.defs == [] and "300 rows of other workspaces" in small.kept_reason
    assert await _ann_oid(pg_database) == index  # the same index, never dropped

    again = await _write(pg_database, "small", _batch("again", 30, seed=2), expected=30)  # replace of 20 rows
    assert again.defs == [] and await _ann_oid(pg_database) == index
    conn = await _connect(pg_database)
    try:
        rows = dict(await conn.fetch(f"SELECT workspace, count(*) FROM {TABLE} GROUP BY workspace"))
        # the live index answers for the new rows: the nearest neighbour of a stored vector is itself
        await conn.execute("SET enable_seqscan = off")
        probe = _batch("again", 30, seed=2).vectors[7]
        nearest = await conn.fetchval(f"SELECT id FROM {TABLE} ORDER BY content_vector <=> $1::text::vector LIMIT 1",
                                      str(probe.tolist()))
    finally:
        await conn.close()
    assert rows == {"big": 300, "small": 30}
    assert nearest == "again-7"


async def test_a_load_that_outweighs_the_rest_rebuilds_the_index(pg_database):
    await _write(pg_database, "other", _batch("o", 50), expected=50)
    index = await _ann_oid(pg_database)
    rebuilt = await _write(pg_database, "mine", _batch("m", 60, seed=3), expected=60)
    assert len(rebuilt.defs) == 3 and not rebuilt.kept_reason
    after = await _ann_oid(pg_database)
    assert after is not None and after != index


async def test_the_rebuild_uses_parallel_workers_on_a_small_heap(pg_database):
    """Vectors are TOASTed, so PostgreSQL's heap-size rule alone would give this table no worker."""
    await _write(pg_database, "w", _batch("w", 2000), expected=2000)
    conn = await _connect(pg_database)
    notices: list[str] = []
    conn.add_log_listener(lambda _c, message: notices.append(message.message))
    try:
        async with conn.transaction():
            rebuild = IndexRebuild(TABLE, "w", DIM, expected=2000)
            await rebuild.drop(conn)
            assert rebuild.defs
            await conn.execute("SET LOCAL client_min_messages = debug1")
            await rebuild.restore(conn)
            await conn.execute("SET LOCAL client_min_messages = notice")
            size = await conn.fetchval("SELECT pg_relation_size($1::regclass)", TABLE)
    finally:
        await conn.close()
    assert size < 8 * MB  # below min_parallel_table_scan_size's default
    workers = [int(m.split()[2]) for m in notices if m.startswith("worker processed")]
    assert workers and sum(workers) > 0, notices


def _small_shm_postgres(folder: Path):
    """An embedded PostgreSQL whose /dev/shm is a 64 MB tmpfs (Docker's default), in its own mount namespace."""
    from ragstore_cli.embedded.postgres import EmbeddedPostgres

    class SmallShm(EmbeddedPostgres):
        def _run(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
            if exe != "pg_ctl" or "start" not in args:
                return super()._run(exe, *args, timeout=timeout)
            cmd = shlex.join([str(Path(self._bin()) / exe), *args])
            if self._run_as:
                cmd = f"exec setpriv --reuid={self._run_as} --regid={self._run_as} --init-groups {cmd}"
            return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64m tmpfs /dev/shm && {cmd}"],
                                  capture_output=True, text=True, timeout=timeout, check=True)

        def _bin(self) -> Path:
            from ragstore_cli.embedded.postgres import _bin_dir

            return self.bin_dir or _bin_dir()

    return SmallShm(folder, password=TEST_PASSWORD)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare for a private /dev/shm")
async def test_a_parallel_build_that_runs_out_of_shared_memory_builds_serially(tmp_path):
    server = _small_shm_postgres(tmp_path / "pg")
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot start a server in a private mount namespace: {exc}")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector")
        env = server.env()
        n = 3000  # build_memory(3000, 16) > 64 MB: the parallel build's shared segment cannot fit
        assert build_memory(n, DIM) > 64 * MB
        await _write(env, "w", _batch("w", n), expected=n)
        conn = await _connect(env)
        try:
            definition = await conn.fetchval("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = "
                                             "$1::regclass AND indexrelid::regclass::text LIKE '%hnsw%'", TABLE)
            async with conn.transaction():  # the server really refuses the parallel build at that size
                await conn.execute(f"SET LOCAL maintenance_work_mem = '{build_memory(n, DIM) // MB}MB'")
                await conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
                await conn.execute(f"DROP INDEX {definition.split()[2]}")
                with pytest.raises(asyncpg.PostgresError, match="shared memory"):
                    await conn.execute(definition)
            rows = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
            valid = await conn.fetchval("SELECT bool_and(indisvalid) AND count(*) = 3 FROM pg_index "
                                        "WHERE indrelid = $1::regclass AND NOT indisprimary", TABLE)
        finally:
            await conn.close()
        assert rows == n and valid  # ragstore's own rebuild fell back to a serial build
    finally:
        server.stop()
