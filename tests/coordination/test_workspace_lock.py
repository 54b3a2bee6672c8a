"""workspace_lock: the entry point other commands use; conflicts name the holder; auto backend."""

from __future__ import annotations

import os
import signal
import sys
import subprocess
import time
from pathlib import Path

import pytest

from ragstore_cli.coordination import probe_lightrag, resolve_backend, workspace_key, workspace_lock
from ragstore_cli.errors import EXIT_CONFLICT, LockConflict, UsageError
from tests.coordination.conftest import finish, spawn, wait_for_file


async def test_second_command_waits_then_names_the_holder(tmp_path: Path, make_settings) -> None:
    settings = make_settings({"RAGSTORE_LOCK_BACKEND": "file"})
    env = {"WORKING_DIR": str(settings.working_dir), "RAGSTORE_LOCK_BACKEND": "file"}
    holder = spawn(["hold", "--workspace", "books", "--command", "migrate", "--ready", "ready"], env, tmp_path)
    try:
        wait_for_file(tmp_path / "ready", holder)
        started = time.monotonic()
        with pytest.raises(LockConflict) as caught:
            async with workspace_lock(settings, "books", command="export", timeout=0.4):
                pass
        waited = time.monotonic() - started
        assert 0.35 <= waited < 5
        message = str(caught.value)
        assert caught.value.exit_code == EXIT_CONFLICT
        for part in ("workspace:books", "migrate", f"pid {holder.pid}", os.uname().nodename, "owner "):
            assert part in message
        # another workspace is independent
        async with workspace_lock(settings, "films", command="export", timeout=0.5) as lease:
            assert lease.record.command == "export"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # the kernel dropped the dead holder's flock: the lock is free at once
    started = time.monotonic()
    async with workspace_lock(settings, "books", command="export", timeout=5) as lease:
        assert lease.record.key == "workspace:books"
    assert time.monotonic() - started < 1


async def test_waiting_command_gets_the_lock_when_the_holder_finishes(tmp_path: Path, make_settings) -> None:
    settings = make_settings({"RAGSTORE_LOCK_BACKEND": "file"})
    env = {"WORKING_DIR": str(settings.working_dir)}
    holder = spawn(["hold", "--workspace", "", "--backend", "file", "--seconds", "0.7"], env, tmp_path)
    wait_for_file(tmp_path / "ready", holder)
    async with workspace_lock(settings, "", command="import", timeout=30) as lease:
        assert lease.record.key == "workspace"
    finish(holder)


def test_auto_backend_follows_the_data(make_settings) -> None:
    assert resolve_backend(make_settings()) == "file"
    assert resolve_backend(make_settings({"LIGHTRAG_KV_STORAGE": "PGKVStorage"})) == "postgres"
    assert resolve_backend(make_settings({"LIGHTRAG_DOC_STATUS_STORAGE": "RedisDocStatusStorage"})) == "redis"
    assert resolve_backend(make_settings({"LIGHTRAG_KV_STORAGE": "RedisKVStorage",
                                          "LIGHTRAG_VECTOR_STORAGE": "PGVectorStorage"})) == "postgres"
    assert resolve_backend(make_settings({"RAGSTORE_LOCK_BACKEND": "memory"})) == "memory"
    assert resolve_backend(make_settings(), "redis") == "redis"
    with pytest.raises(UsageError):
        resolve_backend(make_settings(), "zookeeper")


def test_workspace_keys_are_validated() -> None:
    assert workspace_key("") == "workspace"
    assert workspace_key(None) == "workspace"
    assert workspace_key("a-b") == "workspace:a-b"
    with pytest.raises(UsageError):
        workspace_key("../x")


def test_probe_says_cannot_tell_without_evidence(tmp_path: Path) -> None:
    folder = tmp_path / "rag"
    folder.mkdir()
    presence = probe_lightrag(folder)
    assert presence.verdict == "cannot-tell"
    assert "cannot tell" in presence.message and presence.evidence == []


def test_probe_sees_a_lightrag_process_using_the_dir(tmp_path: Path) -> None:
    folder = tmp_path / "rag"
    folder.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "WORKING_DIR": str(folder)}
    # argv[1] names it like the server; the process only sleeps
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "lightrag-server"], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        presence = probe_lightrag(folder)
        while presence.verdict != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            presence = probe_lightrag(folder)
        assert presence.verdict == "running"
        assert any(str(proc.pid) in line for line in presence.evidence)
        assert probe_lightrag(tmp_path / "elsewhere").verdict == "cannot-tell"
    finally:
        proc.kill()
        proc.wait(10)


def test_probe_notices_fresh_temp_files(tmp_path: Path) -> None:
    folder = tmp_path / "rag"
    folder.mkdir()
    (folder / "kv_store_full_docs.json.tmp.1.2.3").write_text("{}")
    assert probe_lightrag(folder).verdict == "possibly-running"
