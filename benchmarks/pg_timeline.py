"""What a PostgreSQL server spends a benchmark phase on, sampled from outside the measured process.

A thread polls `pg_stat_activity` + `pg_stat_progress_create_index` every `interval` s (0.2) and reads the
CPU time of the server's processes from /proc (live children, plus the postmaster's `cutime`, which
collects exited parallel workers). From the samples: every index build (table, access method,
seconds, server CPU seconds, pgvector's phases), every COMMIT, and the server CPU of the whole phase.
Nothing here depends on ragstore's internals: the samples see whatever statements its connections run.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SAMPLE_SQL = """
SELECT a.pid, a.leader_pid, a.query, p.relid::regclass::text AS tbl, p.phase, p.tuples_done, p.tuples_total
  FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
 WHERE a.application_name = $1 AND a.state = 'active' AND a.pid <> pg_backend_pid()
"""
_CLK = os.sysconf("SC_CLK_TCK")
_USING = re.compile(r"\bUSING\s+(\w+)", re.IGNORECASE)


def _stat(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def server_cpu_seconds(postmaster: int) -> float:
    """utime+stime of the postmaster's live children + its own and its reaped children's."""
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])
    try:
        with open(f"/proc/{postmaster}/task/{postmaster}/children") as fh:
            children = fh.read().split()
    except OSError:  # no CONFIG_PROC_CHILDREN: scan every process
        children = [e for e in os.listdir("/proc") if e.isdigit()]
        children = [c for c in children if _child_of(c, postmaster)]
    for child in children:
        try:
            fields = _stat(child)
        except OSError:
            continue  # exited: its time is in the postmaster's cutime from now on
        total += int(fields[11]) + int(fields[12])
    return total / _CLK


def _child_of(pid: str, parent: int) -> bool:
    try:
        return int(_stat(pid)[1]) == parent
    except OSError:
        return False


@dataclass
class Span:
    kind: str  # "index" or "commit"
    table: str
    method: str
    start: float
    end: float
    cpu_start: float
    cpu_end: float
    phases: dict[str, float] = field(default_factory=dict)  # phase name → first time seen
    last_tuple_at: float | None = None  # when tuples_done last moved (pgvector reports no tuples_total)
    tuples_done: int = 0
    workers: set[int] = field(default_factory=set)  # parallel workers seen helping it

    def as_dict(self, origin: float) -> dict[str, Any]:
        out = {"kind": self.kind, "table": self.table, "method": self.method,
               "start_s": round(self.start - origin, 2), "seconds": round(self.end - self.start, 2),
               "server_cpu_s": round(self.cpu_end - self.cpu_start, 1)}
        if self.kind == "index":
            out["parallel_workers"] = len(self.workers)
        if self.last_tuple_at is not None:
            out["tuples"] = self.tuples_done
            out["after_last_tuple_s"] = round(self.end - self.last_tuple_at, 2)
        if self.phases:
            out["phases"] = {k: round(v - self.start, 2) for k, v in self.phases.items()}
        return out


class ServerTimeline:
    """Samples a server while a phase runs elsewhere: `with ServerTimeline(...) as tl: run()`."""

    def __init__(self, connect_kwargs: dict[str, Any], postmaster: int, application_name: str = "ragstore",
                 interval: float = 0.2) -> None:
        self.kwargs, self.postmaster, self.app, self.interval = connect_kwargs, postmaster, application_name, interval
        self.spans: list[Span] = []
        self.open: dict[tuple[int, str], Span] = {}
        self.cpu: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> "ServerTimeline":
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    async def _run(self) -> None:
        import asyncpg

        try:
            conn = await asyncpg.connect(**self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported, the phase still runs
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                now = time.time()
                cpu = server_cpu_seconds(self.postmaster)
                self.cpu.append((now, cpu))
                self._observe(now, cpu, await conn.fetch(SAMPLE_SQL, self.app))
                await asyncio.sleep(self.interval)
        finally:
            now = time.time()
            self._observe(now, server_cpu_seconds(self.postmaster), [])
            await conn.close()

    def _observe(self, now: float, cpu: float, rows: list[Any]) -> None:
        seen = set()
        helpers: dict[int, set[int]] = {}
        for r in rows:
            if r["leader_pid"] is not None and r["leader_pid"] != r["pid"]:
                helpers.setdefault(r["leader_pid"], set()).add(r["pid"])
        for r in rows:
            if r["leader_pid"] is not None and r["leader_pid"] != r["pid"]:
                continue  # a parallel worker: counted on its leader's span
            query = (r["query"] or "").strip()
            head = query[:12].upper()
            if head.startswith("CREATE INDEX"):
                kind = "index"
            elif head.startswith("COMMIT") or head.startswith("RELEASE"):
                kind = "commit" if head.startswith("COMMIT") else "release savepoint"
            else:
                continue
            key = (r["pid"], query)
            seen.add(key)
            span = self.open.get(key)
            if span is None:
                using = _USING.search(query)
                method = (using.group(1).lower() if using else "btree") if kind == "index" else ""
                span = self.open[key] = Span(kind, r["tbl"] or "", method, now, now, cpu, cpu)
                self.spans.append(span)
            span.end, span.cpu_end = now, cpu
            span.table = span.table or (r["tbl"] or "")
            span.workers |= helpers.get(r["pid"], set())
            if r["phase"] and r["phase"] not in span.phases:
                span.phases[r["phase"]] = now
            if r["tuples_done"] and r["tuples_done"] != span.tuples_done:
                span.tuples_done, span.last_tuple_at = r["tuples_done"], now
        for key in [k for k in self.open if k not in seen]:
            span = self.open.pop(key)
            span.end, span.cpu_end = now, cpu  # it ended between the last sample and this one

    def cpu_between(self, start: float, end: float) -> float:
        """Server CPU seconds used between two wall-clock times (nearest samples)."""
        inside = [c for t, c in self.cpu if start <= t <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else 0.0

    def report(self, origin: float) -> list[dict[str, Any]]:
        return [s.as_dict(origin) for s in self.spans if s.end - s.start > 0 or s.kind == "index"]
