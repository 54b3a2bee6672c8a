"""Real processes against real backends: mutual exclusion, SIGKILLed holders, the update-flag rule."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.coordination import get_namespace_data, open_coordinator
from ragstore_cli.errors import LockConflict
from tests.coordination.conftest import finish, spawn, wait_for_file

PROCESSES, ROUNDS = 4, 50


def test_n_processes_m_increments_end_at_n_times_m(backend_env: dict[str, str], tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [spawn(["count", "--counter", str(counter), "-n", str(ROUNDS), "--lease", "5"], backend_env, tmp_path)
             for _ in range(PROCESSES)]
    for proc in procs:
        finish(proc, timeout=180)
    assert int(counter.read_text()) == PROCESSES * ROUNDS


async def _holder_after_kill(env: dict[str, str], tmp_path: Path, lease: float | None) -> tuple[float, object]:
    """Start a holder, SIGKILL it, then time how long until this process gets the lock."""
    args = ["hold", "--key", "victim", "--command", "doomed"] + (["--lease", str(lease)] if lease else [])
    holder = spawn(args, env, tmp_path)
    wait_for_file(tmp_path / "ready", holder)
    settings = load_settings(environ=env, cwd=tmp_path)
    async with open_coordinator(settings, command="survivor", lease=lease) as coord:
        with pytest.raises(LockConflict) as caught:
            async with coord.lock("victim", timeout=0.2):
                pass
        assert "doomed" in str(caught.value) and f"pid {holder.pid}" in str(caught.value)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        seen = await coord.holder("victim")
        killed_at = time.monotonic()
        async with coord.lock("victim", timeout=30) as lease_obj:
            recovered = time.monotonic() - killed_at
            assert lease_obj.record.command == "survivor"
            current = await coord.holder("victim")
            assert current is not None and not current.stale and current.pid == lease_obj.record.pid
        assert await coord.holder("victim") is None
    return recovered, seen


async def test_file_holder_killed_is_stale_and_free_at_once(tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "file"}
    recovered, seen = await _holder_after_kill(env, tmp_path, None)
    assert seen is not None and seen.stale and "dead" in seen.stale_reason
    assert recovered < 1.0  # no lease, no session: only our own polling and a loaded machine


async def test_postgres_holder_killed_is_recovered_when_its_session_ends(tmp_path: Path, pg_database) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "postgres", **pg_database}
    recovered, seen = await _holder_after_kill(env, tmp_path, None)
    # the server notices the closed socket quickly; the row may still be judged before that
    assert seen is not None and seen.command == "doomed"
    assert recovered < 10


async def test_redis_holder_killed_is_recovered_when_its_lease_expires(tmp_path: Path, redis_env) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "redis", **redis_env}
    recovered, seen = await _holder_after_kill(env, tmp_path, 1.5)
    assert seen is not None and seen.stale and "dead" in seen.stale_reason
    assert 0.2 < recovered < 3.5  # not before the lease ran out, soon after


def test_update_flag_rule_loses_no_write(backend_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "shared.json"
    go = tmp_path / "go"
    procs = [spawn(["save", "--file", str(target), "--namespace", "kv", "--id", name, "-n", "25", "--lease", "5",
                    "--go", str(go), "--pause", "0.01"], backend_env, tmp_path) for name in ("a", "b")]
    for name in ("a", "b"):  # both have loaded: whoever saves second must find its flag set
        wait_for_file(tmp_path / f"go.{name}.ready", procs[0] if name == "a" else procs[1], timeout=60)
    go.write_text("go")
    reloads = [json.loads(finish(proc))["reloads"] for proc in procs]
    data = json.loads(target.read_text())
    assert sorted(data) == sorted([f"a-{i}" for i in range(25)] + [f"b-{i}" for i in range(25)])
    assert sum(reloads) >= 1  # the saves overlapped: some save found its flag set and reloaded


async def test_shared_namespace_data_counts_every_update(backend_env: dict[str, str], tmp_path: Path) -> None:
    namespace = f"status-{tmp_path.name}"  # the redis server is shared by the session
    procs = [spawn(["nsdata", "--namespace", namespace, "--id", f"p{i}", "-n", "20", "--lease", "5"], backend_env, tmp_path)
             for i in range(3)]
    for proc in procs:
        finish(proc, timeout=180)
    settings = load_settings(environ=backend_env, cwd=tmp_path)
    async with open_coordinator(settings) as coord:
        version, data = await get_namespace_data(coord, namespace)
    assert data == {"count": 60, "by": {"p0": 20, "p1": 20, "p2": 20}}
    assert version == 60
