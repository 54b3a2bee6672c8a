"""The embedded PostgreSQL + pgvector the benchmarks measure against, in a scratch folder of its own."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def scratch_server(work: Path | str | None, prefix: str, *, keep_given: bool = False) -> Iterator[tuple[Any, Path]]:
    """(server, scratch folder): a started server whose data lives in `work` (default: a new temp
    folder); stopped and the folder removed however the benchmark ends (a 100k run leaves gigabytes),
    unless `keep_given` and the caller named the folder."""
    from ragstore_cli.embedded.postgres import EmbeddedPostgres

    folder = Path(work or tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedPostgres(folder / "pg")
    server.start()
    try:
        yield server, folder
    finally:
        server.stop()
        if not (keep_given and work):
            shutil.rmtree(folder, ignore_errors=True)


def fresh_bench_database(server: Any) -> None:
    """An empty `bench` database with pgvector, whatever the previous size's run left in it."""
    server.psql("DROP DATABASE IF EXISTS bench WITH (FORCE)")
    server.psql("CREATE DATABASE bench")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector", database="bench")
