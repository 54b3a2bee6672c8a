"""The redis asyncio client from settings (REDIS_URI and LightRAG's pool/timeout settings).

Every new connection must answer a PING within a short, growing wait before it is used, and a
connection that fails or stalls is replaced (REDIS_RETRY_ATTEMPTS times, backoff under a second):
FalkorDB's Redis port leaves the first reply of the first new connection after a Bolt client
disconnected unanswered, which would otherwise cost a whole REDIS_SOCKET_TIMEOUT (30 s) or fail.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ragstore_cli.config import Settings
from ragstore_cli.connect import failures, liveness
from ragstore_cli.errors import ConnectionFailed
from ragstore_cli.redact import mask_uri, redact

FIRST_REPLY_WAIT = 0.5  # seconds a new connection gets for its first reply, doubled per retry


async def _answers_first(conn: Any, retries: int) -> None:
    """Hand-shake (AUTH/SELECT as configured), then PING, under a short wait that grows per attempt;
    the last attempt (`retries` retries) waits the whole socket timeout: a slow server still gets in."""
    full = conn.socket_timeout
    attempt = getattr(conn, "_ragstore_attempt", 0)
    wait = FIRST_REPLY_WAIT * 2 ** attempt if attempt < retries else full
    conn._ragstore_attempt = attempt + 1
    conn.socket_timeout = wait if full is None or wait is None else min(wait, full)
    try:
        await conn.on_connect()
        await conn.send_command("PING")
        await conn.read_response()
        conn._ragstore_attempt = 0
    finally:
        conn.socket_timeout = full


class _Retry(Retry):
    """redis-py's retry, but never of what will not pass by itself: a refused port, an unknown host,
    a wrong password, a TLS problem (connect/failures.py). A stall or a dropped connection is retried."""

    async def call_with_retry(self, do: Any, fail: Any, is_retryable: Any = None,
                              with_failure_count: bool = False) -> Any:
        def retryable(error: Exception) -> bool:
            failure = failures.classify(error)
            worth = failure is None or failure.kind in failures.RETRIED or failure.kind == failures.TIMEOUT
            return worth and (is_retryable is None or is_retryable(error))

        return await super().call_with_retry(do, fail, retryable, with_failure_count)


def create_client(settings: Settings, *, timeout: float | None = None) -> aioredis.Redis:
    """A client with LightRAG's limits; `timeout` caps both connect and socket timeouts."""
    connect_timeout = settings.redis.connect_timeout
    socket_timeout = settings.redis.socket_timeout
    retries = settings.redis.retry_attempts

    async def answers_first(conn: Any) -> None:
        await _answers_first(conn, retries)

    if timeout is not None:
        connect_timeout, socket_timeout = min(connect_timeout, timeout), min(socket_timeout, timeout)
    client = aioredis.from_url(
        settings.redis.uri,
        max_connections=settings.redis.max_connections,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        decode_responses=False,
        retry=_Retry(ExponentialBackoff(cap=1.0, base=0.1), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        redis_connect_func=answers_first,
    )
    liveness.watch("redis", mask_uri(settings.redis.uri) or "redis", settings.ragstore.command_timeout, client,
                   make_probe=lambda: _Probe(settings))
    return client


class _Probe:
    """The guard's round trip to this server: PING on a client of its own (no retries)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: aioredis.Redis | None = None

    async def ping(self, timeout: float) -> None:
        if self.client is None:
            self.client = aioredis.from_url(self.settings.redis.uri, socket_connect_timeout=timeout,
                                            socket_timeout=timeout, retry=Retry(ExponentialBackoff(), 0),
                                            max_connections=1)
        await self.client.ping()

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()


def where(settings: Settings) -> failures.Where:
    """The server a failure message names: the masked REDIS_URI, without its query (TLS file settings)."""
    uri = settings.redis.uri or ""
    parts = urlsplit(uri)
    database = parts.path.strip("/") or "0" if parts.scheme != "unix" else None
    target = (mask_uri(uri) or "redis").split("?", 1)[0]
    return failures.Where(target, parts.hostname or parts.path, parts.username or None, database)


def explain(exc: BaseException, settings: Settings, timeout: float | None = None, *,
            connecting: bool = False) -> ConnectionFailed:
    """A one-line, masked ConnectionFailed for a client error (connect/failures.py names the kind).
    `connecting`: the error answered a new client's first command."""
    uri = settings.redis.uri or ""
    tls = uri.startswith("rediss://")
    failure = failures.classify(exc, tls=tls)
    if failure is not None:
        note = ""
        if failure.kind == failures.TIMEOUT and tls:  # a plain Redis port never answers a TLS hello
            note = "rediss:// needs a TLS port; redis:// is plaintext"
        elif failure.kind == failures.LOST and connecting and not tls and "closed by server" in failure.reason.lower():
            failure = failures.Failure(failures.TLS_REQUIRED, "it closed the connection at the first command, "
                                                              "as a TLS-only port does")
        msg = failures.describe("redis", failure, where(settings), seconds=timeout, note=note)
        return ConnectionFailed("redis", redact(msg), transient=failure.transient)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ConnectionFailed("redis", redact(f"{mask_uri(uri)}: {text[:300]}"))
