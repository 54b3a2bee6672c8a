"""A neo4j backend per test, on its own workspace label, dropped afterwards."""

from __future__ import annotations

import uuid
from typing import Any, AsyncIterator, Callable

import pytest

from ragstore_cli.backends.neo4j import Neo4jBackend
from ragstore_cli.backends.registry import create_backend  # the edge that validates workspace names
from ragstore_cli.config import load_settings


@pytest.fixture
def neo4j_settings(bolt_env, tmp_path) -> Callable[..., Any]:
    def make(**extra: str):
        return load_settings(environ={**bolt_env, **extra}, cwd=tmp_path)

    return make


@pytest.fixture
async def open_backend(neo4j_settings) -> AsyncIterator[Callable[..., Any]]:
    """Factory: an opened backend on a fresh (or given) workspace; every one is dropped and closed."""
    opened: list[Neo4jBackend] = []

    async def make(workspace: str | None = None, **env: str) -> Neo4jBackend:
        backend = create_backend("neo4j", neo4j_settings(**env), workspace if workspace is not None else "t" + uuid.uuid4().hex[:10])
        await backend.open()
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        try:
            await backend.drop_workspace()
        finally:
            await backend.close()
