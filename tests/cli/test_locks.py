"""`ragstore locks list|show|break|wait` against real holders in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from tests.coordination.conftest import finish, spawn, wait_for_file


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_list_on_an_empty_working_dir(cli, tmp_path: Path) -> None:
    result = cli("locks", "list", "--json", "--working-dir", str(tmp_path / "rag"))
    assert result.exit_code == 0, result.output
    document = result.json()
    assert document["backend"] == "file" and document["locks"] == []
    assert document["lightrag"]["verdict"] == "cannot-tell"
    assert not (tmp_path / "rag").exists()  # looking creates nothing


def test_file_lock_lifecycle(cli, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "file"}
    holder = spawn(["hold", "--workspace", "books", "--command", "import"], env, tmp_path)
    try:
        wait_for_file(tmp_path / "ready", holder)
        listed = cli("--json", "locks", "list", env=env)
        assert listed.exit_code == 0, listed.output
        [lock] = listed.json()["locks"]
        assert (lock["key"], lock["pid"], lock["command"], lock["stale"]) == ("workspace:books", holder.pid, "import", False)
        assert lock["host"] == os.uname().nodename and lock["age_s"] >= 0

        shown = cli("locks", "show", "workspace:books", "--json", env=env)
        assert shown.json()["held"] is True and shown.json()["holder"]["owner"] == lock["owner"]
        human = cli("locks", "list", env=env)
        assert "workspace:books" in human.stdout and "import" in human.stdout

        waited = cli("locks", "wait", "workspace:books", "--timeout", "0.3", env=env)
        assert waited.exit_code == 3
        assert f"pid {holder.pid}" in waited.stderr and "import" in waited.stderr
        assert "Traceback" not in waited.output

        refused = cli("locks", "break", "workspace:books", env=env)
        assert refused.exit_code == 3 and "--force" in refused.stderr

        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        [stale] = cli("--json", "locks", "list", env=env).json()["locks"]
        assert stale["stale"] is True and "dead" in stale["stale_reason"]
        assert "STALE" in cli("locks", "list", env=env).stdout

        broken = cli("--json", "locks", "break", "workspace:books", env=env)
        assert broken.exit_code == 0, broken.output
        assert broken.json()["broken"]["pid"] == holder.pid
        assert cli("--json", "locks", "list", env=env).json()["locks"] == []
        log = [json.loads(line) for line in (tmp_path / "rag/.ragstore/breaks.jsonl").read_text().splitlines()]
        assert log[-1]["key"] == "workspace:books" and log[-1]["by"]["pid"] == os.getpid()
        assert cli("locks", "show", "workspace:books", "--json", env=env).json()["held"] is False
    finally:
        _kill(holder)


def test_wait_returns_when_the_holder_finishes(cli, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag")}
    holder = spawn(["hold", "--key", "job", "--backend", "file", "--seconds", "0.8"], env, tmp_path)
    wait_for_file(tmp_path / "ready", holder)
    result = cli("--json", "locks", "wait", "job", "--timeout", "20", env=env)
    assert result.exit_code == 0, result.output
    assert result.json()["free"] is True and 0.1 < result.json()["waited_s"] < 20
    finish(holder)


def test_bad_input_is_one_line(cli, tmp_path: Path) -> None:
    for args, code in ((["locks", "list", "--backend", "zookeeper"], 2), (["locks", "break", "nothing"], 2),
                       (["locks", "wait", "k", "--timeout", "-1"], 2), (["locks", "show", ""], 2),
                       (["locks", "wait", "x" * 2000], 2)):
        result = cli(*args, env={"WORKING_DIR": str(tmp_path / "rag")})
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
    down = cli("locks", "list", "--backend", "redis", env={"REDIS_URI": "redis://127.0.0.1:1"})
    assert down.exit_code == 1 and down.stderr.startswith("error: redis:") and down.stderr.count("\n") == 1


def test_postgres_list_shows_holders_and_other_tools(cli, tmp_path: Path, pg_database) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "postgres", **pg_database}
    holder = spawn(["hold", "--key", "workspace:films", "--command", "export"], env, tmp_path)
    code = ("import asyncio, asyncpg, os, sys, pathlib\n"
            "async def main():\n"
            "    c = await asyncpg.connect(host=os.environ['POSTGRES_HOST'], port=int(os.environ['POSTGRES_PORT']),"
            " user=os.environ['POSTGRES_USER'], password=os.environ['POSTGRES_PASSWORD'],"
            " database=os.environ['POSTGRES_DATABASE'], server_settings={'application_name': 'other-tool'})\n"
            "    await c.execute('SELECT pg_advisory_lock(987654)')\n"
            "    pathlib.Path('other-ready').write_text('1')\n"
            "    await asyncio.sleep(60)\n"
            "asyncio.run(main())\n")
    other = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **pg_database}, cwd=tmp_path)
    try:
        wait_for_file(tmp_path / "ready", holder)
        wait_for_file(tmp_path / "other-ready", other)
        document = cli("--json", "locks", "list", env=env).json()
        [lock] = document["locks"]
        assert (lock["key"], lock["command"], lock["pid"], lock["stale"]) == ("workspace:films", "export", holder.pid, False)
        assert lock["session_pid"]
        foreign = document["other_advisory_locks"]
        assert [(f["lock_id"], f["application_name"]) for f in foreign] == [(987654, "other-tool")]
        assert "other-tool" in cli("locks", "list", env=env).stdout

        forced = cli("--json", "locks", "break", "workspace:films", "--force", env=env)
        assert forced.exit_code == 0, forced.output
        assert forced.json()["broken"]["session_pid"] == lock["session_pid"]
        deadline = time.monotonic() + 10
        while cli("--json", "locks", "list", env=env).json()["locks"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cli("--json", "locks", "list", env=env).json()["locks"] == []
        assert cli("locks", "wait", "workspace:films", "--timeout", "5", env=env).exit_code == 0
    finally:
        _kill(holder)
        _kill(other)


def test_redis_lease_and_token_are_shown(cli, tmp_path: Path, redis_env) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "redis", **redis_env}
    holder = spawn(["hold", "--key", "cli-redis", "--command", "copy", "--lease", "1.5"], env, tmp_path)
    try:
        wait_for_file(tmp_path / "ready", holder)
        time.sleep(1.2)  # past most of the first lease: renewal must have kept it
        [lock] = [x for x in cli("--json", "locks", "list", env=env).json()["locks"] if x["key"] == "cli-redis"]
        assert lock["token"] >= 1 and lock["lease_expires"] > time.time() and lock["stale"] is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        shown = cli("--json", "locks", "show", "cli-redis", env=env).json()
        assert shown["holder"]["stale"] is True and shown["held"] is False
        assert cli("locks", "wait", "cli-redis", "--timeout", "5", env=env).exit_code == 0
    finally:
        _kill(holder)


def test_looking_at_postgres_locks_changes_nothing(cli, pg_database) -> None:
    import asyncio

    import asyncpg

    env = {"RAGSTORE_LOCK_BACKEND": "postgres", **pg_database}
    assert cli("--json", "locks", "list", env=env).json()["locks"] == []
    assert cli("--json", "locks", "show", "workspace:x", env=env).json()["held"] is False
    assert cli("locks", "break", "workspace:x", env=env).exit_code == 2

    async def tables() -> list[str]:
        conn = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                     user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                     database=pg_database["POSTGRES_DATABASE"])
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'ragstore_%'")]
        finally:
            await conn.close()

    assert asyncio.run(tables()) == []
    assert cli("locks", "wait", "workspace:x", "--timeout", "1", env=env).exit_code == 0  # a write: creates them
    assert sorted(asyncio.run(tables())) == ["ragstore_lock_breaks", "ragstore_locks", "ragstore_namespaces"]


def test_human_output_keeps_brackets_in_keys_and_reasons(cli, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "file"}
    holder = spawn(["hold", "--key", "g:[A]", "--command", "m [b]"], env, tmp_path)  # short: no column folding
    try:
        wait_for_file(tmp_path / "ready", holder)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        listed = cli("locks", "list", env=env).stdout.replace("\n", " ")
        assert "g:[A]" in listed and "m [b]" in listed
        broken = cli("locks", "break", "g:[A]", env=env)
        assert broken.exit_code == 0, broken.output
        assert "g:[A]" in broken.stdout and "[stale:" in broken.stdout
    finally:
        _kill(holder)
