"""One migrator at a time: two `migrate upgrade` processes, and a lock held past --lock-timeout."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import asyncpg

from ragstore_cli.schema import catalog
from ragstore_cli.schema.migrator import LOCK_CLASS, LOCK_OBJECT
from tests.schema.conftest import pg


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "EMBEDDING_"))}
    full.update(env)
    return subprocess.Popen([sys.executable, "-m", "ragstore_cli", "--json", "migrate", *args],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _holder(env: dict[str, str]) -> asyncpg.Connection:
    conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"],
                                 server_settings={"application_name": "schema-test-holder"})
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, LOCK_OBJECT)
    return conn


async def _waiting_migrators(env: dict[str, str], expected: int, timeout: float = 30.0) -> None:
    conn = await pg(env)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ragstore migrate' "
                                    "AND datname = current_database()")
            if n >= expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{expected} migrators never showed up")
    finally:
        await conn.close()


async def test_two_concurrent_upgrades_one_waits_and_the_schema_is_right(pg_database):
    holder = await _holder(pg_database)
    procs = [_spawn(pg_database, "upgrade", "--lock-timeout", "60") for _ in range(2)]
    try:
        await _waiting_migrators(pg_database, 2)
        await holder.close()  # both are now polling for the lock; release it
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    docs = [json.loads(out) for out, _ in outs]
    applied = sorted(len(d["applied"]) for d in docs)
    assert applied == [0, 12]  # one ran the chain, the other found the work done
    assert all(d["lock_waited_s"] > 0 for d in docs)
    conn = await pg(pg_database)
    try:
        assert await conn.fetchval("SELECT version_num FROM ragstore_alembic_version") == "0012"
        assert await conn.fetchval("SELECT count(*) FROM ragstore_alembic_version") == 1
        found = await catalog.fingerprint(conn)
        assert catalog.differences(found, catalog.EXPECTED["0012"]) == []
        assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
    finally:
        await conn.close()


async def test_lock_timeout_exits_3_naming_the_holder(pg_database):
    holder = await _holder(pg_database)
    try:
        pid = holder.get_server_pid()
        started = time.monotonic()
        proc = _spawn(pg_database, "upgrade", "--lock-timeout", "1")
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        await holder.close()
    assert proc.returncode == 3, err
    assert f"pid {pid}" in err and "schema-test-holder" in err
    assert elapsed >= 1.0
    assert json.loads(out)["exit_code"] == 3
    conn = await pg(pg_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('ragstore_alembic_version')") is None
    finally:
        await conn.close()


async def test_ddl_on_a_busy_table_retries_instead_of_blocking_writers(pg_database):
    """A reader's open transaction holds the table: ALTER must not queue writers behind it for long."""
    from ragstore_cli.schema import api
    from tests.schema.conftest import settings_for

    settings = settings_for(pg_database)
    await api.upgrade(settings, "0001")
    reader, writer = await pg(pg_database), await pg(pg_database)
    waits: list[float] = []
    try:
        await reader.execute("BEGIN")
        await reader.fetch("SELECT * FROM lightrag_llm_cache")  # ACCESS SHARE until COMMIT

        async def write_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                started = time.monotonic()
                await writer.execute("INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt) "
                                     "VALUES ('w', $1, 'default', 'p')", f"default:extract:{n}")
                waits.append(time.monotonic() - started)
                n += 1
                await asyncio.sleep(0.02)

        upgrade = asyncio.create_task(api.upgrade(settings, "0002"))
        await write_for(2.0)
        assert not upgrade.done()  # still waiting for the reader, by retrying
        await reader.execute("COMMIT")
        result = await asyncio.wait_for(upgrade, 60)
    finally:
        await reader.close()
        await writer.close()
    assert result["to"] == "0002" and result["ddl_lock_retries"] >= 1
    assert len(waits) > 20 and max(waits) < 1.0, max(waits)
