"""Bulk load first, index after: when a replace drops a vector table's ANN index, and how it is rebuilt.

LightRAG keeps every workspace of a vector namespace in ONE table behind ONE ANN index. Dropping that
index makes the load a plain COPY, but the rebuild at commit indexes every row of the table: the
other workspaces' rows, the new rows, and the workspace's old rows too (PostgreSQL indexes rows that
the building transaction itself deleted). It also locks the table against every reader until the
commit. So the index is dropped only when the rows being loaded are at least as many as the rows that
would be rebuilt for nothing; otherwise the rows go into the live index.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

INDEX_BUILD_TIMEOUT = 7 * 24 * 3600.0
ANN_METHODS = frozenset({"hnsw", "ivfflat", "vchordrq"})
MB = 1024 * 1024
MIN_BUILD_MEM, MAX_BUILD_MEM = 64 * MB, 2048 * MB
GRAPH_BYTES_PER_ROW = 2048  # pgvector HNSW element + neighbour lists (m=16), rounded up


def build_memory(rows: int, dim: int) -> int:
    """maintenance_work_mem that holds an in-memory HNSW graph of `rows` vectors, within [64 MB, 2 GB].

    A parallel pgvector build puts all of it in one shared-memory segment, so it is sized to the graph
    rather than set to the cap: a small /dev/shm (64 MB in a default Docker container) then fails only
    builds that could not be done in memory anyway, and those fall back to a serial build."""
    need = int(rows * (dim * 4 + 8 + GRAPH_BYTES_PER_ROW) * 1.5) + MIN_BUILD_MEM
    return max(MIN_BUILD_MEM, min(MAX_BUILD_MEM, need))


def worth_rebuilding(expected: int | None, old: int, others: int) -> bool:
    """Drop and rebuild only when the load is at least the rest of what the rebuild would index.

    Without a count, only when no other workspace shares the table."""
    if expected is None:
        return others == 0
    return others + old <= expected


class _NoOne:
    """The observer of a rebuild no one watches (engine/observer.py's methods, doing nothing)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


class IndexRebuild:
    """During a replace, drop the ANN index (and the plain btrees) and rebuild them once at commit.

    With the ANN index go the plain btree indexes that enforce nothing: LightRAG's vector tables
    carry two, `(id)` and a copy of the primary key `(workspace, id)`; inserting into them row by row
    cost the server ~20 % more CPU per 1024-dim row during the COPY, and a sorted rebuild is cheap
    next to the ANN build. Unique and constraint indexes stay: duplicates fail where they always did."""

    def __init__(self, table: str, workspace: str, dim: int, expected: int | None = None, observer: Any = None) -> None:
        self.table, self.workspace, self.dim, self.expected = table, workspace, dim, expected
        self.observer = observer if observer is not None else _NoOne()  # told of the rebuild: the `index` phase
        self.defs: list[tuple[str, str]] = []
        self.old = 0
        self.kept_reason = ""

    async def drop(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            "SELECT c.relname AS indexname, pg_get_indexdef(c.oid) AS indexdef, am.amname, "
            "x.indisunique OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) AS enforces "
            "FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_am am ON am.oid = c.relam "
            "WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace ORDER BY c.relname",
            self.table)
        ann = [r for r in rows if r["amname"] in ANN_METHODS]
        if not ann:
            return
        counts = await conn.fetchrow(f"SELECT count(*) FILTER (WHERE workspace = $1) AS old, "
                                     f"count(*) FILTER (WHERE workspace <> $1) AS others FROM {self.table}",
                                     self.workspace)
        if not worth_rebuilding(self.expected, counts["old"], counts["others"]):
            self.kept_reason = (f"{counts['others']} rows of other workspaces and {counts['old']} old rows "
                                f"outweigh {self.expected if self.expected is not None else 'an unknown number of'} new")
            return
        self.old = counts["old"]
        plain = [r for r in rows if r["amname"] == "btree" and not r["enforces"]]
        for row in ann + plain:
            self.defs.append((row["indexname"], row["indexdef"]))
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')

    async def restore(self, conn: asyncpg.Connection) -> None:
        if not self.defs:
            return
        # the build indexes the visible rows and the rows this transaction deleted
        rows = await conn.fetchval(f"SELECT count(*) FROM {self.table}") + self.old
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{build_memory(rows, self.dim) // MB}MB'")
        # Vectors live in TOAST, so the heap PostgreSQL sizes parallel builds by looks tiny (~400 B a
        # row) and smaller tables never get a worker; the server's max_parallel_maintenance_workers
        # still caps how many a build takes.
        await conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
        self.observer.phase("index", len(self.defs), "indexes")  # the operator sees the minutes it takes
        for name, definition in self.defs:
            self.observer.section(f"index {name}", rows)
            await build(conn, definition)
            self.observer.progress(f"index {name}", 1, 0)
        self.observer.phase_done("index")


async def build(conn: asyncpg.Connection, definition: str) -> None:
    """Run one CREATE INDEX; if a parallel build runs out of shared memory, build it serially.

    An ANN build takes what it takes (minutes at millions of rows): it is not bounded by
    RAGSTORE_COMMAND_TIMEOUT, which exists to catch stalled networks on data statements."""
    try:
        async with conn.transaction():  # a savepoint: a failed build leaves the import's transaction usable
            await conn.execute(definition, timeout=INDEX_BUILD_TIMEOUT)
        return
    except asyncpg.PostgresError as exc:
        if not _out_of_shared_memory(exc):
            raise
        log.warning("parallel index build ran out of shared memory (%s); building serially",
                    str(exc).splitlines()[0][:160])
    await conn.execute("SET LOCAL max_parallel_maintenance_workers = 0")
    await conn.execute(definition, timeout=INDEX_BUILD_TIMEOUT)


def _out_of_shared_memory(exc: asyncpg.PostgresError) -> bool:
    """Class 53 (insufficient resources) about a dynamic shared memory segment: /dev/shm too small."""
    state = getattr(exc, "sqlstate", "") or ""
    return state.startswith("53") and "shared memory" in str(exc)
