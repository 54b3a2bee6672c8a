"""The neo4j driver factory and LightRAG's database choice, against the Bolt test server."""

from __future__ import annotations

import asyncio

from ragstore_cli.config import load_settings
from ragstore_cli.connect.neo4j import LIGHTRAG_DEFAULT_DATABASE, create_driver, resolve_database, verify


async def test_driver_uses_lightrag_pool_settings_and_reports_database(bolt_env, tmp_path):
    env = {**bolt_env, "NEO4J_MAX_CONNECTION_POOL_SIZE": "7"}
    settings = load_settings(environ=env, cwd=tmp_path)
    driver = create_driver(settings, timeout=5)
    try:
        assert driver._pool.pool_config.max_connection_pool_size == 7  # noqa: SLF001 - the setting reached the pool
        await verify(driver, deadline=asyncio.get_running_loop().time() + 5)
        choice = await resolve_database(driver, settings)
        assert choice.requested == LIGHTRAG_DEFAULT_DATABASE
        assert choice.label in (LIGHTRAG_DEFAULT_DATABASE, "(server default)")
        records, _, _ = await driver.execute_query("RETURN 41 + 1 AS answer", database_=choice.name)
        assert records[0]["answer"] == 42
    finally:
        await driver.close()


async def test_configured_database_is_requested(bolt_env, tmp_path):
    settings = load_settings(environ={**bolt_env, "NEO4J_DATABASE": "neo4j"}, cwd=tmp_path)
    driver = create_driver(settings, timeout=5)
    try:
        await verify(driver, deadline=asyncio.get_running_loop().time() + 5)
        choice = await resolve_database(driver, settings)
        assert choice.requested == "neo4j"
    finally:
        await driver.close()
