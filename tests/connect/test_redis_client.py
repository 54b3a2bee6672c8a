"""The Redis client factory: a new connection that does not answer its first command is replaced.

FalkorDB's Redis port leaves the first reply of the first new connection after a Bolt client
disconnected unanswered; with LightRAG's REDIS_SOCKET_TIMEOUT (30 s) that costs 30 s, or fails
where the client does not retry.
"""

from __future__ import annotations

import time

import neo4j
import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.connect.redis import create_client
from ragstore_cli.errors import ConnectionFailed


async def _bolt_client_comes_and_goes(server) -> None:
    import asyncio

    from ragstore_cli.connect.neo4j import verify

    driver = neo4j.AsyncGraphDatabase.driver(server.bolt_uri, auth=("default", ""), connection_timeout=5)
    try:  # the Bolt handshake may stall too (after the previous test's client): ride over it first
        await verify(driver, deadline=asyncio.get_running_loop().time() + 30)
        async with driver.session() as session:
            await (await session.run("RETURN 1")).consume()
    finally:
        await driver.close()


@pytest.mark.parametrize("bolt_server", ["falkordb"], indirect=True)  # FalkorDB's Redis port
async def test_falkordb_stalled_first_reply_is_ridden_over(bolt_server, tmp_path):
    settings = load_settings(environ={"REDIS_URI": f"redis://127.0.0.1:{bolt_server.port}/0"}, cwd=tmp_path)
    for _ in range(2):
        await _bolt_client_comes_and_goes(bolt_server)
        client = create_client(settings)
        try:
            started = time.monotonic()
            assert await client.ping() is True
            await client.set(b"ragstore:test:stall", b"1")
            assert await client.get(b"ragstore:test:stall") == b"1"
            assert time.monotonic() - started < 5  # not a whole 30 s socket timeout
        finally:
            await client.delete(b"ragstore:test:stall")
            await client.aclose()


async def test_a_server_that_never_answers_fails_in_bounded_time(tmp_path):
    """Short first waits, then one whole socket timeout (a slow but healthy server still gets in)."""
    from redis.exceptions import RedisError

    from tests.servers import SilentListener

    silent = SilentListener()
    try:
        env = {"REDIS_URI": f"redis://127.0.0.1:{silent.port}/0", "REDIS_SOCKET_TIMEOUT": "5",
               "REDIS_RETRY_ATTEMPTS": "3"}
        client = create_client(load_settings(environ=env, cwd=tmp_path))
        started = time.monotonic()
        with pytest.raises((RedisError, ConnectionFailed)):
            await client.ping()
        # first replies waited 0.5 + 1 + 2 s (plus backoff), the last attempt the whole socket timeout
        assert time.monotonic() - started < 12
        await client.aclose()
    finally:
        silent.close()
