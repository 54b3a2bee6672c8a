"""Load: an import of 1M records through a bounded pool — the connection cap holds, memory stays flat."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import psutil

from ragstore_cli.archive import ArchiveWriter

RECORDS = 1_000_000
MAX_CONNECTIONS = 2


def _write_archive(path: Path) -> None:
    w = ArchiveWriter(path, workspace="big", backends={"kv": "PGKVStorage"}, embedding_model=None, embedding_dim=None)
    with w.kv("full_entities") as section:
        batch = []
        for i in range(RECORDS):
            batch.append((f"doc-{i:07d}", {"entity_names": [f"E{i % 997}"], "count": 1,
                                           "create_time": 1700000000, "update_time": 1700000000}))
            if len(batch) == 10_000:
                section.write(batch)
                batch = []
    w.finish()


class _Watcher(threading.Thread):
    """Samples the importer's RSS and the server's ragstore connections until stopped."""

    def __init__(self, pid: int, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.pid, self.env = pid, env
        self.max_rss = 0
        self.max_connections = 0
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        conn = await asyncpg.connect(host=self.env["POSTGRES_HOST"], port=int(self.env["POSTGRES_PORT"]),
                                     user=self.env["POSTGRES_USER"], password=self.env["POSTGRES_PASSWORD"],
                                     database=self.env["POSTGRES_DATABASE"])
        try:
            process = psutil.Process(self.pid)
            while not self.stop.is_set():
                try:
                    self.max_rss = max(self.max_rss, process.memory_info().rss)
                except psutil.NoSuchProcess:
                    break
                used = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ragstore' "
                                           "AND datname = current_database()")
                self.max_connections = max(self.max_connections, used)
                await asyncio.sleep(0.1)
        finally:
            await conn.close()


def test_import_one_million_records_bounded(pg_database, tmp_path):
    archive = tmp_path / "big.ragstore"
    _write_archive(archive)
    env = {**os.environ, **pg_database, "POSTGRES_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
           "XDG_RUNTIME_DIR": str(tmp_path)}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "ragstore_cli", "--json", "import", str(archive), "--to", "postgres",
                              "--workspace", "big"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    watcher = _Watcher(child.pid, pg_database)
    watcher.start()
    try:
        out, err = child.communicate(timeout=900)
    finally:
        watcher.stop.set()
        watcher.join(30)
    assert child.returncode == 0, err[-2000:]
    elapsed = time.monotonic() - started

    async def count() -> int:
        conn = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                     user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                     database=pg_database["POSTGRES_DATABASE"])
        try:
            return await conn.fetchval("SELECT count(*) FROM lightrag_full_entities WHERE workspace = 'big'")
        finally:
            await conn.close()

    assert asyncio.run(count()) == RECORDS
    # The data path uses the pool (capped); the import ledger and the workspace lock hold one
    # connection each outside it.
    assert 1 <= watcher.max_connections <= MAX_CONNECTIONS + 2, watcher.max_connections
    assert watcher.max_rss < 300 * 1024 * 1024, f"peak RSS {watcher.max_rss / 2**20:.0f} MB"
    print(f"1M-record import: {elapsed:.1f} s, peak RSS {watcher.max_rss / 2**20:.0f} MB, "
          f"peak ragstore connections {watcher.max_connections}")
