"""Bugs the fault runs found, each reproduced at one deterministic point (strict xfail until fixed)."""

from __future__ import annotations

import json
import shutil


from tests.faults import harness
from tests.faults.conftest import SRC
from tests.faults.harness import Fault, compare, snapshot
from tests.faults.test_export_kills import archive_records, leftovers
from tests.faults.test_import_kills import BOLT_PROFILE, drop_graph, import_args, library_import, remove_staged, staged_labels


def test_files_workspace_copy_killed_after_one_file_is_finished_by_a_rerun(runner, source, tmp_path):
    wd = tmp_path / "wd"
    shutil.copytree(source.working_dir / SRC, wd / SRC)
    env = {"WORKING_DIR": str(wd)}
    args = ["workspace", "copy", SRC, "dst", "--profile", "files"]
    killed = runner.run(args, env, fault=Fault(("shutil:copy2",), 2, "before"))  # the first file is staged
    assert killed.killed, killed.describe()
    again = runner.run(args, env)
    assert again.code == 0, again.describe()
    assert compare(snapshot(env, "files", SRC), snapshot(env, "files", "dst")).equal


def test_killed_export_leaves_no_spool_behind_once_rerun(runner, source_env, tmp_path):
    out = tmp_path / "a.ragstore"
    args = ["export", "--from", "files", "--workspace", SRC, "--batch-size", "5", "-o", str(out)]
    killed = runner.run(args, source_env, fault=Fault(("ragstore_cli.archive.writer:SectionWriter.write",), 20))
    assert killed.killed, killed.describe()
    again = runner.run(args, source_env)
    assert again.code == 0, again.describe()
    assert archive_records(out)
    assert leftovers(tmp_path) == []


# Fixed: the importer calls the Bolt backend's cleanup_stale_imports() under the workspace lock.
def test_killed_bolt_import_leaves_no_staged_nodes_once_resumed(runner, archive, bolt_env, tmp_path):
    env = {**bolt_env, "WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    before = set(staged_labels(bolt_env))
    args = import_args(archive, BOLT_PROFILE, "fb_stage")
    try:
        killed = runner.run(args, env, fault=Fault(("ragstore_cli.backends.neo4j.writer:GraphWriter.write",), 3))
        assert killed.killed, killed.describe()
        resumed = runner.run([*args, "--resume"], env)
        assert resumed.code == 0, resumed.describe()
        assert set(staged_labels(bolt_env)) - before == set()
    finally:
        drop_graph(bolt_env, "fb_stage")
        remove_staged(bolt_env, set(staged_labels(bolt_env)) - before)


# Fixed: the report's `skipped` is taken before the load fills the ledger's `done`.
def test_fresh_import_reports_nothing_as_skipped(runner, archive, tmp_path):
    env = {"WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    result = runner.run([*import_args(archive, "files", "w"), "--json"], env)
    assert result.code == 0, result.describe()
    report = json.loads(result.stdout)
    assert report["resumed"] is False
    assert report["skipped"] == [], report["skipped"]


# Fixed: every PostgreSQL section of an import shares the backend's import unit (one transaction).
def test_killed_postgres_replace_import_leaves_old_or_new_never_mixed(runner, archive, old_archive, pg_database):
    env = {**pg_database, "EMBEDDING_MODEL": "fake-embed"}
    library_import(env, old_archive, "postgres", "w")
    old = snapshot(env, "postgres", "w")
    hooks = ("ragstore_cli.backends.postgres.copy:CopyWriter.commit",)
    killed = runner.run(import_args(archive, "postgres", "w"), env, fault=Fault(hooks, 2, "after"))
    assert killed.killed, killed.describe()
    after = snapshot(env, "postgres", "w")
    assert compare(old, after).equal, "the killed import left a mix of old and new sections"


def test_files_workspace_rename_killed_after_one_file_is_finished_by_a_rerun(runner, source, tmp_path):
    wd = tmp_path / "wd"
    shutil.copytree(source.working_dir / SRC, wd / SRC)
    env = {"WORKING_DIR": str(wd)}
    whole = snapshot(env, "files", SRC)
    args = ["workspace", "rename", SRC, "dst", "--profile", "files"]
    killed = runner.run(args, env, fault=Fault(("os:rename",), 1, "before"))  # all checked, about to move
    assert killed.killed, killed.describe()
    again = runner.run(args, env)
    assert again.code == 0, again.describe()
    assert compare(whole, snapshot(env, "files", "dst")).equal
    assert harness.total_records(snapshot(env, "files", SRC)) == 0


# Fixed: `workspace copy|rename` keep a journal (backends/workspace_transfer.py); a re-run restarts the copy.
def test_bolt_workspace_copy_killed_between_nodes_and_edges_is_finished_by_a_rerun(runner, archive, bolt_env, tmp_path):
    env = {**bolt_env, "WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    library_import(env, archive, "neo4j,files", "fb_copy_src")
    hooks = ("ragstore_cli.backends.neo4j.cypher:copy_edges_range",)
    args = ["workspace", "copy", "fb_copy_src", "fb_copy_dst", "--profile", "neo4j,files"]
    try:
        killed = runner.run(args, env, fault=Fault(hooks, 1, "before"))
        assert killed.killed, killed.describe()
        partial = snapshot(env, "neo4j,files", "fb_copy_dst")
        assert partial["graph/nodes"] and not partial["graph/edges"]  # the state the reason describes
        again = runner.run(args, env)
        assert again.code == 0, again.describe()
        assert compare(snapshot(env, "neo4j,files", "fb_copy_src")["graph/edges"],
                       snapshot(env, "neo4j,files", "fb_copy_dst")["graph/edges"]).equal
    finally:
        drop_graph(bolt_env, "fb_copy_src")
        drop_graph(bolt_env, "fb_copy_dst")
