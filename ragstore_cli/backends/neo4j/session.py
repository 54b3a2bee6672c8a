"""One driver per operation, its dialect probed once, and every query's errors as one-liners."""

from __future__ import annotations

import asyncio
from typing import Any

import neo4j
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from ragstore_cli.backends.neo4j.dialect import Dialect, probe
from ragstore_cli.config import Settings
from ragstore_cli.connect.neo4j import create_driver, explain, resolve_database, server_error, verify
from ragstore_cli.errors import OperationFailed, RagstoreError

CONNECT_DEADLINE = 30.0


class Bolt:
    """A driver bound to the database LightRAG would use and to the server's dialect."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.driver: neo4j.AsyncDriver | None = None
        self.database: str | None = None
        self.dialect: Dialect | None = None

    async def open(self) -> None:
        if self.driver is not None:
            return
        driver = create_driver(self.settings)
        try:
            # FalkorDB stalls the first handshake after another client's GOODBYE: verify rides it out.
            await verify(driver, deadline=asyncio.get_running_loop().time() + CONNECT_DEADLINE)
            self.dialect, choice = await probe(driver, await resolve_database(driver, self.settings))
        except RagstoreError:
            await driver.close()
            raise
        except Exception as exc:  # noqa: BLE001 - translated to one line
            await driver.close()
            raise explain(exc, self.settings) from None
        self.driver, self.database = driver, choice.name

    async def close(self) -> None:
        if self.driver is not None:
            driver, self.driver = self.driver, None
            await driver.close()

    async def run(self, query: str, params: dict[str, Any] | None = None, *,
                  read: bool = False, sized: bool = False) -> list[dict[str, Any]]:
        """Run one statement; records as dicts. Parameters are passed as they are: the dialect
        prepares them (escaping, the size check a request not cut by `dialect.requests` — `sized` —
        still needs) and runs the statement the way its server wants (dialect.execute)."""
        if self.driver is None or self.dialect is None:
            raise OperationFailed("neo4j: backend used before open()")
        params = self.dialect.prepare(query, params or {}, sized)
        try:
            records = await self.dialect.execute(self.driver, self.database, query, params, read)
        except (DriverError, AuthError) as exc:  # the server gone, a session expired, credentials refused
            raise explain(exc, self.settings) from None
        except Neo4jError as exc:
            raise OperationFailed(f"neo4j: {server_error(exc)}") from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise explain(exc, self.settings) from None
        return [dict(record) for record in records]

    async def scalar(self, query: str, params: dict[str, Any] | None = None, *, read: bool = False,
                     sized: bool = False) -> Any:
        rows = await self.run(query, params, read=read, sized=sized)
        return next(iter(rows[0].values())) if rows else None

    async def repeat_until_zero(self, query: str, params: dict[str, Any], *, expected: int,
                                limit: int) -> int:
        """Run a `... LIMIT $limit ... RETURN count(*) AS c` statement until it touches nothing.

        Bounded: at most expected/limit + 10 rounds, so a server that keeps reporting work fails
        loudly instead of looping forever.
        """
        total = 0
        for _ in range(expected // max(limit, 1) + 10):
            done = int(await self.scalar(query, {**params, "limit": limit}) or 0)
            total += done
            if done == 0:
                return total
        raise OperationFailed(f"neo4j: batched statement did not finish after {total} items: {query[:80]}")
