"""The redis asyncio client from settings (REDIS_URI and LightRAG's pool/timeout settings)."""

from __future__ import annotations

import redis.asyncio as aioredis

from ragstore_cli.config import Settings
from ragstore_cli.errors import ConnectionFailed
from ragstore_cli.redact import mask_uri, redact


def create_client(settings: Settings, *, timeout: float | None = None) -> aioredis.Redis:
    """A client with LightRAG's limits; `timeout` caps both connect and socket timeouts."""
    connect_timeout = settings["REDIS_CONNECT_TIMEOUT"]
    socket_timeout = settings["REDIS_SOCKET_TIMEOUT"]
    if timeout is not None:
        connect_timeout, socket_timeout = min(connect_timeout, timeout), min(socket_timeout, timeout)
    return aioredis.from_url(
        settings["REDIS_URI"],
        max_connections=settings["REDIS_MAX_CONNECTIONS"],
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        decode_responses=False,
    )


def explain(exc: BaseException, settings: Settings) -> ConnectionFailed:
    target = mask_uri(settings["REDIS_URI"])
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "auth" in text.lower() or "password" in text.lower():
        text = "authentication failed"
    return ConnectionFailed("redis", redact(f"{target}: {text}"))
