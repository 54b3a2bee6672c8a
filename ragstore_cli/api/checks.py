"""`ragstore check-connections`: SSL-aware checks of every configured backend, run concurrently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragstore_cli.api.calling import resolved
from ragstore_cli.config import Settings

if TYPE_CHECKING:
    from ragstore_cli.checks import CheckResult


async def check_connections(*, backends: list[str] | None = None, timeout: float = 10.0,
                            settings: Settings | None = None) -> list[CheckResult]:
    """One CheckResult per backend (`backends`: postgres, neo4j, redis, files; None: the configured
    ones), each bounded by `timeout` seconds; a failed check is a result with `ok=False`, not an error."""
    from ragstore_cli.checks import run_checks  # drivers load only when a check runs (fast --help)

    return await run_checks(resolved(settings), backends or None, timeout)
