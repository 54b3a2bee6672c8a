"""The command guard (connect/liveness.py) in-process: it bounds a server's silence, not a statement.

The end-to-end scenarios (every command, every server, SIGSTOP/SIGKILL/freeze/cut, Ctrl-C) are in
tests/faults/test_server_loss.py; these are the guard's own rules, quickly.
"""

from __future__ import annotations

import signal
import time

import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.connect import liveness
from ragstore_cli.connect.postgres import create_pool
from ragstore_cli.errors import ConnectionFailed
from tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(pg_env):
    proxy = FaultProxy(int(pg_env["POSTGRES_PORT"]))
    yield proxy
    proxy.close()


def _settings(pg_env, proxy, limit: float, tmp_path):
    return load_settings(environ={**pg_env, "POSTGRES_PORT": str(proxy.port), "RAGSTORE_COMMAND_TIMEOUT": f"{limit:g}"},
                         cwd=tmp_path)


def test_a_silent_server_ends_the_command_within_the_timeout(pg_env, proxy, tmp_path):
    settings = _settings(pg_env, proxy, 4, tmp_path)

    async def command() -> None:
        pool = await create_pool(settings)
        proxy.freeze()
        try:
            await pool.fetchval("SELECT 1")  # never answered
        finally:
            pool.terminate()

    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        liveness.run(command())
    assert time.monotonic() - started <= 4.5
    assert str(info.value).startswith("postgres: ") and f":{proxy.port}/" in str(info.value)
    assert "stopped answering" in str(info.value) and info.value.hint


def test_a_busy_server_is_not_a_silent_one(pg_env, proxy, tmp_path):
    """A statement longer than the timeout runs to its end while the server answers the probe."""
    settings = _settings(pg_env, proxy, 2, tmp_path)

    async def command() -> int:
        pool = await create_pool(settings)
        try:
            return await pool.fetchval("SELECT 7 FROM pg_sleep(4)")
        finally:
            await pool.close()

    assert liveness.run(command()) == 7


def test_a_blocked_event_loop_is_not_a_silent_server(pg_env, proxy, tmp_path):
    """Seconds of synchronous work in the loop stop the probes too; that is no verdict on the server."""
    settings = _settings(pg_env, proxy, 2, tmp_path)

    async def command() -> int:
        import asyncio

        pool = await create_pool(settings)
        try:
            time.sleep(3)  # the loop (and the watchdog) blocked for longer than the limit
            await asyncio.sleep(1.5)  # the watchdog's turn
            return await pool.fetchval("SELECT 3")
        finally:
            await pool.close()

    assert liveness.run(command()) == 3


def test_a_lost_connection_is_one_line_naming_the_server(pg_env, proxy, tmp_path):
    settings = _settings(pg_env, proxy, 30, tmp_path)

    async def command() -> None:
        pool = await create_pool(settings)
        try:
            async with pool.acquire() as conn:
                proxy.cut()
                await conn.fetchval("SELECT pg_sleep(1)")
        finally:
            pool.terminate()

    with pytest.raises(ConnectionFailed) as info:
        liveness.run(command())
    assert str(info.value).startswith(f"postgres: lost the connection to postgres@127.0.0.1:{proxy.port}/")
    assert "\n" not in str(info.value)


def test_outside_a_command_nothing_is_watched_and_sigint_is_restored():
    before = signal.getsignal(signal.SIGINT)

    async def command() -> str:
        assert liveness.silence_limit() is None  # no server registered yet
        return "done"

    assert liveness.run(command()) == "done"
    assert signal.getsignal(signal.SIGINT) is before
    assert liveness.silence_limit() is None  # no guard outside run()


@pytest.mark.parametrize("limit, silence", [(60, 52), (8, 6.4), (2, 1), (1, 0.5)])
def test_the_unwinding_budget_keeps_the_end_within_the_timeout(limit, silence):
    assert limit - liveness.unwind_budget(limit) == pytest.approx(silence)
