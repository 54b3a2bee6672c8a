"""ragstore_cli.api: one coroutine per CLI command, a blocking twin of each in api.sync that refuses
inside a running event loop, and the twins doing the work outside one."""

from __future__ import annotations

import asyncio
import inspect
import shutil
from pathlib import Path

import pytest

from ragstore_cli import api
from ragstore_cli.api import sync
from ragstore_cli.errors import UsageError

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_workspace"


@pytest.fixture
def files_settings(tmp_path: Path) -> api.Settings:
    """A WORKING_DIR holding LightRAG's sample workspace as `ws1` (files backend only: no server)."""
    shutil.copytree(SAMPLE, tmp_path / "rag_storage" / "ws1")
    return api.load_settings(flags={"WORKING_DIR": str(tmp_path / "rag_storage")}, cwd=tmp_path)


def test_every_verb_is_a_coroutine_function_with_a_sync_twin_of_the_same_signature():
    assert set(api.VERBS) <= set(api.__all__) and set(sync.__all__) == set(api.VERBS)
    for verb in api.VERBS:
        asynchronous, blocking = getattr(api, verb), getattr(sync, verb)
        assert inspect.iscoroutinefunction(asynchronous), verb
        assert not inspect.iscoroutinefunction(blocking), verb
        assert inspect.signature(asynchronous) == inspect.signature(blocking), verb
        assert asynchronous.__doc__, verb


@pytest.mark.parametrize("verb, args", [
    ("export", ("never.ragstore",)),  # a coroutine underneath: asyncio.run would fail with its own message
    ("vectors_stats", ("never.json",)),  # a plain function underneath: it would block the loop
])
def test_a_sync_twin_inside_a_running_loop_refuses_with_a_clear_error(tmp_path: Path, verb: str, args: tuple):
    called = [str(tmp_path / a) for a in args]

    async def inside() -> None:
        getattr(sync, verb)(*called, workspace="ws1")

    with pytest.raises(UsageError) as refused:
        asyncio.run(inside())
    assert str(refused.value) == (f"ragstore_cli.api.sync.{verb}() blocks, and this thread runs an event loop: "
                                  f"use `await ragstore_cli.api.{verb}(...)` there instead")
    assert refused.value.exit_code == 2
    assert not (tmp_path / "never.ragstore").exists()


def test_the_sync_twins_do_the_work_outside_a_loop(files_settings: api.Settings, tmp_path: Path):
    report = sync.export(tmp_path / "ws1.ragstore", workspace="ws1", profile="files", settings=files_settings)
    assert isinstance(report, api.ExportReport) and report.counts["kv/full_docs"] == 4
    checked = sync.archive_verify(tmp_path / "ws1.ragstore")
    assert checked.records == sum(report.counts.values())
    assert {r["section"]: r["verified_records"] for r in checked.to_dict()["sections"]} == report.counts
    stats = sync.vectors_stats(workspace="ws1", settings=files_settings)
    assert stats["ok"] and {Path(f["path"]).name for f in stats["files"]} == {
        "vdb_chunks.json", "vdb_entities.json", "vdb_relationships.json"}


def test_the_async_verbs_run_side_by_side_on_one_loop(files_settings: api.Settings, tmp_path: Path):
    seen: list[str] = []

    async def main() -> tuple[api.ImportReport, api.ArchiveCheck]:
        await api.export(tmp_path / "a.ragstore", workspace="ws1", profile="files", settings=files_settings,
                         observer=api.Callbacks(progress=lambda key, records, nbytes: seen.append(key)))
        return await asyncio.gather(
            api.import_archive(tmp_path / "a.ragstore", workspace="ws2", profile="files", settings=files_settings),
            api.archive_verify(tmp_path / "a.ragstore"))

    loaded, checked = asyncio.run(main())
    assert isinstance(loaded, api.ImportReport) and sum(loaded.counts.values()) == checked.records
    assert "kv/full_docs" in seen
    assert sync.workspace_show("ws2", profile="files", settings=files_settings)["namespaces"]


def test_importing_the_api_loads_no_driver_so_the_cli_starts_fast():
    """Every command module imports ragstore_cli.api at start-up: the drivers and Alembic load only when
    a verb that needs them runs (`ragstore --help` must not wait for them)."""
    import subprocess
    import sys

    code = ("import sys, ragstore_cli.cli.app; from ragstore_cli import api; "
            "print(sorted(m for m in ('asyncpg', 'neo4j', 'redis', 'alembic', 'sqlalchemy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def keys_fit(document: dict, shape: type) -> None:
    """Every key the shape requires is there, and no key it does not name."""
    keys = set(document)
    assert shape.__required_keys__ <= keys <= shape.__required_keys__ | shape.__optional_keys__, (shape, keys)


def test_the_workspace_documents_have_the_shapes_the_api_declares(files_settings: api.Settings):
    listing = sync.workspace_list(profile="files", settings=files_settings)
    keys_fit(listing, api.WorkspaceListing)
    assert listing["workspaces"]
    for entry in listing["workspaces"]:
        keys_fit(entry, api.WorkspaceEntry)
    shown = sync.workspace_show("ws1", profile="files", settings=files_settings)
    keys_fit(shown, api.WorkspaceShown)
    assert shown["namespaces"]
    for row in shown["namespaces"]:
        keys_fit(row, api.NamespaceRow)
    keys_fit(sync.workspace_create("fresh", profile="files", settings=files_settings), api.WorkspaceCreated)
    for copied in (sync.workspace_copy("ws1", "ws3", profile="files", settings=files_settings),
                   sync.workspace_rename("ws3", "ws4", profile="files", settings=files_settings)):
        keys_fit(copied, api.WorkspaceCopied)
        for done in copied["backends"].values():
            keys_fit(done, api.BackendCopy)
    keys_fit(sync.workspace_drop("ws4", yes=True, profile="files", settings=files_settings), api.WorkspaceDropped)


def test_the_schema_documents_have_the_shape_the_api_declares(pg_database):
    settings = api.load_settings(environ=pg_database)
    before = sync.migrate_check(settings=settings)
    keys_fit(before, api.SchemaState)
    assert before["behind"] and before["revision"] is None and before["pending"]
    sync.migrate_upgrade(settings=settings)
    keys_fit(sync.migrate_current(settings=settings), api.SchemaState)
    assert sync.migrate_check(settings=settings)["pending"] == []
