"""A server lost in the middle of a command, and Ctrl-C: every export, import, workspace copy,
workspace drop and migrate ends within RAGSTORE_COMMAND_TIMEOUT of the loss, with one error line
naming the server, and leaves a state that a re-run (or `--resume`) finishes.

The faults: `freeze` (a loopback proxy stops forwarding, sockets stay open), `cut` (the proxy resets
every connection and refuses new ones), `stop` (SIGSTOP to every process of the server), `kill`
(SIGKILL, then a restart). The servers are this module's own PostgreSQL, FalkorDB (the Bolt server
and, on its own port, nothing else) and Redis, each reached through a `FaultProxy`. The fault is
applied while the child is paused at a hooked call in the middle of its work (faultwrap `pause`).

The Bolt scenarios run against FalkorDB; `BOLT` is the one place to add a real Neo4j fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest

from tests.faults import harness
from tests.faults.harness import Fault, compare, fault_record, snapshot
from tests.faults.proxy import FaultProxy
from tests.faults.test_import_kills import PG_HOOKS, import_args
from tests.faults.test_server_faults import fresh_db, one_line_error, wait_paused

LIMIT = 8.0  # RAGSTORE_COMMAND_TIMEOUT of every child here
SLACK = 1.5  # scheduling slack on a loaded 2-core machine, on top of the limit
REDIS_PROFILE = "kv=redis,vector=files,graph=files,doc_status=redis"
BOLT_PROFILE = "kv=files,vector=files,doc_status=files,graph=neo4j"
SECTION_WRITE = "ragstore_cli.archive.writer:SectionWriter.write"
PG_STATEMENTS = ("asyncpg.connection:Connection.execute", "asyncpg.connection:Connection.fetch",
                 "asyncpg.connection:Connection.fetchval", "asyncpg.connection:Connection.fetchrow")
REDIS_HOOKS = ("ragstore_cli.backends.redis.store:RedisWriter.write",)
BOLT_HOOKS = ("ragstore_cli.backends.neo4j.session:Bolt.run",)
MIGRATE_HOOKS = ("sqlalchemy.engine.base:Connection.execute",)


# --------------------------------------------------------------------------- servers behind proxies
@dataclass
class Server:
    """One server of this module, the proxy in front of it, and how to stop / kill / bring it back."""

    kind: str
    proc: Any  # the EmbeddedPostgres / EmbeddedFalkorDB / PlainRedis
    port: int  # the server's real port (the proxy forwards to it)
    proxy: FaultProxy
    pids: Callable[[], list[int]]

    def apply(self, fault: str) -> None:
        {"freeze": self.proxy.freeze, "cut": self.proxy.cut, "stop": lambda: self._signal(signal.SIGSTOP),
         "kill": lambda: self._signal(signal.SIGKILL)}[fault]()

    def heal(self, fault: str) -> None:
        {"freeze": self.proxy.thaw, "cut": self.proxy.restore, "stop": lambda: self._signal(signal.SIGCONT),
         "kill": self._restart}[fault]()

    def _signal(self, signum: int) -> None:
        for pid in self.pids():
            os.kill(pid, signum)  # processes this module started

    def _restart(self) -> None:
        popen = getattr(self.proc, "process", None)
        if popen is not None:
            popen.wait(20)  # our own child: reap it
        _wait_gone(self.pids)
        self.proc.start()


def _wait_gone(pids: Callable[[], list[int]], bound: float = 20) -> None:
    """Until the killed processes are reaped (a zombie postmaster still "holds" its pid file)."""
    deadline = time.monotonic() + bound
    while any(psutil.pid_exists(p) for p in pids()):
        assert time.monotonic() < deadline, "the killed server's processes did not go away"
        time.sleep(0.05)


def _tree(pid: int | None) -> list[int]:
    if pid is None:
        return []
    try:
        parent = psutil.Process(pid)
        return [pid, *(c.pid for c in parent.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def _remembered(current: Callable[[], list[int]]) -> Callable[[], list[int]]:
    """The server's pids, remembered: a killed server's pid file may be gone."""
    seen: list[int] = []

    def pids() -> list[int]:
        seen[:] = current() or seen
        return list(seen)
    return pids


@contextlib.contextmanager
def _behind_proxy(kind: str, proc: Any, port: int, current_pids: Callable[[], list[int]]) -> Iterator[Server]:
    proxy = FaultProxy(port)
    try:
        yield Server(kind, proc, port, proxy, _remembered(current_pids))
    finally:
        proxy.close()
        proc.stop()


@pytest.fixture(scope="module")
def pg(server_root):
    from tests.servers import start_postgres

    server = start_postgres(server_root / "loss-pg")  # server_root: a folder the server's own user can reach
    with _behind_proxy("postgres", server, server.port, lambda: _tree(server.pid())) as served:
        yield served


@pytest.fixture(scope="module")
def bolt(server_root):
    from tests.servers import start_falkordb

    server = start_falkordb(server_root / "loss-bolt")
    with _behind_proxy("neo4j", server, server.bolt_port, lambda: [server.pid()] if server.pid() else []) as served:
        yield served


@pytest.fixture(scope="module")
def redis(server_root):
    from tests.servers import PlainRedis

    server = PlainRedis(server_root / "loss-redis")
    server.start()
    with _behind_proxy("redis", server, server.port, lambda: [server.process.pid] if server.process else []) as served:
        yield served


BOLT = "bolt"  # the fixture the Bolt scenarios use: a real Neo4j fixture can be added beside it


def via_proxy(server: Server, env: dict[str, str]) -> dict[str, str]:
    out = {**env, "RAGSTORE_COMMAND_TIMEOUT": f"{LIMIT:g}", "RAGSTORE_LOCK_BACKEND": "file"}
    if server.kind == "postgres":
        out["POSTGRES_PORT"] = str(server.proxy.port)
    elif server.kind == "redis":
        out["REDIS_URI"] = f"redis://127.0.0.1:{server.proxy.port}/0"
    else:
        out.update(server.proc.env())
        out["NEO4J_URI"] = f"bolt://127.0.0.1:{server.proxy.port}"
    return out


def _env_for(server: Server, folder: Path) -> dict[str, str]:
    """Settings for a Redis or Bolt target beside files in `folder` (the server's real port)."""
    env = {"REDIS_URI": server.proc.uri} if server.kind == "redis" else dict(server.proc.env())
    return {**env, "WORKING_DIR": str(folder), "EMBEDDING_MODEL": "fake-embed"}


# --------------------------------------------------------------------------- one disturbed run
@dataclass
class Outcome:
    result: harness.Result
    seconds: float  # from the fault to the child's exit

    def line(self) -> str:
        return one_line_error(self.result)


def disturbed(runner, args: list[str], env: dict[str, str], hooks: tuple[str, ...], server: Server, fault: str | None,
              tmp_path: Path, *, interrupt: bool = False, settings: str = "", count_env: dict[str, str] | None = None,
              after_count: Callable[[], None] | None = None) -> Outcome:
    """Count the hooked calls of a clean run (on `count_env`, else `env`; then `after_count` puts the
    state back), pause a second run at the middle call, apply `fault` (None: no fault), let it go on
    (with `interrupt`: SIGINT a second later), and heal the server once the child ended."""
    extra = {"FAULTWRAP_SET": settings} if settings else {}
    count = runner.run(args, count_env or env, fault=Fault(hooks), extra_env=extra)
    assert count.code == 0, count.describe()
    assert count.trace.get("calls", 0) >= 2, count.describe()
    if after_count is not None:
        after_count()
    pause = tmp_path / f"pause-{uuid.uuid4().hex[:6]}"
    pause.mkdir()
    child = runner.start(args, env, fault=Fault(hooks, max(2, count.trace["calls"] // 2), "before", "pause"),
                         pause_dir=pause, extra_env=extra)
    wait_paused(pause, child)
    try:
        if fault is not None:
            server.apply(fault)
        started = time.monotonic()
        (pause / "go").touch()
        if interrupt:
            time.sleep(1.0 if fault is not None else 0.2)  # stuck on the server (or busy) by then
            os.kill(child.pid, signal.SIGINT)  # our own child
            started = time.monotonic()
        bound = min(float(env.get("RAGSTORE_COMMAND_TIMEOUT", "60")), 60) + 30
        result = child.wait(bound)
        seconds = time.monotonic() - started
    finally:
        if fault is not None:
            server.heal(fault)
    assert not result.timed_out, f"still running {bound:g} s after the fault: {result.describe()}"
    return Outcome(result, seconds)


def check_lost(outcome: Outcome, server: Server, entry: dict[str, Any]) -> str:
    """Ended within the limit, exit 1, one line naming the server."""
    line = outcome.line()
    entry["outcome"] = f"exit 1 after {outcome.seconds:.1f} s: {line[:110]}"
    entry["seconds"] = round(outcome.seconds, 1)
    assert outcome.seconds <= LIMIT + SLACK, f"ended {outcome.seconds:.1f} s after the fault: {line}"
    assert line.startswith(f"error: {server.kind}:"), line
    assert str(server.proxy.port) in line or server.kind in line, line
    return line


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg_reference(pg, runner, archive) -> dict[str, Any]:
    env = fresh_db(pg.proc)
    done = runner.run(import_args(archive, "postgres", "w"), env)
    assert done.code == 0, done.describe()
    return snapshot(env, "postgres", "w")


@pytest.mark.parametrize("fault", ["freeze", "cut", "stop", "kill"])
def test_postgres_lost_mid_import(pg, runner, archive, pg_reference, tmp_path, fault):
    env = fresh_db(pg.proc)
    args = import_args(archive, "postgres", "w")
    with fault_record("server lost: import → postgres", fault) as entry:
        outcome = disturbed(runner, args, via_proxy(pg, env), PG_HOOKS, pg, fault, tmp_path)
        line = check_lost(outcome, pg, entry)
        assert "--resume" in outcome.result.stderr, outcome.result.stderr
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, f"{line}; then: {resumed.describe()}"
        diff = compare(pg_reference, snapshot(env, "postgres", "w"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


@pytest.mark.parametrize("fault", ["freeze", "stop"])
def test_postgres_lost_mid_export(pg, runner, archive, tmp_path, fault):
    env = fresh_db(pg.proc)
    assert runner.run(import_args(archive, "postgres", "w"), env).code == 0
    out = tmp_path / "out.ragstore"
    args = ["export", "--from", "postgres", "--workspace", "w", "--batch-size", "5", "-o", str(out)]
    with fault_record("server lost: export postgres → archive", fault) as entry:
        outcome = disturbed(runner, args, via_proxy(pg, env), (SECTION_WRITE,), pg, fault, tmp_path,
                            after_count=out.unlink)
        check_lost(outcome, pg, entry)
        assert not out.exists(), "a partial archive at the output path"
        again = runner.run(args, env)
        assert again.code == 0, again.describe()


@pytest.mark.parametrize("command", ["copy", "drop"])
def test_postgres_frozen_mid_workspace_command(pg, runner, archive, tmp_path, command):
    env = fresh_db(pg.proc)
    assert runner.run(import_args(archive, "postgres", "w"), env).code == 0
    before = snapshot(env, "postgres", "w")
    args = ["workspace", "copy", "w", "w2", "--profile", "postgres"] if command == "copy" else \
        ["workspace", "drop", "w", "--yes", "--profile", "postgres"]
    undo = ["workspace", "drop", "w2", "--yes", "--profile", "postgres"] if command == "copy" else \
        import_args(archive, "postgres", "w")
    with fault_record(f"server lost: workspace {command} (postgres)", "freeze") as entry:
        outcome = disturbed(runner, args, via_proxy(pg, env), PG_STATEMENTS, pg, "freeze", tmp_path,
                            after_count=lambda: _ok(runner.run(undo, env)))
        check_lost(outcome, pg, entry)
        assert compare(before, snapshot(env, "postgres", "w")).equal, "the workspace changed"
        again = runner.run(args, env)
        assert again.code == 0, again.describe()


def test_postgres_frozen_mid_migrate(pg, runner, tmp_path):
    from tests.faults.test_migrate_kills import SETTINGS, prepare

    env, twin = fresh_db(pg.proc), fresh_db(pg.proc)
    asyncio.run(prepare(env))
    asyncio.run(prepare(twin))
    with fault_record("server lost: migrate upgrade (postgres)", "freeze") as entry:
        outcome = disturbed(runner, ["migrate", "upgrade"], via_proxy(pg, env), MIGRATE_HOOKS, pg, "freeze",
                            tmp_path, settings=SETTINGS, count_env=twin)
        check_lost(outcome, pg, entry)
        again = runner.run(["migrate", "upgrade"], env, extra_env={"FAULTWRAP_SET": SETTINGS})
        assert again.code == 0, again.describe()


def _ok(result: harness.Result) -> None:
    assert result.code == 0, result.describe()


def _undo(runner, command: str, archive: Path, profile: str, workspace: str, env: dict[str, str],
          out: Path) -> Callable[[], None]:
    """What puts the state back after the clean (count) run of `command`."""
    def undo() -> None:
        if command == "export":
            out.unlink()
        elif command == "copy":
            _ok(runner.run(["workspace", "drop", workspace + "_2", "--yes", "--profile", profile], env))
        else:
            _ok(runner.run(import_args(archive, profile, workspace), env))
    return undo


# --------------------------------------------------------------------------- Redis
@pytest.fixture(scope="module")
def redis_reference(redis, runner, archive, tmp_path_factory) -> dict[str, Any]:
    env = {"REDIS_URI": redis.proc.uri, "WORKING_DIR": str(tmp_path_factory.mktemp("redis-ref")),
           "EMBEDDING_MODEL": "fake-embed"}
    done = runner.run(import_args(archive, REDIS_PROFILE, "ref"), env)
    assert done.code == 0, done.describe()
    return snapshot(env, REDIS_PROFILE, "ref")


@pytest.mark.parametrize("fault", ["freeze", "stop", "kill"])
def test_redis_lost_mid_import(redis, runner, archive, redis_reference, tmp_path, fault):
    workspace = f"r_{fault}"
    env = _env_for(redis, tmp_path / "wd")
    args = import_args(archive, REDIS_PROFILE, workspace)
    with fault_record("server lost: import → redis (+ files)", fault) as entry:
        outcome = disturbed(runner, args, via_proxy(redis, env), REDIS_HOOKS, redis, fault, tmp_path)
        check_lost(outcome, redis, entry)
        resumed = runner.run([*args, "--resume"], env)
        if resumed.code == 2:  # no ledger entry was recorded (a killed Redis lost it): a plain re-run
            resumed = runner.run(args, env)
        assert resumed.code == 0, resumed.describe()
        diff = compare(redis_reference, snapshot(env, REDIS_PROFILE, workspace))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- the Bolt server
@pytest.fixture(scope="module")
def bolt_server(request) -> Server:
    return request.getfixturevalue(BOLT)


@pytest.mark.parametrize("fault", ["freeze", "stop", "kill"])
def test_bolt_lost_mid_import(bolt_server, runner, archive, tmp_path, fault):
    server = bolt_server
    workspace = f"b_{fault}"
    env = _env_for(server, tmp_path / "wd")
    ref_env = {**env, "WORKING_DIR": str(tmp_path / "ref")}
    args = import_args(archive, BOLT_PROFILE, workspace)
    with fault_record("server lost: import → neo4j (FalkorDB Bolt) + files", fault) as entry:
        outcome = disturbed(runner, args, via_proxy(server, env), BOLT_HOOKS, server, fault, tmp_path)
        check_lost(outcome, server, entry)
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, resumed.describe()
        reference_args = import_args(archive, BOLT_PROFILE, workspace + "_ref")
        assert runner.run(reference_args, ref_env).code == 0
        diff = compare(snapshot(ref_env, BOLT_PROFILE, workspace + "_ref"), snapshot(env, BOLT_PROFILE, workspace))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- Redis and Bolt: export, copy, drop
PROFILES = {"redis": REDIS_PROFILE, "neo4j": BOLT_PROFILE}
HOOKS = {  # where each command is paused: a call that talks to the server under test
    ("redis", "export"): ("ragstore_cli.backends.redis.store:Namespace._fetch",),  # Redis sections come first
    ("redis", "copy"): ("redis.asyncio.client:Pipeline.execute",),
    ("redis", "drop"): ("redis.asyncio.client:Redis.execute_command",),
}


@pytest.mark.parametrize("command", ["export", "copy", "drop"])
@pytest.mark.parametrize("served", ["redis", BOLT])
def test_frozen_mid_command(request, runner, archive, tmp_path, served, command):
    server: Server = request.getfixturevalue(served)
    profile = PROFILES[server.kind]
    workspace = f"{server.kind[0]}c_{command}"
    env = _env_for(server, tmp_path / "wd")
    assert runner.run(import_args(archive, profile, workspace), env).code == 0
    before = snapshot(env, profile, workspace)
    out = tmp_path / "out.ragstore"
    args = {
        "export": ["export", "--from", profile, "--workspace", workspace, "--batch-size", "5", "-o", str(out)],
        "copy": ["workspace", "copy", workspace, workspace + "_2", "--profile", profile],
        "drop": ["workspace", "drop", workspace, "--yes", "--profile", profile],
    }[command]
    label = "redis + files" if server.kind == "redis" else "neo4j (FalkorDB Bolt) + files"
    with fault_record(f"server lost: {command} ({label})", "freeze") as entry:
        outcome = disturbed(runner, args, via_proxy(server, env), HOOKS.get((server.kind, command), BOLT_HOOKS),
                            server, "freeze", tmp_path,
                            after_count=_undo(runner, command, archive, profile, workspace, env, out))
        check_lost(outcome, server, entry)
        if command != "drop":
            assert compare(before, snapshot(env, profile, workspace)).equal, "the source changed"
        if command == "export":
            assert not out.exists(), "a partial archive at the output path"
        again = runner.run(args, env)
        assert again.code == 0, again.describe()


# --------------------------------------------------------------------------- Ctrl-C
INTERRUPT_BOUND = 5.0


@pytest.mark.parametrize("frozen", [False, True], ids=["healthy", "frozen"])
def test_ctrl_c_ends_a_postgres_import_within_5_s(pg, runner, archive, pg_reference, tmp_path, frozen):
    env = fresh_db(pg.proc)
    args = import_args(archive, "postgres", "w")
    slow = {**via_proxy(pg, env), "RAGSTORE_COMMAND_TIMEOUT": "600"}  # only Ctrl-C can end it in time
    with fault_record("Ctrl-C during import → postgres", "server frozen" if frozen else "server healthy") as entry:
        outcome = disturbed(runner, args, slow, PG_HOOKS, pg, "freeze" if frozen else None, tmp_path, interrupt=True)
        _check_interrupted(outcome, entry)
        resumed = runner.run([*args, "--resume"], env)
        if resumed.code == 2:  # interrupted before its ledger row: a plain re-run
            resumed = runner.run(args, env)
        assert resumed.code == 0, resumed.describe()
        diff = compare(pg_reference, snapshot(env, "postgres", "w"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


def test_ctrl_c_ends_a_bolt_import_within_5_s(bolt_server, runner, archive, tmp_path):
    server = bolt_server
    env = _env_for(server, tmp_path / "wd")
    args = import_args(archive, BOLT_PROFILE, "b_int")
    slow = {**via_proxy(server, env), "RAGSTORE_COMMAND_TIMEOUT": "600"}
    with fault_record("Ctrl-C during import → neo4j (FalkorDB Bolt) + files", "server frozen") as entry:
        outcome = disturbed(runner, args, slow, BOLT_HOOKS, server, "freeze", tmp_path, interrupt=True)
        _check_interrupted(outcome, entry)
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, resumed.describe()


def _check_interrupted(outcome: Outcome, entry: dict[str, Any]) -> None:
    result = outcome.result
    entry["outcome"] = f"exit {result.code} {outcome.seconds:.1f} s after SIGINT"
    entry["seconds"] = round(outcome.seconds, 1)
    assert result.code == 130, result.describe()
    assert outcome.seconds <= INTERRUPT_BOUND, result.describe()
    assert "Traceback" not in result.stderr, result.stderr
    assert [l for l in result.stderr.splitlines() if l.startswith("error")] == ["error: interrupted"], result.stderr


# --------------------------------------------------------------------------- the default timeout
@pytest.mark.slow
def test_default_timeout_ends_a_frozen_import_within_60_s(pg, runner, archive, pg_reference, tmp_path):
    """Nothing configured: RAGSTORE_COMMAND_TIMEOUT's default (60 s) bounds the wait."""
    env = fresh_db(pg.proc)
    args = import_args(archive, "postgres", "w")
    defaults = via_proxy(pg, env)
    del defaults["RAGSTORE_COMMAND_TIMEOUT"]
    with fault_record("server lost: import → postgres, default RAGSTORE_COMMAND_TIMEOUT", "freeze") as entry:
        outcome = disturbed(runner, args, defaults, PG_HOOKS, pg, "freeze", tmp_path)
        line = outcome.line()
        entry["outcome"] = f"exit 1 after {outcome.seconds:.1f} s: {line[:110]}"
        entry["seconds"] = round(outcome.seconds, 1)
        assert outcome.seconds <= 60 + SLACK, line
        assert line.startswith("error: postgres:") and "RAGSTORE_COMMAND_TIMEOUT is 60 s" in line, line
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, resumed.describe()
        assert compare(pg_reference, snapshot(env, "postgres", "w")).equal
