"""Redis check: reachable, TLS (rediss://), authenticated, server version, eviction policy."""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import NoPermissionError

from ragstore_cli.access.redis_acl import access_status
from ragstore_cli.config import Settings
from ragstore_cli.connect.redis import create_client, explain
from ragstore_cli.redact import mask_uri


async def check(settings: Settings, timeout: float) -> dict[str, Any]:
    client = create_client(settings, timeout=timeout)
    started = time.perf_counter()
    try:
        try:
            await client.ping()
        except Exception as exc:  # noqa: BLE001 - the first command: how connecting failed, in one line
            raise explain(exc, settings, timeout, connecting=True) from None
        latency = round((time.perf_counter() - started) * 1000, 1)
        try:
            try:
                server = await client.info("server")
                memory = await client.info("memory")
            except NoPermissionError:  # a tenant's ACL user (docs/access.md) may not run INFO
                server, memory = {}, {}
            access = await access_status(client, settings)
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, settings, timeout) from None
        policy = memory.get("maxmemory_policy")
        return {
            "target": mask_uri(settings.redis.uri),
            "tls": settings.redis.uri.startswith("rediss://"),
            "authenticated": True,
            "server_version": server.get("redis_version"),
            "maxmemory_policy": policy,
            "eviction_risk": bool(memory.get("maxmemory")) and str(policy).startswith("allkeys"),
            "access": access,
            "latency_ms": latency,
        }
    finally:
        await client.aclose()
