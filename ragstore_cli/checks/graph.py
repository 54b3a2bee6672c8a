"""Bolt check: reachable, TLS (by URI scheme), authenticated, server agent, the database actually used."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ragstore_cli.config import Settings
from ragstore_cli.connect.neo4j import create_driver, explain, resolve_database, verify
from ragstore_cli.redact import mask_uri


async def check(settings: Settings, timeout: float) -> dict[str, Any]:
    driver = create_driver(settings, timeout=timeout)
    started = time.perf_counter()
    try:
        try:
            await verify(driver, deadline=asyncio.get_running_loop().time() + timeout * 0.8)
            latency = round((time.perf_counter() - started) * 1000, 1)
            choice = await resolve_database(driver, settings)
            agent, protocol = await _server_info(driver)
        except Exception as exc:  # noqa: BLE001 - translated to a one-line error
            raise explain(exc, settings, timeout) from None
        uri = settings["NEO4J_URI"]
        return {
            "target": mask_uri(uri),
            "tls": uri.split("://", 1)[0] in ("bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc"),
            "authenticated": True,
            "server_agent": agent,
            "protocol_version": protocol,
            "database_requested": choice.requested,
            "database_used": choice.label,
            "database_fell_back": choice.fell_back,
            "latency_ms": latency,
        }
    finally:
        await driver.close()


async def _server_info(driver) -> tuple[str | None, str | None]:
    # FalkorDB's Bolt endpoint fails get_server_info() on some versions; use a session's summary.
    try:
        info = await driver.get_server_info()
        return info.agent, ".".join(map(str, info.protocol_version))
    except Exception:  # noqa: BLE001 - best effort detail
        async with driver.session() as session:
            result = await session.run("RETURN 1")
            summary = await result.consume()
            return summary.server.agent, ".".join(map(str, summary.server.protocol_version))
