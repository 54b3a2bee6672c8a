"""Bolt check: reachable, TLS (by URI scheme), authenticated, server agent, version and edition, the
database actually used (and why, where LightRAG would fall back to the default one)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from neo4j.exceptions import Neo4jError

from ragstore_cli.config import Settings
from ragstore_cli.connect.neo4j import create_driver, explain, resolve_database, verify
from ragstore_cli.redact import mask_uri

COMPONENTS = "CALL dbms.components() YIELD versions, edition RETURN versions, edition"


async def check(settings: Settings, timeout: float) -> dict[str, Any]:
    driver = create_driver(settings, timeout=timeout)
    started = time.perf_counter()
    try:
        try:
            await verify(driver, deadline=asyncio.get_running_loop().time() + timeout * 0.8)
            latency = round((time.perf_counter() - started) * 1000, 1)
            choice = await resolve_database(driver, settings)
            agent, protocol = await _server_info(driver)
            version, edition = await _components(driver, choice.name)
        except Exception as exc:  # noqa: BLE001 - translated to a one-line error
            raise explain(exc, settings, timeout) from None
        uri = settings.neo4j.uri
        return {
            "target": mask_uri(uri),
            "tls": uri.split("://", 1)[0] in ("bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc"),
            "authenticated": True,
            "server_agent": agent,
            "server_version": version,
            "edition": edition,
            "protocol_version": protocol,
            "database_requested": choice.requested,
            "database_used": choice.label,
            "database_fell_back": choice.fell_back,
            **({"database_note": _fallback_note(choice.requested, edition)} if choice.fell_back else {}),
            "latency_ms": latency,
        }
    finally:
        await driver.close()


async def _components(driver, database: str | None) -> tuple[str | None, str | None]:
    """(version, edition) from dbms.components(); (None, None) where the server has no such procedure
    (FalkorDB's Bolt endpoint)."""
    try:
        result = await driver.execute_query(COMPONENTS, database_=database)
    except Neo4jError:
        return None, None
    row = dict(result.records[0]) if result.records else {}
    return ((row.get("versions") or [None])[0], row.get("edition"))


def _fallback_note(requested: str | None, edition: str | None) -> str:
    if edition == "community":
        return (f"database {requested!r} does not exist and Neo4j Community has a single database (CREATE DATABASE "
                "is refused): LightRAG falls back to the default database too, and so does ragstore")
    return (f"database {requested!r} does not exist: LightRAG tries CREATE DATABASE when it starts and uses the "
            "default database only if that is refused; ragstore's writes do the same")


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
