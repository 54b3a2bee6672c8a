"""files workspace copy/rename are all-or-nothing; leftovers of killed copies and exports are removed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ragstore_cli.archive.writer import ArchiveWriter, spool_prefix
from ragstore_cli.engine import workspace_ops
from ragstore_cli.backends.files import staging_name
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def make_workspace(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kv_store_full_docs.json").write_text(json.dumps({"d": {"content": "D"}}), encoding="utf-8")
    (folder / "kv_store_text_chunks.json").write_text(json.dumps({"c": {"content": "C"}}), encoding="utf-8")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


async def test_copy_removes_a_dead_runs_staging_and_keeps_a_live_ones(tmp_path):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)})
    want = make_workspace(tmp_path / "src")
    dead = tmp_path / staging_name("dst", dead_pid())
    live = tmp_path / staging_name("dst", os.getppid())
    other = tmp_path / staging_name("elsewhere", dead_pid())
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "kv_store_full_docs.json").write_text("{", encoding="utf-8")  # half a copy
    await workspace_ops.copy_workspace(settings, "files", "src", "dst")
    assert files_of(tmp_path / "dst") == want and files_of(tmp_path / "src") == want
    assert not dead.exists() and live.exists() and other.exists()  # only the target's dead staging goes
    listed = await workspace_ops.list_workspaces(settings, "files")
    assert [w["workspace"] for w in listed["workspaces"]] == ["dst", "src"]  # staging folders are hidden


async def test_failed_copy_leaves_no_target_and_no_staging(tmp_path, monkeypatch):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)})
    make_workspace(tmp_path / "src")
    real = shutil.copy2
    calls: list[str] = []

    def flaky(src: str, dst: str) -> str:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(shutil, "copy2", flaky)
    with pytest.raises(OSError):
        await workspace_ops.copy_workspace(settings, "files", "src", "dst")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".ragstore")) == ["src"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ragstore-copy-")]


async def test_rename_is_one_folder_rename(tmp_path, monkeypatch):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)})
    want = make_workspace(tmp_path / "src")
    (tmp_path / "dst").mkdir()  # an empty folder (e.g. `workspace create`) is replaced
    renames: list[tuple[str, str]] = []
    real = os.rename

    def counting(src: str, dst: str) -> None:
        renames.append((os.path.basename(src), os.path.basename(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "rename", counting)
    await workspace_ops.copy_workspace(settings, "files", "src", "dst", move=True)
    assert renames == [("src", "dst")]
    assert files_of(tmp_path / "dst") == want and not (tmp_path / "src").exists()


async def test_default_workspace_and_busy_targets_are_refused(tmp_path):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)})
    root = make_workspace(tmp_path)
    make_workspace(tmp_path / "sub")
    with pytest.raises(UsageError, match="cannot rename the default workspace"):
        await workspace_ops.copy_workspace(settings, "files", "", "moved", move=True)
    with pytest.raises(UsageError, match="INTO the default workspace"):
        await _copy_into_root(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not an empty folder"):
        await workspace_ops.copy_workspace(settings, "files", "sub", "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text(encoding="utf-8") == "mine"
    copied = await workspace_ops.copy_workspace(settings, "files", "", "fromroot")  # copying FROM "" works
    assert copied["backends"]["files"]["method"] == "native"
    assert files_of(tmp_path / "fromroot") == {k: v for k, v in root.items() if k.startswith("kv_store_")}


async def _copy_into_root(root: Path) -> None:
    """workspace_ops refuses "" as a target while the root holds files; the backend refuses it always."""
    from ragstore_cli.backends.files import FilesBackend

    backend = FilesBackend(load_settings(environ={"WORKING_DIR": str(root)}), "sub")
    await backend.copy_workspace("")


def test_export_removes_dead_spools_and_partial_but_not_a_live_ones(tmp_path):
    out = tmp_path / "a.ragstore"
    dead = tmp_path / (spool_prefix(out, dead_pid()) + "x1")
    other_output = tmp_path / (spool_prefix(tmp_path / "b.ragstore", dead_pid()) + "x2")
    for folder in (dead, other_output):
        folder.mkdir()
    partial = tmp_path / "a.ragstore.partial"
    partial.write_bytes(b"half")
    ArchiveWriter(out, workspace="w").abort()
    assert not dead.exists() and not partial.exists() and other_output.exists()

    live = tmp_path / (spool_prefix(out, os.getppid()) + "x3")
    live.mkdir()
    partial.write_bytes(b"being written")
    ArchiveWriter(out, workspace="w").abort()  # its own abort removes only its own spool (it wrote no partial)
    assert live.exists() and partial.read_bytes() == b"being written"
