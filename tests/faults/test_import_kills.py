"""`ragstore import` SIGKILLed at seeded points (files, PostgreSQL, Bolt targets), then completed.

Every target starts with an OLDER state of the workspace and the import runs with
`--if-exists replace`. After the kill: the archive is unchanged, the target is either exactly its
older state or completes with `--resume`; the completed target equals a clean import of the same
archive record by record (nothing lost, nothing doubled, nothing changed).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from ragstore_cli.config import load_settings
from tests.faults import harness
from tests.faults.harness import Fault, compare, fault_record, kill_points, snapshot

K = int(os.environ.get("RAGSTORE_FAULT_POINTS", "20"))
BATCH = "5"

FILES_HOOKS = (
    "ragstore_cli.backends.files:JsonWriter.write", "ragstore_cli.backends.files:JsonWriter.commit",
    "ragstore_cli.backends.files:GraphWriter.write", "ragstore_cli.backends.files:GraphWriter.commit",
    "ragstore_cli.backends.files.nano:NanoWriter.write", "ragstore_cli.backends.files.nano:NanoWriter.commit",
    "ragstore_cli.backends.files.load:FileLedgerStore.save", "os:replace", "os:fsync",
)
PG_HOOKS = (
    "ragstore_cli.backends.postgres.copy:CopyWriter._start", "ragstore_cli.backends.postgres.copy:CopyWriter._feed",
    "ragstore_cli.backends.postgres.copy:CopyWriter.commit", "ragstore_cli.backends.postgres.graph:PgGraphWriter.write",
    "ragstore_cli.backends.postgres.graph:PgGraphWriter.commit", "ragstore_cli.backends.postgres.load:PgLedgerStore.save",
)
BOLT_HOOKS = (
    "ragstore_cli.backends.neo4j.session:Bolt.run", "ragstore_cli.backends.neo4j.writer:GraphWriter.write",
    "ragstore_cli.backends.neo4j.writer:GraphWriter.commit", "ragstore_cli.backends.files.load:FileLedgerStore.save",
    "ragstore_cli.backends.files:JsonWriter.commit", "ragstore_cli.backends.files.nano:NanoWriter.commit",
)
BOLT_PROFILE = "kv=files,vector=files,doc_status=files,graph=neo4j"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_args(archive: Path, profile: str, workspace: str) -> list[str]:
    return ["import", str(archive), "--to", profile, "--workspace", workspace, "--batch-size", BATCH,
            "--if-exists", "replace"]


def library_import(env: dict[str, str], archive: Path, profile: str, workspace: str) -> None:
    from ragstore_cli.engine import ImportPlan, import_archive

    asyncio.run(import_archive(load_settings(environ=env), ImportPlan(archive, workspace=workspace, profile=profile, if_exists="replace", batch_size=50)))


def settle(runner: harness.Runner, args: list[str], env: dict[str, str], killed: harness.Result,
           initial: dict[str, Any], reference: dict[str, Any], read: Callable[[], dict[str, Any]],
           entry: dict[str, Any]) -> None:
    """After a kill: unchanged, already complete, or completed by --resume; an unchanged target may
    also be imported again from scratch."""
    if not killed.killed:  # the chosen call was not reached in this run: it must have finished cleanly
        assert killed.code == 0, killed.describe()
        entry["outcome"] = "not reached"
        return
    after = read()
    unchanged = compare(initial, after).equal
    resumed = runner.run([*args, "--resume"], env)
    if resumed.code == 0:
        entry["outcome"] = "unchanged, then --resume" if unchanged else "partial, then --resume"
        return
    if not unchanged and compare(reference, after).equal:  # killed after the last write, while tidying up
        assert resumed.code == 2 and "no interrupted import" in resumed.stderr, resumed.describe()
        entry["outcome"] = "complete when killed"
        return
    assert unchanged, f"the killed import changed the target and --resume failed: {resumed.describe()}"
    assert resumed.code == 2 and "no interrupted import" in resumed.stderr, resumed.describe()
    again = runner.run(args, env)
    assert again.code == 0, again.describe()
    entry["outcome"] = "unchanged, then re-run"


def check_final(reference: dict[str, Any], final: dict[str, Any], entry: dict[str, Any]) -> None:
    diff = compare(reference, final)
    entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
    assert diff.equal, diff.where
    assert harness.total_records(final) > 200


# --------------------------------------------------------------------------- files target
@pytest.fixture(scope="module")
def files_scenario(runner, archive, old_archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("files-import")
    template = root / "template"
    library_import({"WORKING_DIR": str(template), "EMBEDDING_MODEL": "fake-embed"}, old_archive, "files", "w")
    clean = root / "clean"
    shutil.copytree(template, clean)
    env = {"WORKING_DIR": str(clean), "EMBEDDING_MODEL": "fake-embed"}
    count = runner.run(import_args(archive, "files", "w"), env, fault=Fault(FILES_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(env, "files", "w")
    initial = snapshot({"WORKING_DIR": str(template)}, "files", "w")
    assert not compare(reference, initial).equal  # the older state differs from the archive's
    return {"template": template, "reference": reference, "initial": initial, "root": root,
            "points": kill_points("import-files", count.trace["calls"], K), "calls": count.trace["calls"]}


@pytest.mark.parametrize("i", range(K))
def test_import_into_files_killed(files_scenario, runner, archive, i):
    s = files_scenario
    at, mode = s["points"][i]
    wd = s["root"] / f"k{i}"
    shutil.copytree(s["template"], wd)
    env = {"WORKING_DIR": str(wd), "EMBEDDING_MODEL": "fake-embed"}
    before = sha(archive)
    args = import_args(archive, "files", "w")
    with fault_record("import archive → files", f"call {at}/{s['calls']} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(FILES_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert sha(archive) == before
        settle(runner, args, env, killed, s["initial"], s["reference"], lambda: snapshot(env, "files", "w"), entry)
        assert sha(archive) == before
        check_final(s["reference"], snapshot(env, "files", "w"), entry)
        if entry["outcome"] != "complete when killed":  # else a later import discards the leftovers
            assert not list(wd.glob(".ragstore-import*")), "staging left behind after completion"
        assert not (wd / "w" / ".ragstore-import-ledger.json").exists()
    shutil.rmtree(wd, ignore_errors=True)


# --------------------------------------------------------------------------- PostgreSQL target
@pytest.fixture(scope="module")
def pg_scenario(runner, archive, old_archive, pg_server):
    template = "ft_" + uuid.uuid4().hex[:10]
    pg_server.psql(f"CREATE DATABASE {template} TEMPLATE template0")
    pg_server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=template)
    tenv = {**pg_server.env(database=template), "EMBEDDING_MODEL": "fake-embed"}
    library_import(tenv, old_archive, "postgres", "w")
    initial = snapshot(tenv, "postgres", "w")
    made = [template]

    def database() -> dict[str, str]:
        name = "fk_" + uuid.uuid4().hex[:10]
        pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
        made.append(name)
        return {**pg_server.env(database=name), "EMBEDDING_MODEL": "fake-embed"}

    env = database()
    count = runner.run(import_args(archive, "postgres", "w"), env, fault=Fault(PG_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(env, "postgres", "w")
    assert not compare(reference, initial).equal
    yield {"database": database, "reference": reference, "initial": initial,
           "points": kill_points("import-postgres", count.trace["calls"], K), "calls": count.trace["calls"]}
    for name in reversed(made):
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("i", range(K))
def test_import_into_postgres_killed(pg_scenario, runner, archive, pg_server, i):
    s = pg_scenario
    at, mode = s["points"][i]
    env = s["database"]()
    args = import_args(archive, "postgres", "w")
    with fault_record("import archive → postgres", f"call {at}/{s['calls']} {mode}") as entry:
        killed = runner.run(args, env, fault=Fault(PG_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        settle(runner, args, env, killed, s["initial"], s["reference"], lambda: snapshot(env, "postgres", "w"), entry)
        check_final(s["reference"], snapshot(env, "postgres", "w"), entry)
        left = pg_server.psql("SELECT count(*) FROM ragstore_import_ledger", database=env["POSTGRES_DATABASE"])
        assert str(left).split()[-1].strip() in ("0", ""), f"ledger rows left: {left!r}"
    pg_server.psql(f"DROP DATABASE IF EXISTS {env['POSTGRES_DATABASE']} WITH (FORCE)")


# --------------------------------------------------------------------------- Bolt graph target (FalkorDB and Neo4j)
def staged_labels(bolt_env: dict[str, str]) -> list[str]:
    """Labels of nodes staged by replace-mode imports (`__ragstore_import_<id>`) still in the server."""
    from ragstore_cli.backends.neo4j.session import Bolt

    async def go() -> list[str]:
        bolt = Bolt(load_settings(environ=bolt_env))
        await bolt.open()
        try:
            labels = [r["label"] for r in await bolt.run("CALL db.labels() YIELD label RETURN label", read=True)]
            out = []
            for label in labels:
                if label.startswith("__ragstore_import_"):
                    if await bolt.scalar(f"MATCH (n:`{label}`) RETURN count(n) AS c", read=True):
                        out.append(label)
            return out
        finally:
            await bolt.close()

    return asyncio.run(go())


def remove_staged(bolt_env: dict[str, str], labels: set[str]) -> None:
    """Delete nodes a killed import left staged (see test_known_bugs), so the shared server stays clean."""
    from ragstore_cli.backends.neo4j.session import Bolt

    async def go() -> None:
        bolt = Bolt(load_settings(environ=bolt_env))
        await bolt.open()
        try:
            for label in labels:
                await bolt.run(f"MATCH (n:`{label}`) DETACH DELETE n")
        finally:
            await bolt.close()

    if labels:
        asyncio.run(go())


def drop_graph(env: dict[str, str], workspace: str) -> None:
    """Clean-up: drop the workspace's graph if it is (still) there."""
    from ragstore_cli.engine.workspace_ops import drop_workspace
    from ragstore_cli.errors import UsageError

    try:
        asyncio.run(drop_workspace(load_settings(environ=env), "neo4j", workspace, yes=True))
    except UsageError as exc:
        if "nothing to drop" not in str(exc):
            raise


@pytest.fixture(scope="module")
def bolt_scenario(runner, archive, old_archive, bolt_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("bolt-import")
    ws = "fb_" + uuid.uuid4().hex[:8]

    def target(name: str) -> dict[str, str]:
        return {**bolt_env, "WORKING_DIR": str(root / name), "EMBEDDING_MODEL": "fake-embed"}

    library_import(target("template"), old_archive, BOLT_PROFILE, ws + "_t")
    initial = snapshot(target("template"), BOLT_PROFILE, ws + "_t")
    env = target("clean")
    count = runner.run(import_args(archive, BOLT_PROFILE, ws + "_c"), env, fault=Fault(BOLT_HOOKS))
    assert count.code == 0, count.describe()
    reference = snapshot(env, BOLT_PROFILE, ws + "_c")
    assert not compare(reference, initial).equal
    yield {"root": root, "ws": ws, "target": target, "reference": reference, "initial": initial,
           "points": kill_points("import-bolt", count.trace["calls"], K), "calls": count.trace["calls"]}
    drop_graph(bolt_env, ws + "_t")
    drop_graph(bolt_env, ws + "_c")


@pytest.mark.parametrize("i", range(K))
def test_import_into_bolt_killed(bolt_scenario, runner, archive, old_archive, bolt_env, bolt_name, i):
    s = bolt_scenario
    at, mode = s["points"][i]
    ws = f"{s['ws']}_{i}"
    env = s["target"](f"k{i}")
    library_import(env, old_archive, BOLT_PROFILE, ws)  # the same older state as the scenario's template
    args = import_args(archive, BOLT_PROFILE, ws)
    staged: set[str] = set()  # every earlier test removed what its kill left staged
    try:
        with fault_record(f"import archive → neo4j ({bolt_name})", f"call {at}/{s['calls']} {mode}") as entry:
            killed = runner.run(args, env, fault=Fault(BOLT_HOOKS, at, mode))
            entry["point"] += f" ({killed.trace.get('name', '?')})"
            settle(runner, args, env, killed, s["initial"], s["reference"], lambda: snapshot(env, BOLT_PROFILE, ws), entry)
            check_final(s["reference"], snapshot(env, BOLT_PROFILE, ws), entry)
            leaked = set(staged_labels(bolt_env)) - staged
            entry["leftovers"] = sorted(leaked)  # staged nodes a kill left behind (test_known_bugs)
    finally:
        drop_graph(bolt_env, ws)
        remove_staged(bolt_env, set(staged_labels(bolt_env)) - staged)


# --------------------------------------------------------------------------- kills at seeded times
T = 6


@pytest.mark.parametrize("i", range(T))
def test_import_into_postgres_killed_at_a_seeded_time(pg_scenario, runner, archive, i):
    """The child is SIGKILLed after a seeded delay within a clean run's duration (no hooks)."""
    import random

    s = pg_scenario
    env = s["database"]()
    args = import_args(archive, "postgres", "w")
    if "seconds" not in s:
        timing = runner.run(args, s["database"]())
        assert timing.code == 0, timing.describe()
        s["seconds"] = timing.seconds
    delay = random.Random(f"{harness.SEED}:time:{i}").uniform(0.05, s["seconds"])
    with fault_record("import archive → postgres (kill at a seeded time)", f"{delay:.2f}s of {s['seconds']:.2f}s") as entry:
        killed = runner.run(args, env, kill_after=delay)
        settle(runner, args, env, killed, s["initial"], s["reference"], lambda: snapshot(env, "postgres", "w"), entry)
        check_final(s["reference"], snapshot(env, "postgres", "w"), entry)
