"""The asyncpg pool factory: size cap, server settings, transient-only retries with backoff."""

from __future__ import annotations

import time

import asyncpg
import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.connect.postgres import connect, create_pool, with_retries
from ragstore_cli.embedded.postgres import free_port
from ragstore_cli.errors import ConnectionFailed


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
    calls = []

    async def refused():
        calls.append(time.monotonic())
        return await asyncpg.connect(host="127.0.0.1", port=free_port(), user="x", password="y", timeout=2)

    with pytest.raises(OSError):
        await with_retries(refused, retries=3, backoff=0.05, backoff_max=1)
    assert len(calls) == 3
    assert calls[2] - calls[1] >= 1.8 * (calls[1] - calls[0]) * 0.9  # exponential, not constant


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
