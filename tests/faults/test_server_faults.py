"""Server-side faults during an import or export: PostgreSQL restarted, the Bolt server stopped,
the archive's disk full (RLIMIT_FSIZE), the network to PostgreSQL stalled (a loopback proxy that
stops forwarding). Servers that are disturbed are this module's own instances, never the shared ones.

The disturbance happens at a deterministic point: the child pauses itself at a hooked call
(faultwrap `pause`), the test disturbs the server, then lets the child go on.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.faults import harness
from tests.faults.conftest import SRC
from tests.faults.harness import Fault, compare, fault_record, snapshot
from ragstore_cli.embedded.falkordb import EmbeddedFalkorDB
from tests.faults.proxy import FaultProxy
from tests.faults.test_import_kills import BOLT_PROFILE, PG_HOOKS, drop_graph, import_args

BOLT_HOOKS = ("ragstore_cli.backends.neo4j.writer:GraphWriter.write",)


def nth_call(names: list[str], name: str, n: int) -> int:
    """The call number (1-based) of the n-th call to `name` in a count trace."""
    seen = 0
    for number, got in enumerate(names, 1):
        if got == name:
            seen += 1
            if seen == n:
                return number
    raise AssertionError(f"{name} was called {seen} times, not {n}")


def one_line_error(result: harness.Result) -> str:
    """The command failed with exit 1 and exactly one `error:` line, no traceback."""
    assert result.code == 1, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, result.describe()
    return errors[0]


def wait_paused(pause_dir: Path, child: harness.Child, bound: float = 60) -> None:
    deadline = time.monotonic() + bound
    while not (pause_dir / "paused").exists():
        assert time.monotonic() < deadline, "the child never reached its pause point"
        time.sleep(0.02)


# --------------------------------------------------------------------------- PostgreSQL restarted
@pytest.fixture(scope="module")
def own_pg(tmp_path_factory):
    from tests.servers import start_postgres

    server = start_postgres(tmp_path_factory.mktemp("own-pg") / "pg")
    yield server
    server.stop()


def fresh_db(server) -> dict[str, str]:
    name = "fs_" + uuid.uuid4().hex[:10]
    server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
    return {**server.env(database=name), "EMBEDDING_MODEL": "fake-embed"}


@pytest.mark.parametrize("where", [("CopyWriter._feed", 12), ("PgLedgerStore.save", 4), ("PgGraphWriter.write", 2)])
def test_postgres_restarted_mid_import(own_pg, runner, archive, tmp_path, where):
    clean = fresh_db(own_pg)
    count = runner.run(import_args(archive, "postgres", "w"), clean, fault=Fault(PG_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(clean, "postgres", "w")
    at = nth_call(count.trace["names"], *where)
    env = fresh_db(own_pg)
    args = import_args(archive, "postgres", "w")
    with fault_record("PostgreSQL restarted mid-import", f"{where[0]} #{where[1]} (call {at})") as entry:
        pause = tmp_path / "pause"
        pause.mkdir()
        child = runner.start(args, env, fault=Fault(PG_HOOKS, at, "before", "pause"), pause_dir=pause)
        wait_paused(pause, child)
        own_pg.stop()
        own_pg.start()
        (pause / "go").touch()
        result = child.wait(120)
        assert not result.timed_out, result.describe()
        if result.code == 0:
            entry["outcome"] = "import finished despite the restart"
        else:
            entry["outcome"] = f"failed: {one_line_error(result)[:120]}; then --resume"
            resumed = runner.run([*args, "--resume"], env)
            assert resumed.code == 0, resumed.describe()
        diff = compare(reference, snapshot(env, "postgres", "w"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- Bolt server stopped
@pytest.fixture(scope="module", params=["falkordb", "neo4j"])
def own_bolt(request, tmp_path_factory):
    """A Bolt server of this test's own, to stop and start: FalkorDB (no persistence here) or Neo4j."""
    from tests.servers import neo4j_missing, start_falkordb, start_neo4j

    folder = tmp_path_factory.mktemp("own-bolt") / request.param
    if request.param == "neo4j":
        if neo4j_missing():
            pytest.skip(neo4j_missing())
        server = start_neo4j(folder)
    else:
        server = start_falkordb(folder)
    yield server
    server.stop()


def test_bolt_server_stopped_mid_import(own_bolt, runner, archive, tmp_path):
    """FalkorDB keeps nothing across a restart here (no persistence): the graph section, not in the
    ledger, is imported again by --resume. Neo4j keeps what it had: --resume removes the killed
    import's staged nodes and imports the section again."""
    name = "FalkorDB" if isinstance(own_bolt, EmbeddedFalkorDB) else "Neo4j"

    def env_for(name: str) -> dict[str, str]:
        return {**own_bolt.env(), "WORKING_DIR": str(tmp_path / name), "EMBEDDING_MODEL": "fake-embed"}

    clean = env_for("clean")
    count = runner.run(import_args(archive, BOLT_PROFILE, "ref"), clean, fault=Fault(BOLT_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(clean, BOLT_PROFILE, "ref")
    drop_graph(clean, "ref")  # Neo4j keeps it across the restart: the target starts from nothing there too
    env = env_for("target")
    args = import_args(archive, BOLT_PROFILE, "ref")  # same workspace name: the restart wipes FalkorDB
    with fault_record(f"Bolt server stopped mid-import ({name})", "GraphWriter.write #2") as entry:
        pause = tmp_path / "pause"
        pause.mkdir()
        child = runner.start(args, env, fault=Fault(BOLT_HOOKS, 2, "before", "pause"), pause_dir=pause)
        wait_paused(pause, child)
        own_bolt.stop()
        started = time.monotonic()
        (pause / "go").touch()
        result = child.wait(120)
        assert not result.timed_out, result.describe()
        entry["outcome"] = f"failed after {time.monotonic() - started:.1f}s: {one_line_error(result)[:120]}; then --resume"
        own_bolt.start()
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, resumed.describe()
        diff = compare(reference, snapshot(env, BOLT_PROFILE, "ref"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- disk full
@pytest.mark.parametrize("limit", [8_000, 60_000])
def test_export_disk_full(runner, source, source_env, tmp_path, limit):
    """RLIMIT_FSIZE (a real `python -m` child): exit 1, one line, nothing at or next to the output path."""
    out = tmp_path / "out" / "a.ragstore"
    out.parent.mkdir()
    before = harness.tree_digest(source.working_dir)
    args = ["export", "--from", "files", "--workspace", SRC, "--batch-size", "5", "-o", str(out)]
    with fault_record("archive disk full (export, RLIMIT_FSIZE)", f"limit {limit} bytes") as entry:
        result = runner.run(args, source_env, exec_=True, fsize=limit)
        line = one_line_error(result)
        entry["outcome"] = f"exit 1: {line[:120]}"
        assert not out.exists(), "a partial archive at the output path"
        assert sorted(p.name for p in out.parent.iterdir()) == [], "spool or .partial left behind"
        assert harness.tree_digest(source.working_dir) == before
        again = runner.run(args, source_env)  # with room again
        assert again.code == 0, again.describe()


def test_import_into_files_disk_full_then_resumed(runner, archive, old_archive, tmp_path):
    from tests.faults.test_import_kills import library_import

    env = {"WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    library_import(env, old_archive, "files", "w")
    initial = snapshot(env, "files", "w")
    ref_env = {"WORKING_DIR": str(tmp_path / "ref"), "EMBEDDING_MODEL": "fake-embed"}
    library_import(ref_env, archive, "files", "w")
    reference = snapshot(ref_env, "files", "w")
    args = import_args(archive, "files", "w")
    with fault_record("target disk full (import → files, RLIMIT_FSIZE)", "limit 20000 bytes") as entry:
        result = runner.run(args, env, exec_=True, fsize=20_000)
        entry["outcome"] = f"exit 1: {one_line_error(result)[:100]}"
        assert compare(initial, snapshot(env, "files", "w")).equal, "the target changed"
        resumed = runner.run([*args, "--resume"], env)
        if resumed.code != 0:  # nothing was recorded as committed: a plain re-run
            assert resumed.code == 2, resumed.describe()
            resumed = runner.run(args, env)
        assert resumed.code == 0, resumed.describe()
        diff = compare(reference, snapshot(env, "files", "w"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- stalled network
STALL_BOUND = 20.0  # seconds the stalled import is given to give up on its own


@pytest.fixture(scope="module")
def stalled_import(own_pg, runner, archive, tmp_path_factory) -> dict[str, Any]:
    clean = fresh_db(own_pg)
    count = runner.run(import_args(archive, "postgres", "w"), clean, fault=Fault(PG_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(clean, "postgres", "w")
    env = fresh_db(own_pg)
    initial = snapshot(env, "postgres", "w")
    proxy = FaultProxy(int(env["POSTGRES_PORT"]))
    # A short statement timeout: the stalled COPY must be abandoned well within STALL_BOUND.
    via = {**env, "POSTGRES_PORT": str(proxy.port), "RAGSTORE_COMMAND_TIMEOUT": "5"}
    pause = tmp_path_factory.mktemp("stall")
    at = nth_call(count.trace["names"], "CopyWriter._feed", 12)
    child = runner.start(import_args(archive, "postgres", "w"), via, fault=Fault(PG_HOOKS, at, "before", "pause"),
                         pause_dir=pause)
    wait_paused(pause, child)
    proxy.freeze()
    (pause / "go").touch()
    result = child.wait(STALL_BOUND)  # SIGKILLed by the runner if it is still hanging then
    proxy.close()  # resets every connection: the stalled transaction's row locks go away
    return {"result": result, "env": env, "initial": initial, "reference": reference}


def test_stalled_network_target_is_resumable(stalled_import, runner, archive):
    s = stalled_import
    with fault_record("stalled network to PostgreSQL (resumability)", f"stall at CopyWriter._feed #12") as entry:
        args = import_args(archive, "postgres", "w")
        after = snapshot(s["env"], "postgres", "w")
        resumed = runner.run([*args, "--resume"], s["env"])
        if resumed.code != 0:
            assert compare(s["initial"], after).equal, f"changed target, --resume failed: {resumed.describe()}"
            resumed = runner.run(args, s["env"])
        assert resumed.code == 0, resumed.describe()
        entry["outcome"] = f"stalled import {'timed out (killed by the test)' if s['result'].timed_out else 'failed'}; then --resume"
        diff = compare(s["reference"], snapshot(s["env"], "postgres", "w"))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# Fixed: the command's guard (connect/liveness.py) gives up on a server silent for RAGSTORE_COMMAND_TIMEOUT.
def test_stalled_network_fails_within_a_bound(stalled_import):
    result = stalled_import["result"]
    with fault_record("stalled network to PostgreSQL (fails in time)", f"bound {STALL_BOUND:g}s") as entry:
        assert not result.timed_out, f"still hanging after {STALL_BOUND:g}s"
        line = one_line_error(result)
        assert line.startswith("error: postgres:") and "stopped answering" in line, line  # names the server
        entry["outcome"] = f"exit 1: {line[:120]}"
