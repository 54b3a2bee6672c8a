"""Locks in one process: keyed locks, timeouts, no growth with keys ever locked, inspection and breaking."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import gc
import json
from pathlib import Path

import asyncpg
import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.coordination import open_coordinator
from ragstore_cli.coordination.base import Coordinator
from ragstore_cli.coordination.file import FileBackend
from ragstore_cli.coordination.memory import MemoryBackend
from ragstore_cli.errors import LockConflict, UsageError
from ragstore_cli.coordination.redis import BREAKS
from tests.coordination.conftest import spawn, wait_for_file


# What a test looks at inside a coordinator (the package keeps no method for tests): local gates,
# and each backend's stored holders and break log where docs/locks.md says they are.
def gate_count(coordinator: Coordinator) -> int:
    return len(coordinator._gates)


async def break_log(backend) -> list[dict]:
    if isinstance(backend, FileBackend):
        log = backend.root / "breaks.jsonl"
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    if backend.name == "postgres":
        rows = await backend._run("fetch", "SELECT key, broken, by_whom FROM ragstore_lock_breaks ORDER BY id")
        return [{"key": r["key"], "broken": r["broken"] and json.loads(r["broken"]), "by": json.loads(r["by_whom"])}
                for r in rows]
    return [json.loads(item) for item in reversed(await backend.client.lrange(BREAKS, 0, -1))]


@pytest.fixture(params=["memory", "file", "postgres", "redis"])
def coordinator(request, make_settings):
    env: dict[str, str] = {}
    if request.param == "postgres":
        env.update(request.getfixturevalue("pg_database"))
    elif request.param == "redis":
        env.update(request.getfixturevalue("redis_env"))
    if request.param == "memory":
        return Coordinator(MemoryBackend(), command="test")
    return open_coordinator(make_settings(env), request.param, command="test", lease=5)


async def test_opposite_key_orders_do_not_deadlock(coordinator: Coordinator) -> None:
    done = []

    async def worker(keys: list[str], name: str) -> None:
        for _ in range(20):
            async with coordinator.keyed_lock(keys, namespace="graph", timeout=10) as leases:
                assert [lease.key for lease in leases] == ["graph:a", "graph:b"]
                await asyncio.sleep(0)
        done.append(name)

    try:
        await asyncio.wait_for(asyncio.gather(worker(["a", "b"], "x"), worker(["b", "a"], "y")), 60)
        assert sorted(done) == ["x", "y"]
        assert gate_count(coordinator) == 0
        assert await coordinator.holders() == []
    finally:
        await coordinator.close()


async def test_keyed_timeout_releases_what_it_took(coordinator: Coordinator) -> None:
    try:
        async with coordinator.lock("graph:b"):
            with pytest.raises(LockConflict) as caught:
                async with coordinator.keyed_lock(["a", "b"], namespace="graph", timeout=0.2):
                    pass
            assert "graph:b" in str(caught.value)
            assert [h.key for h in await coordinator.holders()] == ["graph:b"]  # graph:a was released
        async with coordinator.keyed_lock(["a", "b"], namespace="graph", timeout=1):
            held = sorted(h.key for h in await coordinator.holders())
            assert held == ["graph:a", "graph:b"]
    finally:
        await coordinator.close()


async def test_holder_record_is_complete(coordinator: Coordinator) -> None:
    try:
        async with coordinator.lock("rec", command="export") as lease:
            record = await coordinator.holder("rec")
            assert record is not None and not record.stale
            assert (record.owner, record.pid, record.command) == (lease.record.owner, os.getpid(), "export")
            assert record.host == os.uname().nodename and abs(record.acquired_at - time.time()) < 5
            if coordinator.name == "redis":
                assert record.token and record.lease_expires and record.lease_expires > time.time()
            if coordinator.name == "postgres":
                assert record.session_pid
        assert await coordinator.holder("rec") is None
    finally:
        await coordinator.close()


async def test_no_growth_with_distinct_keys(coordinator: Coordinator) -> None:
    count = {"memory": 20_000, "file": 20_000, "postgres": 2_000, "redis": 2_000}[coordinator.name]
    prefix = f"growth-{os.getpid()}-{time.monotonic_ns()}-"  # the redis server is shared by the session
    try:
        for i in range(count):
            if i == count // 2:
                gc.collect()
                half = len(gc.get_objects())
            async with coordinator.lock(f"{prefix}{i}"):
                pass
        gc.collect()
        grown = len(gc.get_objects()) - half
        assert grown < 200, grown  # a leak per key would add ~count/2 objects
        assert gate_count(coordinator) == 0
        assert [h for h in await coordinator.holders() if h.key.startswith(prefix)] == []
        backend = coordinator.backend
        if isinstance(backend, FileBackend):
            assert len(os.listdir(backend.locks)) == 2  # keys.lock + holders.slots, whatever the number of keys
        elif isinstance(backend, MemoryBackend):
            assert backend._held == {}
        elif coordinator.name == "postgres":
            assert await backend._run("fetchval", "SELECT count(*) FROM ragstore_locks") == 0
        else:
            assert [k async for k in backend.client.scan_iter(match=f"ragstore:{{locks}}:{prefix}*")] == []
    finally:
        await coordinator.close()


@pytest.mark.parametrize("name", ["file", "postgres", "redis"])
async def test_list_mark_stale_and_break(name: str, request, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": name}
    if name == "postgres":
        env.update(request.getfixturevalue("pg_database"))
    elif name == "redis":
        env.update(request.getfixturevalue("redis_env"))
    settings = load_settings(environ=env, cwd=tmp_path)
    live = spawn(["hold", "--key", "live", "--command", "import", "--ready", "ready-live", "--lease", "30"], env, tmp_path)
    dead = spawn(["hold", "--key", "dead", "--command", "export", "--ready", "ready-dead", "--lease", "30"], env, tmp_path)
    async with open_coordinator(settings, command="ops", lease=30) as coord:
        try:
            wait_for_file(tmp_path / "ready-live", live)
            wait_for_file(tmp_path / "ready-dead", dead)
            held = {h.key: h for h in await coord.holders()}
            assert set(held) == {"live", "dead"} and not any(h.stale for h in held.values())
            assert held["live"].pid == live.pid and held["live"].command == "import"
            dead.send_signal(signal.SIGKILL)
            dead.wait(10)
            record = None
            for _ in range(100):  # postgres needs its server to notice the closed session
                record = await coord.holder("dead")
                if record is not None and record.stale:
                    break
                await asyncio.sleep(0.1)
            assert record is not None and record.stale, record
            expected = {"file": "dead", "postgres": "session", "redis": "dead"}[name]
            assert expected in record.stale_reason
            with pytest.raises(LockConflict):
                await coord.break_lock("live")
            broken = await coord.break_lock("dead")
            assert broken.broken.pid == dead.pid and broken.by["pid"] == os.getpid()
            assert await coord.holder("dead") is None
            forced = await coord.break_lock("live", force=True)
            assert forced.broken.pid == live.pid
            async with coord.lock("live", timeout=5) as lease:  # the live holder lost it to --force
                assert lease.record.command == "ops"
            log = await break_log(coord.backend)
            assert [entry["key"] for entry in log] == ["dead", "live"]
            assert log[0]["by"]["command"] == "locks break" and log[0]["broken"]["command"] == "export"
            with pytest.raises(UsageError):
                await coord.break_lock("never-held")
        finally:
            for proc in (live, dead):
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)


async def test_postgres_lists_other_tools_advisory_locks(pg_database, make_settings) -> None:
    settings = make_settings(pg_database)
    other = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                  user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                  database=pg_database["POSTGRES_DATABASE"], server_settings={"application_name": "age-writer"})
    try:
        await other.execute("SELECT pg_advisory_lock(424242), pg_advisory_lock(7, 8)")
        other_pid = await other.fetchval("SELECT pg_backend_pid()")
        async with open_coordinator(settings, "postgres") as coord:
            async with coord.lock("ours"):
                foreign = await coord.backend.foreign_locks()
        assert {(f["pid"], str(f["lock_id"])) for f in foreign} == {(other_pid, "424242"), (other_pid, "[7, 8]")}
        assert all(f["application_name"] == "age-writer" and f["granted"] for f in foreign)
    finally:
        await other.close()


async def test_postgres_holder_whose_session_was_ended_learns_it_and_reconnects(pg_database, make_settings) -> None:
    settings = make_settings(pg_database)
    async with open_coordinator(settings, "postgres", command="a") as a, open_coordinator(settings, "postgres") as b:
        lease = await a.acquire("victim")
        result = await b.break_lock("victim", force=True)  # ends a's session
        assert result.broken.owner == lease.record.owner
        await a.release(lease)
        assert lease.lost
        assert gate_count(a) == 0
        async with a.lock("victim", timeout=5) as again:  # a new session
            assert (await b.holder("victim")).owner == again.record.owner


def test_forked_child_does_not_keep_its_parents_file_locks(tmp_path: Path, make_settings) -> None:
    import multiprocessing

    settings = make_settings()

    async def take() -> tuple[Coordinator, object]:
        coord = open_coordinator(settings, "file")
        return coord, await coord.acquire("inherited")

    loop = asyncio.new_event_loop()
    try:
        coord, lease = loop.run_until_complete(take())
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        child.start()
        try:
            loop.run_until_complete(coord.close())  # the parent lets go (as if it died)
            other = open_coordinator(settings, "file")
            loop.run_until_complete(other.acquire("inherited", timeout=2))  # not held by the sleeping child
            loop.run_until_complete(other.close())
        finally:
            child.kill()
            child.join(10)
    finally:
        loop.close()


async def test_redis_lease_is_renewed_fenced_and_lost_when_taken(redis_env, make_settings) -> None:
    settings = make_settings(redis_env)
    key = f"lease-{time.monotonic_ns()}"
    async with open_coordinator(settings, "redis", lease=0.6) as a, open_coordinator(settings, "redis", lease=0.6) as b:
        async with a.lock(key) as first:
            await asyncio.sleep(1.5)  # 2.5 leases: only renewal keeps it
            with pytest.raises(LockConflict):
                async with b.lock(key, timeout=0.1):
                    pass
            assert not first.lost
        async with b.lock(key, timeout=1) as second:
            assert second.record.token > first.record.token  # fencing tokens only grow
            await b.break_lock(key, force=True)  # someone takes it away: the renewal notices
            for _ in range(50):
                if second.lost:
                    break
                await asyncio.sleep(0.05)
            assert second.lost


async def test_in_process_waiters_respect_their_deadline(coordinator: Coordinator) -> None:
    try:
        async with coordinator.lock("gate"):
            waiter = asyncio.create_task(coordinator.acquire("gate", timeout=5))
            await asyncio.sleep(0.01)
            started = time.monotonic()
            with pytest.raises(LockConflict):
                await coordinator.acquire("gate", timeout=0.2)  # queued behind a holder and a waiter
            assert time.monotonic() - started < 2
        lease = await asyncio.wait_for(waiter, 5)  # the first waiter gets it once released
        await coordinator.release(lease)
        assert gate_count(coordinator) == 0
    finally:
        await coordinator.close()
