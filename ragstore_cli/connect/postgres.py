"""asyncpg connections and pools from settings: SSL, server settings, timeouts, retries.

Retries use exponential backoff and happen only for errors that can pass by themselves (server
starting up, too many connections, a dropped connection); a wrong password, a certificate
problem, a refused port or an unknown host fails at once (connect/failures.py). All attempts together stay within RAGSTORE_COMMAND_TIMEOUT. Every error
leaves here as a `ConnectionFailed` with a masked message. Every pool and connection is registered
with the running command's guard (liveness.py), which probes the server while it is in use.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import asyncpg

from ragstore_cli.config import Settings
from ragstore_cli.connect import failures, liveness
from ragstore_cli.connect.ssl import PgSSL, build_pg_ssl
from ragstore_cli.errors import ConnectionFailed
from ragstore_cli.redact import redact

APPLICATION_NAME = "ragstore"
PROBE_APPLICATION_NAME = "ragstore-probe"  # the guard's probe connection: not one of the command's own


def describe_target(settings: Settings) -> str:
    """`user@host:port/database`, never the password."""
    host = settings.postgres.host
    where = host if host.startswith("/") else f"{host}:{settings.postgres.port}"
    return f"{settings.postgres.user}@{where}/{settings.postgres.database}"


def connect_kwargs(settings: Settings, *, timeout: float, pg_ssl: PgSSL | None = None) -> dict[str, Any]:
    """Keyword arguments for asyncpg.connect / create_pool, built from settings only (`ssl`: the first
    of libpq's attempts for the SSL mode; `in_libpq_order` makes the others)."""
    server_settings = {"application_name": APPLICATION_NAME}
    server_settings.update(settings.postgres.server_settings or {})
    kwargs: dict[str, Any] = {
        "host": settings.postgres.host,
        "port": settings.postgres.port,
        "user": settings.postgres.user,
        "password": settings.postgres.password,
        "database": settings.postgres.database,
        "ssl": (pg_ssl or build_pg_ssl(settings)).ssl,
        "timeout": timeout,
        "server_settings": server_settings,
    }
    if settings.postgres.statement_cache_size is not None:
        kwargs["statement_cache_size"] = settings.postgres.statement_cache_size
    return kwargs


def where(settings: Settings) -> failures.Where:
    """The server a failure message names: `host:port/database` (a socket folder instead of host:port)."""
    host = settings.postgres.host
    at = host if host.startswith("/") else f"{host}:{settings.postgres.port}"
    return failures.Where(f"{at}/{settings.postgres.database}", host, settings.postgres.user,
                          settings.postgres.database)


def explain(exc: BaseException, settings: Settings, timeout: float | None = None) -> ConnectionFailed:
    """Turn a driver/OS/SSL exception into a one-line, masked ConnectionFailed (connect/failures.py)."""
    failure = failures.classify(exc)
    if failure is not None:
        msg = failures.describe("postgres", failure, where(settings), seconds=timeout)
        return ConnectionFailed("postgres", redact(msg), transient=failure.transient)
    target = describe_target(settings)
    if isinstance(exc, asyncpg.PostgresError):
        msg = f"{target}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        msg = f"{target}: {exc.__class__.__name__}: {exc}"
    return ConnectionFailed("postgres", redact(msg.splitlines()[0]))


async def in_libpq_order(pg_ssl: PgSSL, attempt: Callable[[Any], Awaitable[Any]]) -> Any:
    """`attempt(ssl)` for each of the SSL mode's attempts (allow: plaintext, then TLS; prefer: TLS,
    then plaintext), moving on only where libpq would (connect/ssl.py)."""
    tries = pg_ssl.attempts
    for number, ssl_arg in enumerate(tries):
        try:
            return await attempt(ssl_arg)
        except Exception as exc:  # noqa: BLE001 - re-raised unless libpq would try the next attempt
            if not pg_ssl.falls_back(exc, number):
                raise
    raise AssertionError("unreachable: the last attempt never falls back")  # pragma: no cover


async def with_retries(
    attempt: Callable[[], Awaitable[Any]],
    *,
    retries: int,
    backoff: float,
    backoff_max: float,
    budget: float | None = None,
) -> Any:
    """Run `attempt`, retrying failures that pass by themselves (a server starting up or out of
    connection slots, a dropped connection: failures.RETRIED) with exponential backoff: at most
    `retries` attempts, and no new attempt once `budget` seconds (if given) would be exceeded by the
    wait. A refused port or an unknown host fails at once, as with psql."""
    delay = max(backoff, 0.05)
    ends = None if not budget else asyncio.get_running_loop().time() + budget
    for number in range(1, max(retries, 1) + 1):
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is worth another attempt
            failure = failures.classify(exc)
            if failure is None or failure.kind not in failures.RETRIED:
                raise
            pause = min(delay, backoff_max)
            if number >= retries or (ends is not None and asyncio.get_running_loop().time() + pause >= ends):
                raise
            await asyncio.sleep(pause)
            delay *= 2


def _retry_settings(settings: Settings, retries: int | None) -> dict[str, Any]:
    return {
        "retries": settings.postgres.connection_retries if retries is None else retries,
        "backoff": settings.postgres.connection_retry_backoff,
        "backoff_max": settings.postgres.connection_retry_backoff_max,
        "budget": settings.ragstore.command_timeout or None,
    }


def _within_command_timeout(timeout: float, settings: Settings) -> float:
    """A connection attempt waits no longer than RAGSTORE_COMMAND_TIMEOUT (a silent host: the command's
    guard only watches connections that exist)."""
    limit = settings.ragstore.command_timeout
    return min(timeout, limit) if limit else timeout


class _Probe:
    """The guard's round trip to this server: `SELECT 1` on a connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn: asyncpg.Connection | None = None

    async def ping(self, timeout: float) -> None:
        if self.conn is None or self.conn.is_closed():
            pg_ssl = build_pg_ssl(self.settings)
            kwargs = connect_kwargs(self.settings, timeout=timeout, pg_ssl=pg_ssl)
            kwargs["server_settings"] = {**kwargs["server_settings"], "application_name": PROBE_APPLICATION_NAME}
            self.conn = await in_libpq_order(pg_ssl, lambda ssl_arg: asyncpg.connect(**{**kwargs, "ssl": ssl_arg}))
        await self.conn.fetchval("SELECT 1", timeout=timeout)

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.terminate()  # never wait on a server that may be the silent one


def _watch(settings: Settings, user: Any, is_open: Callable[[Any], bool]) -> None:
    liveness.watch("postgres", describe_target(settings), settings.ragstore.command_timeout, user,
                   make_probe=lambda: _Probe(settings), is_open=is_open, drop=lambda obj: obj.terminate())


async def connect(
    settings: Settings,
    *,
    timeout: float = 10.0,
    retries: int | None = None,
    pg_ssl: PgSSL | None = None,
    command_timeout: float | None = None,
) -> asyncpg.Connection:
    """One connection, with transient-only retries. Raises ConnectionFailed.

    `command_timeout` bounds each statement (None: no bound — migrations build indexes for as
    long as it takes; data commands pass RAGSTORE_COMMAND_TIMEOUT).
    """
    pg_ssl = pg_ssl or build_pg_ssl(settings)
    timeout = _within_command_timeout(timeout, settings)
    kwargs = connect_kwargs(settings, timeout=timeout, pg_ssl=pg_ssl)
    if command_timeout:
        kwargs["command_timeout"] = command_timeout

    async def attempt() -> asyncpg.Connection:
        return await in_libpq_order(pg_ssl, lambda ssl_arg: asyncpg.connect(**{**kwargs, "ssl": ssl_arg}))

    try:
        conn = await with_retries(attempt, **_retry_settings(settings, retries))
    except ConnectionFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - every driver error is translated here
        raise explain(exc, settings, timeout) from None
    _watch(settings, conn, lambda c: not c.is_closed())
    return conn


async def create_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    max_size: int | None = None,
    timeout: float = 10.0,
    command_timeout: float | None = None,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    retries: int | None = None,
) -> asyncpg.Pool:
    """A pool capped at POSTGRES_MAX_CONNECTIONS (or `max_size`, whichever is smaller).

    With `min_size`, one connection is opened at once (so a wrong password fails here), but the pool keeps
    no connection floor: asyncpg would otherwise reconnect a lost one in the background and log a
    traceback per attempt while the server is down. Statements have no time limit unless
    `command_timeout` is given: a section's COPY may rightly take longer than any fixed bound; the
    command's guard (liveness.py) ends the command when the server stops answering instead.
    """
    cap = settings.postgres.max_connections
    size = min(max_size or cap, cap)
    pg_ssl = build_pg_ssl(settings)
    timeout = _within_command_timeout(timeout, settings)
    kwargs = connect_kwargs(settings, timeout=timeout, pg_ssl=pg_ssl)

    async def open_pool(ssl_arg: Any) -> asyncpg.Pool:
        # the SSL attempt that opened the first connection serves the whole pool (allow/prefer)
        pool = await asyncpg.create_pool(min_size=0, max_size=size, command_timeout=command_timeout or None,
                                         init=init, **{**kwargs, "ssl": ssl_arg})
        try:
            if min_size:  # one connection opened now (errors surface here), then kept idle in the pool
                async with pool.acquire():
                    pass
        except BaseException:
            pool.terminate()
            raise
        return pool

    try:
        pool = await with_retries(lambda: in_libpq_order(pg_ssl, open_pool), **_retry_settings(settings, retries))
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, settings, timeout) from None
    _watch(settings, pool, lambda p: not p.is_closing())
    return pool
