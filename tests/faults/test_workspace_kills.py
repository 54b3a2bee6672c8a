"""`ragstore workspace copy` and `workspace drop` SIGKILLed at seeded points (files, PostgreSQL, and
a Bolt graph beside files).

copy: the source workspace stays byte-for-byte unchanged; the target is either absent or complete,
or -- where the copy is not atomic -- a re-run must finish it. drop: every other workspace stays
unchanged and a re-run removes whatever the killed drop left.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from typing import Any, Callable

import pytest

from ragstore_cli.config import load_settings
from tests.faults import harness
from tests.faults.conftest import SRC
from tests.faults.harness import Fault, compare, fault_record, kill_points, snapshot

K = int(os.environ.get("RAGSTORE_FAULT_POINTS", "20"))
FILES_COPY_HOOKS = ("shutil:copy2", "os:replace", "ragstore_cli.backends.files:fsync_dir",
                    "ragstore_cli.backends.files:FilesBackend.list_workspaces")
FILES_DROP_HOOKS = ("pathlib:Path.unlink", "pathlib:Path.rmdir", "ragstore_cli.backends.files.jsonfile:count_members",
                    "ragstore_cli.backends.files.graphml:count_elements")
PG_HOOKS = ("asyncpg.connection:Connection.execute", "asyncpg.connection:Connection.fetch",
            "asyncpg.connection:Connection.fetchval", "asyncpg.connection:Connection.fetchrow")
BOLT_HOOKS = ("ragstore_cli.backends.neo4j.session:Bolt.run", "shutil:copy2", "os:replace")
BOLT_PROFILE = "kv=files,vector=files,doc_status=files,graph=neo4j"
def is_empty(snap: dict[str, Any]) -> bool:
    return harness.total_records(snap) == 0


def rerun_drop(runner, args: list[str], env: dict[str, str], emptied: bool) -> str:
    """Re-run a killed drop: it finishes the job, or -- when the kill came after the last record and
    trace were gone -- says there is nothing left to drop (exit 2), as for any missing workspace."""
    again = runner.run(args, env)
    if again.code == 2 and emptied:
        assert "nothing to drop" in again.stderr and "Traceback" not in again.stderr, again.describe()
        return "killed when done, re-run: nothing to drop"
    assert again.code == 0, again.describe()
    return "killed, then re-run"


def finish_copy(runner, args: list[str], env: dict[str, str], killed: harness.Result,
                after: dict[str, Any], reference: dict[str, Any], entry: dict[str, Any]) -> None:
    """Target absent → re-run; complete → done; partial → the re-run must finish it (the journal)."""
    if not killed.killed:
        assert killed.code == 0, killed.describe()
        entry["outcome"] = "not reached"
        return
    if compare(reference, after).equal:
        entry["outcome"] = "complete when killed"
        return
    again = runner.run(args, env)
    assert again.code == 0, again.describe()
    entry["outcome"] = "target absent, then re-run" if is_empty(after) else "partial target, re-run completed it"


def copy_point(runner, scenario: str, point: tuple[int, str], calls: int, hooks: tuple[str, ...], args: list[str],
               env: dict[str, str], profile: str, target: str, reference: dict[str, Any],
               source_state: Callable[[], Any]) -> None:
    """One seeded kill of `workspace copy`: the source never changes, the target ends equal to a clean copy."""
    at, mode = point
    before = source_state()
    with fault_record(scenario, f"call {at}/{calls} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(hooks, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert source_state() == before, "the copy changed its source"
        finish_copy(runner, args, env, killed, snapshot(env, profile, target), reference, entry)
        assert source_state() == before
        diff = compare(reference, snapshot(env, profile, target))
        entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
        assert diff.equal, diff.where


# --------------------------------------------------------------------------- files
@pytest.fixture(scope="module")
def files_ws(runner, source, tmp_path_factory):
    root = tmp_path_factory.mktemp("files-ws")
    template = root / "template"
    shutil.copytree(source.working_dir / SRC, template / SRC)
    shutil.copytree(source.working_dir / SRC, template / "keep")
    clean = root / "clean"
    shutil.copytree(template, clean)
    env = {"WORKING_DIR": str(clean)}
    copy = runner.run(["workspace", "copy", SRC, "dst", "--profile", "files"], env, fault=Fault(FILES_COPY_HOOKS))
    assert copy.code == 0, copy.describe()
    reference = snapshot(env, "files", "dst")
    assert compare(snapshot(env, "files", SRC), reference).equal and harness.total_records(reference) > 200
    drop = runner.run(["workspace", "drop", SRC, "--yes", "--profile", "files"], env, fault=Fault(FILES_DROP_HOOKS))
    assert drop.code == 0, drop.describe()
    assert is_empty(snapshot(env, "files", SRC))
    return {"root": root, "template": template, "reference": reference,
            "copy_points": kill_points("copy-files", copy.trace["calls"], K), "copy_calls": copy.trace["calls"],
            "drop_points": kill_points("drop-files", drop.trace["calls"], K), "drop_calls": drop.trace["calls"]}


@pytest.mark.parametrize("i", range(K))
def test_workspace_copy_files_killed(files_ws, runner, i):
    s = files_ws
    wd = s["root"] / f"c{i}"
    shutil.copytree(s["template"], wd)
    copy_point(runner, "workspace copy (files)", s["copy_points"][i], s["copy_calls"], FILES_COPY_HOOKS,
               ["workspace", "copy", SRC, "dst", "--profile", "files"], {"WORKING_DIR": str(wd)}, "files", "dst",
               s["reference"], lambda: harness.tree_digest(wd / SRC))
    shutil.rmtree(wd, ignore_errors=True)


@pytest.mark.parametrize("i", range(K))
def test_workspace_drop_files_killed(files_ws, runner, i):
    s = files_ws
    at, mode = s["drop_points"][i]
    wd = s["root"] / f"d{i}"
    shutil.copytree(s["template"], wd)
    env = {"WORKING_DIR": str(wd)}
    keep = harness.tree_digest(wd / "keep")
    args = ["workspace", "drop", SRC, "--yes", "--profile", "files"]
    with fault_record("workspace drop (files)", f"call {at}/{s['drop_calls']} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(FILES_DROP_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert harness.tree_digest(wd / "keep") == keep, "the drop touched another workspace"
        if killed.killed:
            entry["outcome"] = rerun_drop(runner, args, env, is_empty(snapshot(env, "files", SRC)))
        else:
            assert killed.code == 0, killed.describe()
            entry["outcome"] = "not reached"
        assert is_empty(snapshot(env, "files", SRC))
        assert not (wd / SRC).exists() or not any((wd / SRC).iterdir()), sorted((wd / SRC).iterdir())
        assert harness.tree_digest(wd / "keep") == keep
    shutil.rmtree(wd, ignore_errors=True)


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg_ws(runner, archive, pg_server):
    from ragstore_cli.engine import ImportPlan, import_archive

    template = "fw_" + uuid.uuid4().hex[:10]
    pg_server.psql(f"CREATE DATABASE {template} TEMPLATE template0")
    pg_server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=template)
    tenv = {**pg_server.env(database=template), "EMBEDDING_MODEL": "fake-embed"}
    for ws in ("src", "keep"):
        asyncio.run(import_archive(load_settings(environ=tenv), ImportPlan(archive, workspace=ws, profile="postgres", batch_size=50)))
    made = [template]

    def database() -> dict[str, str]:
        name = "fwk_" + uuid.uuid4().hex[:10]
        pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
        made.append(name)
        return {**pg_server.env(database=name), "EMBEDDING_MODEL": "fake-embed"}

    env = database()
    copy = runner.run(["workspace", "copy", "src", "dst", "--profile", "postgres"], env, fault=Fault(PG_HOOKS))
    assert copy.code == 0, copy.describe()
    reference = snapshot(env, "postgres", "dst")
    assert compare(snapshot(env, "postgres", "src"), reference).equal and harness.total_records(reference) > 200
    drop = runner.run(["workspace", "drop", "src", "--yes", "--profile", "postgres"], env, fault=Fault(PG_HOOKS))
    assert drop.code == 0, drop.describe()
    yield {"database": database, "reference": reference,
           "copy_points": kill_points("copy-postgres", copy.trace["calls"], K), "copy_calls": copy.trace["calls"],
           "drop_points": kill_points("drop-postgres", drop.trace["calls"], K), "drop_calls": drop.trace["calls"]}
    for name in reversed(made):
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("i", range(K))
def test_workspace_copy_postgres_killed(pg_ws, runner, pg_server, i):
    s = pg_ws
    env = s["database"]()
    copy_point(runner, "workspace copy (postgres)", s["copy_points"][i], s["copy_calls"], PG_HOOKS,
               ["workspace", "copy", "src", "dst", "--profile", "postgres"], env, "postgres", "dst", s["reference"],
               lambda: harness.pg_digest(env, "src"))
    pg_server.psql(f"DROP DATABASE IF EXISTS {env['POSTGRES_DATABASE']} WITH (FORCE)")


@pytest.mark.parametrize("i", range(K))
def test_workspace_drop_postgres_killed(pg_ws, runner, pg_server, i):
    s = pg_ws
    at, mode = s["drop_points"][i]
    env = s["database"]()
    keep = harness.pg_digest(env, "keep")
    full = snapshot(env, "postgres", "src")
    args = ["workspace", "drop", "src", "--yes", "--profile", "postgres"]
    with fault_record("workspace drop (postgres)", f"call {at}/{s['drop_calls']} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(PG_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert harness.pg_digest(env, "keep") == keep, "the drop touched another workspace"
        after = snapshot(env, "postgres", "src")
        assert is_empty(after) or compare(full, after).equal, "a killed drop left half a workspace (one transaction)"
        if killed.killed:
            entry["outcome"] = rerun_drop(runner, args, env, is_empty(after))
            if not is_empty(after):
                entry["outcome"] = "intact, then re-run"
        else:
            assert killed.code == 0, killed.describe()
            entry["outcome"] = "not reached"
        assert is_empty(snapshot(env, "postgres", "src"))
        assert harness.pg_digest(env, "keep") == keep
    pg_server.psql(f"DROP DATABASE IF EXISTS {env['POSTGRES_DATABASE']} WITH (FORCE)")


# --------------------------------------------------------------------------- Bolt graph + files
@pytest.fixture(scope="module")
def bolt_ws(runner, archive, bolt_env, tmp_path_factory):
    from tests.faults.test_import_kills import drop_graph, library_import

    root = tmp_path_factory.mktemp("bolt-ws")
    tag = uuid.uuid4().hex[:8]
    src, keep = f"fbw_src_{tag}", f"fbw_keep_{tag}"
    template = root / "template"
    base = {**bolt_env, "EMBEDDING_MODEL": "fake-embed"}
    for ws in (src, keep):
        library_import({**base, "WORKING_DIR": str(template)}, archive, BOLT_PROFILE, ws)
    made = [src, keep]

    def env_for(name: str) -> dict[str, str]:
        wd = root / name
        shutil.copytree(template, wd)
        return {**base, "WORKING_DIR": str(wd)}

    env = env_for("clean")
    made.append(f"fbw_dst_{tag}")
    copy = runner.run(["workspace", "copy", src, f"fbw_dst_{tag}", "--profile", BOLT_PROFILE], env,
                      fault=Fault(BOLT_HOOKS))
    assert copy.code == 0, copy.describe()
    reference = snapshot(env, BOLT_PROFILE, f"fbw_dst_{tag}")
    assert compare(snapshot(env, BOLT_PROFILE, src), reference).equal and harness.total_records(reference) > 200
    drop = runner.run(["workspace", "drop", f"fbw_dst_{tag}", "--yes", "--profile", BOLT_PROFILE], env,
                      fault=Fault(BOLT_HOOKS + ("pathlib:Path.unlink",)))
    assert drop.code == 0, drop.describe()
    yield {"src": src, "keep": keep, "tag": tag, "env_for": env_for, "reference": reference, "made": made,
           "copy_points": kill_points("copy-bolt", copy.trace["calls"], K), "copy_calls": copy.trace["calls"],
           "drop_points": kill_points("drop-bolt", drop.trace["calls"], K), "drop_calls": drop.trace["calls"]}
    for ws in made:
        drop_graph(bolt_env, ws)


@pytest.mark.parametrize("i", range(K))
def test_workspace_copy_bolt_killed(bolt_ws, runner, bolt_name, i):
    s = bolt_ws
    dst = f"fbw_c{i}_{s['tag']}"
    s["made"].append(dst)
    env = s["env_for"](f"c{i}")
    copy_point(runner, f"workspace copy ({bolt_name} + files)", s["copy_points"][i], s["copy_calls"], BOLT_HOOKS,
               ["workspace", "copy", s["src"], dst, "--profile", BOLT_PROFILE], env, BOLT_PROFILE, dst, s["reference"],
               lambda: harness.snapshot_digest(snapshot(env, BOLT_PROFILE, s["src"])))


@pytest.mark.parametrize("i", range(K))
def test_workspace_drop_bolt_killed(bolt_ws, runner, archive, bolt_name, i):
    from tests.faults.test_import_kills import library_import

    s = bolt_ws
    at, mode = s["drop_points"][i]
    victim = f"fbw_d{i}_{s['tag']}"
    s["made"].append(victim)
    env = s["env_for"](f"d{i}")
    library_import(env, archive, BOLT_PROFILE, victim)
    keep = snapshot(env, BOLT_PROFILE, s["keep"])
    args = ["workspace", "drop", victim, "--yes", "--profile", BOLT_PROFILE]
    with fault_record(f"workspace drop ({bolt_name} + files)", f"call {at}/{s['drop_calls']} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(BOLT_HOOKS + ("pathlib:Path.unlink",), at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert compare(keep, snapshot(env, BOLT_PROFILE, s["keep"])).equal, "the drop touched another workspace"
        if killed.killed:
            entry["outcome"] = rerun_drop(runner, args, env, is_empty(snapshot(env, BOLT_PROFILE, victim)))
        else:
            assert killed.code == 0, killed.describe()
            entry["outcome"] = "not reached"
        assert is_empty(snapshot(env, BOLT_PROFILE, victim))
        assert compare(keep, snapshot(env, BOLT_PROFILE, s["keep"])).equal
