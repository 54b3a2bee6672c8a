"""Parent side of the fault tests: run ragstore children, choose seeded kill points, compare data.

- `Runner` starts ragstore commands as child processes through the fork server (zygote.py) or as
  fresh interpreters (`exec=True`), optionally with fault hooks (faultwrap.py), and waits with a
  bound; a child that outlives its bound is SIGKILLed and reported as timed out.
- `kill_points` spreads k seeded points over the calls a clean run made (one per stratum).
- digests: byte-level for sources (every file, every table row), record-level for targets
  (through ragstore's own readers), and `compare` counts lost / extra / changed records.
- `TOTALS` collects one entry per fault tried; conftest writes them to a JSON file at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEED = int(os.environ.get("RAGSTORE_FAULT_SEED", "20261127"))
MODES = ("before", "during", "after")


# --------------------------------------------------------------------------- faults and results
@dataclass(frozen=True)
class Fault:
    targets: tuple[str, ...]
    at: int | None = None  # None: count only
    mode: str = "before"
    action: str = "kill"

    def env(self, trace: Path, pause_dir: Path | None = None) -> dict[str, str]:
        env = {"FAULTWRAP_TARGETS": ",".join(self.targets), "FAULTWRAP_TRACE": str(trace),
               "FAULTWRAP_MODE": self.mode, "FAULTWRAP_ACTION": self.action}
        if self.at is not None:
            env["FAULTWRAP_AT"] = str(self.at)
        if pause_dir is not None:
            env["FAULTWRAP_PAUSE_DIR"] = str(pause_dir)
        return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    trace: dict[str, Any]
    seconds: float
    timed_out: bool = False

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL

    def describe(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f}s; trace {self.trace}; stderr: {self.stderr[-600:]}"


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without any configuration ragstore or LightRAG would read."""
    drop = ("POSTGRES_", "NEO4J_", "REDIS_", "WORKING_DIR", "WORKSPACE", "EMBEDDING_", "LIGHTRAG_", "FAULTWRAP_",
            "RAGSTORE_FAULT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "OPENBLAS_NUM_THREADS": "1",
                "NO_COLOR": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


class Child:
    def __init__(self, runner: "Runner", pid: int, out: Path, err: Path, trace: Path, started: float,
                 popen: subprocess.Popen | None = None) -> None:
        self.runner, self.pid, self.out, self.err, self.trace = runner, pid, out, err, trace
        self.started, self.popen = started, popen

    def wait(self, timeout: float) -> Result:
        timed_out = False
        if self.popen is not None:
            try:
                code = self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.popen.kill()
                code = self.popen.wait(30)
        else:
            reply = self.runner._read(timeout)
            if reply is None:
                timed_out = True
                os.kill(self.pid, signal.SIGKILL)  # our own child, by its pid
                reply = self.runner._read(30)
            assert reply is not None and reply["pid"] == self.pid, reply
            code = reply["code"]
        trace = json.loads(self.trace.read_text()) if self.trace.exists() else {}
        return Result(code, self.out.read_text(errors="replace"), self.err.read_text(errors="replace"), trace,
                      time.monotonic() - self.started, timed_out)


class Runner:
    """Runs `ragstore ARGS` in child processes; one child at a time."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.serial = 0
        self.proc = subprocess.Popen([sys.executable, str(HERE / "zygote.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=base_env({}), cwd=str(REPO), text=True, bufsize=1)

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended (exit {self.proc.poll()})")
        return json.loads(line)

    def start(self, args: list[str], env: dict[str, str], *, fault: Fault | None = None, cwd: Path | None = None,
              pause_dir: Path | None = None, fsize: int | None = None, exec_: bool = False,
              extra_env: dict[str, str] | None = None, kill_after: float | None = None) -> Child:
        self.serial += 1
        stem = self.scratch / f"run{self.serial:05d}"
        out, err, trace = stem.with_suffix(".out"), stem.with_suffix(".err"), stem.with_suffix(".trace.json")
        trace.unlink(missing_ok=True)
        full = base_env(env)
        if fault is not None:
            full.update(fault.env(trace, pause_dir))
        full.update(extra_env or {})
        cwd = cwd or self.scratch
        started = time.monotonic()
        if exec_:
            def limit() -> None:
                if fsize:
                    import resource

                    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            code = "import faultwrap; faultwrap.main()"
            popen = subprocess.Popen([sys.executable, "-c", code, *args], env=full, cwd=str(cwd),
                                     stdout=open(out, "w"), stderr=open(err, "w"), stdin=subprocess.DEVNULL,
                                     preexec_fn=limit)
            return Child(self, popen.pid, out, err, trace, started, popen)
        assert self.proc.stdin is not None
        request = {"argv": args, "env": full, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        if fsize:
            request["fsize"] = fsize
        if kill_after is not None:
            request["kill_after"] = kill_after
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self._read(60)
        assert reply is not None and "pid" in reply
        return Child(self, reply["pid"], out, err, trace, started)

    def run(self, args: list[str], env: dict[str, str], *, fault: Fault | None = None, timeout: float = 120,
            **kw: Any) -> Result:
        return self.start(args, env, fault=fault, **kw).wait(timeout)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------- kill points
def kill_points(scenario: str, total: int, k: int) -> list[tuple[int, str]]:
    """k (call number, mode) pairs, one per stratum of [1, total], seeded by (SEED, scenario)."""
    assert total >= 1
    rng = random.Random(f"{SEED}:{scenario}")
    points = []
    for i in range(k):
        lo = 1 + (i * total) // k
        hi = max(lo, ((i + 1) * total) // k)
        points.append((rng.randint(lo, hi), rng.choice(MODES)))
    return points


# --------------------------------------------------------------------------- digests
def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr, ensure_ascii=False).encode()).hexdigest()


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (relative path → digest): byte-level identity. ragstore's own
    coordination folder (`.ragstore/`: lock holder slots) is not data and is left out."""
    out = {}
    if root.exists():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and ".ragstore" not in p.relative_to(root).parts):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def pg_digest(env: dict[str, str], workspace: str | None = None) -> dict[str, tuple[int, str]]:
    """Per table of schema public: row count and md5 of its sorted rows (optionally one workspace)."""
    import asyncio

    import asyncpg

    async def go() -> dict[str, tuple[int, str]]:
        conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]),
                                     user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"],
                                     database=env["POSTGRES_DATABASE"], timeout=10)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1")]
            out = {}
            for table in tables:
                has_ws = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
                                             "to_regclass($1) AND attname = 'workspace' AND NOT attisdropped)", table)
                where = " WHERE workspace = $1" if workspace is not None and has_ws else ""
                args = (workspace,) if where else ()
                row = await conn.fetchrow(f'SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E\'\\n\' '
                                          f'ORDER BY t::text), \'\')) AS h FROM "{table}" t{where}', *args)
                out[table] = (int(row["n"]), row["h"])
            return out
        finally:
            await conn.close()

    return asyncio.run(go())


def record_digest(snapshot: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Per section of a snapshot_records() result: (count, sha256 of its canonical records)."""
    return {key: (len(rows), _sha(rows)) for key, rows in sorted(snapshot.items())}


@dataclass
class Diff:
    lost: int = 0  # records of the reference missing from the target
    extra: int = 0  # records in the target the reference does not have (doubled / stray)
    changed: int = 0  # same id, different value
    where: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.lost or self.extra or self.changed)


def compare(reference: dict[str, Any], target: dict[str, Any]) -> Diff:
    diff = Diff()
    for key in sorted(set(reference) | set(target)):
        ref, got = reference.get(key, {}), target.get(key, {})
        lost = [i for i in ref if i not in got]
        extra = [i for i in got if i not in ref]
        changed = [i for i in ref if i in got and _sha(ref[i]) != _sha(got[i])]
        diff.lost += len(lost)
        diff.extra += len(extra)
        diff.changed += len(changed)
        if lost or extra or changed:
            diff.where.append(f"{key}: lost {len(lost)} extra {len(extra)} changed {len(changed)} "
                              f"(e.g. {(lost + extra + changed)[:2]})")
    return diff


def snapshot(settings_env: dict[str, str], profile: str, workspace: str) -> dict[str, Any]:
    """Every record of a workspace through ragstore's own readers (synchronously)."""
    import asyncio

    from ragstore_cli.config import load_settings
    from tests.transfer.helpers import snapshot_records

    return asyncio.run(snapshot_records(load_settings(environ=settings_env), profile, workspace))


def snapshot_digest(snap: dict[str, Any]) -> str:
    """One sha256 over every record of a snapshot (equal digests: equal records)."""
    return _sha(sorted((section, repr(key), _sha(value)) for section, records in snap.items()
                       for key, value in records.items()))


def total_records(snap: dict[str, Any]) -> int:
    return sum(len(v) for v in snap.values())


# --------------------------------------------------------------------------- totals
TOTALS: list[dict[str, Any]] = []


@contextlib.contextmanager
def fault_record(scenario: str, label: str) -> Iterator[dict[str, Any]]:
    """One fault tried: `survived` unless the block raises; the block fills lost/extra/outcome."""
    entry: dict[str, Any] = {"scenario": scenario, "point": label, "survived": False, "lost": 0, "extra": 0,
                             "changed": 0, "outcome": ""}
    TOTALS.append(entry)
    try:
        yield entry
    except BaseException as exc:
        entry["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        if hasattr(exc, "add_note"):  # the reproduction: seed, scenario, call number, hooked function, mode
            exc.add_note(f"fault: {scenario} | {entry['point']} | RAGSTORE_FAULT_SEED={SEED}")
        raise
    else:
        entry["survived"] = not entry.get("known_bug")


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, dict[str, Any]] = {}
    for e in entries:
        s = by.setdefault(e["scenario"], {"tried": 0, "survived": 0, "lost": 0, "extra": 0, "changed": 0,
                                          "outcomes": {}})
        s["tried"] += 1
        s["survived"] += int(e["survived"])
        for k in ("lost", "extra", "changed"):
            s[k] += int(e.get(k) or 0)
        if e.get("outcome"):
            s["outcomes"][e["outcome"]] = s["outcomes"].get(e["outcome"], 0) + 1
        if e.get("known_bug"):
            s.setdefault("known_bugs", {})[e["known_bug"]] = s.get("known_bugs", {}).get(e["known_bug"], 0) + 1
    total = {k: sum(s[k] for s in by.values()) for k in ("tried", "survived", "lost", "extra", "changed")}
    return {"seed": SEED, "total": total, "scenarios": by, "faults": entries}
