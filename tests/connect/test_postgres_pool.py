"""The asyncpg pool factory: size cap, server settings, transient-only retries with backoff."""

from __future__ import annotations

import time

import asyncpg
import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.connect.postgres import connect, create_pool, with_retries
from ragstore_cli.embedded.postgres import free_port
from ragstore_cli.errors import ConnectionFailed
from tests.servers import StartingPostgres


async def test_pool_honours_max_connections_and_server_settings(pg_env, tmp_path):
    env = {**pg_env, "POSTGRES_MAX_CONNECTIONS": "3", "POSTGRES_SERVER_SETTINGS": "work_mem=7MB"}
    settings = load_settings(environ=env, cwd=tmp_path)
    pool = await create_pool(settings, max_size=20)
    try:
        assert pool.get_max_size() == 3
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") == "7MB"
            assert await conn.fetchval("SHOW application_name") == "ragstore"
    finally:
        await pool.close()


async def test_transient_errors_are_retried_with_backoff(tmp_path):
    calls, failed = [], []
    starting = StartingPostgres()

    async def starting_up():
        calls.append(time.monotonic())
        try:
            return await asyncpg.connect(host="127.0.0.1", port=starting.port, user="x", password="y", timeout=2,
                                         ssl=False)
        finally:
            failed.append(time.monotonic())

    try:
        with pytest.raises(asyncpg.CannotConnectNowError):
            await with_retries(starting_up, retries=3, backoff=0.05, backoff_max=1)
    finally:
        starting.close()
    assert len(calls) == 3
    pauses = [calls[1] - failed[0], calls[2] - failed[1]]  # the waits alone, not the attempts' own time
    assert pauses[0] >= 0.05 * 0.95 and pauses[1] >= 0.1 * 0.95, pauses  # doubled: exponential, not constant


async def test_a_refused_port_is_not_retried(tmp_path):
    """Nobody listens there: psql says so at once, and so does ragstore, whatever the retry settings."""
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(free_port()), "POSTGRES_PASSWORD": "x",
           "POSTGRES_CONNECTION_RETRY_BACKOFF": "1"}
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        await connect(load_settings(environ=env, cwd=tmp_path))
    assert time.monotonic() - started < 0.9  # no backoff sleep happened
    assert str(info.value).startswith("postgres: connection refused at 127.0.0.1:")


async def test_wrong_password_is_not_retried(pg_env, tmp_path):
    settings = load_settings(environ={**pg_env, "POSTGRES_PASSWORD": "wrong", "POSTGRES_CONNECTION_RETRY_BACKOFF": "2"},
                             cwd=tmp_path)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        await connect(settings, retries=5)
    assert time.monotonic() - started < 1.5  # no backoff sleep happened
    assert "authentication failed" in str(info.value)
    assert "wrong" not in str(info.value).replace("wrong password", "")


async def test_unix_socket_host(pg_server, tmp_path):
    env = {**pg_server.env(), "POSTGRES_HOST": str(pg_server.socket_dir)}
    conn = await connect(load_settings(environ=env, cwd=tmp_path), retries=1)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_retries_stop_within_the_command_timeout(tmp_path):
    """POSTGRES_CONNECTION_RETRIES=10 with 3 s backoff would wait ~3 minutes for a server that stays
    "starting up"; all attempts together stay within RAGSTORE_COMMAND_TIMEOUT."""
    starting = StartingPostgres()
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(starting.port), "POSTGRES_PASSWORD": "x",
           "POSTGRES_SSL_MODE": "disable", "POSTGRES_CONNECTION_RETRY_BACKOFF": "1", "RAGSTORE_COMMAND_TIMEOUT": "4"}
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionFailed) as info:
            await connect(load_settings(environ=env, cwd=tmp_path))
    finally:
        starting.close()
    assert 2.5 <= time.monotonic() - started <= 4.5  # retried (1 s, 2 s), then no wait past the budget
    assert starting.connections == 3
    assert "cannot take a connection now (the database system is starting up)" in str(info.value)


async def test_a_lost_server_makes_no_pool_log_noise(pg_env, tmp_path, caplog):
    """A pool whose server went away must not reconnect in the background: asyncpg logs a warning
    with a traceback for every failed attempt to restore a connection floor."""
    import asyncio
    import logging

    from tests.faults.proxy import FaultProxy

    proxy = FaultProxy(int(pg_env["POSTGRES_PORT"]))
    try:
        pool = await create_pool(load_settings(environ={**pg_env, "POSTGRES_PORT": str(proxy.port)}, cwd=tmp_path))
        try:
            caplog.set_level(logging.DEBUG, logger="asyncpg")
            proxy.cut()
            with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            await asyncio.sleep(2.5)  # asyncpg retries its floor after 1 s, then 2 s
            assert [r for r in caplog.records if r.name.startswith("asyncpg")] == []
        finally:
            pool.terminate()
    finally:
        proxy.close()
