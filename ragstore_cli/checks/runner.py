"""Runs the selected checks concurrently: the total time is that of the slowest, each bounded."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from ragstore_cli.checks import files, graph, postgres, redis
from ragstore_cli.backends.registry import configured_backends
from ragstore_cli.checks.model import CheckResult
from ragstore_cli.config import Settings
from ragstore_cli.connect import neo4j as connect_neo4j
from ragstore_cli.connect import postgres as connect_postgres
from ragstore_cli.connect import redis as connect_redis
from ragstore_cli.errors import RagstoreError, UsageError
from ragstore_cli.redact import redact

CheckFn = Callable[[Settings, float], Awaitable[dict]]
BACKENDS: dict[str, CheckFn] = {
    "postgres": postgres.check,
    "neo4j": graph.check,
    "redis": redis.check,
    "files": files.check,
}
EXPLAIN = {"postgres": connect_postgres.explain, "neo4j": connect_neo4j.explain, "redis": connect_redis.explain}


async def _one(name: str, settings: Settings, timeout: float) -> CheckResult:
    started = time.perf_counter()
    try:
        details = await asyncio.wait_for(BACKENDS[name](settings, timeout), timeout)
        latency = details.pop("latency_ms", None)
        ok = details.pop("ok", True)
        error = details.pop("error", None)
        return CheckResult(name, ok, latency if latency is not None else _ms(started), details, error)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        return CheckResult(name, False, _ms(started), {}, _timed_out(name, exc, settings, timeout))
    except RagstoreError as exc:
        return CheckResult(name, False, _ms(started), {}, redact(str(exc)))
    except Exception as exc:  # noqa: BLE001 - a check reports, it never crashes the run
        return CheckResult(name, False, _ms(started), {}, redact(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0]))


def _timed_out(name: str, exc: BaseException, settings: Settings, timeout: float) -> str:
    """The backend's own timeout line (what to check), for a check that ran out of --timeout."""
    explain = EXPLAIN.get(name)
    if explain is None:
        return f"{name}: no answer within {timeout:g} s"
    return redact(str(explain(exc, settings, timeout)))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def run_checks(settings: Settings, backends: list[str] | None = None, timeout: float = 10.0) -> list[CheckResult]:
    """Check `backends` (default: the configured ones) concurrently."""
    selected = backends or configured_backends(settings)
    unknown = [b for b in selected if b not in BACKENDS]
    if unknown:
        raise UsageError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    return list(await asyncio.gather(*(_one(name, settings, timeout) for name in dict.fromkeys(selected))))
