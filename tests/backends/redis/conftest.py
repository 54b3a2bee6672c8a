"""A redis backend per test on a fresh workspace (dropped afterwards), plus a raw client."""

from __future__ import annotations

import uuid
from typing import Any, AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from ragstore_cli.backends.redis import RedisBackend
from ragstore_cli.backends.registry import create_backend  # the edge that validates workspace names
from ragstore_cli.config import load_settings


@pytest.fixture
async def open_redis(redis_env, tmp_path) -> AsyncIterator[Callable[..., Any]]:
    opened: list[RedisBackend] = []

    async def make(workspace: str | None = None, **env: str) -> RedisBackend:
        settings = load_settings(environ={**redis_env, **env}, cwd=tmp_path)
        backend = create_backend("redis", settings, workspace if workspace is not None else "t" + uuid.uuid4().hex[:10])
        await backend.open()
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        try:
            await backend.drop_workspace()
        finally:
            await backend.close()


@pytest.fixture
async def raw(redis_env) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_env["REDIS_URI"])
    yield client
    await client.aclose()
