"""The neo4j async driver from settings, with LightRAG's pool settings and database fallback.

LightRAG uses NEO4J_DATABASE, or a database named after the graph namespace when unset; where that
database does not exist (or the edition cannot create it) it falls back to the server's default.
`resolve_database` reproduces that choice and says which database was actually used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import ClientError, Neo4jError, ServiceUnavailable, TransientError

from ragstore_cli.config import Settings
from ragstore_cli.connect import failures, liveness
from ragstore_cli.errors import ConfigError, ConnectionFailed
from ragstore_cli.redact import mask_uri, redact

LIGHTRAG_DEFAULT_DATABASE = "chunk-entity-relation"

# The driver logs every routing retry and server notification at WARNING/ERROR; with no logging set up,
# Python prints those on stderr (thousands of lines for a neo4j:// URI to a stopped server). A
# NullHandler keeps them off the terminal; an application that configures logging still gets them.
logging.getLogger("neo4j").addHandler(logging.NullHandler())


def create_driver(settings: Settings, *, timeout: float | None = None) -> neo4j.AsyncDriver:
    """An async driver configured like LightRAG's (pool size, timeouts, keep-alive)."""
    uri = settings.neo4j.uri
    if not uri:
        raise ConfigError("NEO4J_URI", "not set")
    user, password = settings.neo4j.username, settings.neo4j.password
    auth = (user, password or "") if user else None
    connect_timeout = settings.neo4j.connection_timeout
    if timeout is not None:  # leave room for a retry inside the caller's bound
        connect_timeout = min(connect_timeout, max(timeout / 3, 0.5))
    try:
        driver = neo4j.AsyncGraphDatabase.driver(
            uri,
            auth=auth,
            max_connection_pool_size=settings.neo4j.max_connection_pool_size,
            connection_timeout=connect_timeout,
            connection_acquisition_timeout=settings.neo4j.connection_acquisition_timeout if timeout is None else timeout,
            max_transaction_retry_time=settings.neo4j.max_transaction_retry_time,
            max_connection_lifetime=settings.neo4j.max_connection_lifetime,
            liveness_check_timeout=settings.neo4j.liveness_check_timeout,
            keep_alive=settings.neo4j.keep_alive,
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise ConfigError("NEO4J_URI", redact(str(exc))) from None
    liveness.watch("neo4j", mask_uri(uri) or "neo4j", settings.ragstore.command_timeout, driver,
                   make_probe=lambda: _Probe(uri, auth), is_open=lambda d: not getattr(d, "_closed", False))
    return driver


class _Probe:
    """The guard's round trip to this server: a driver of its own holding one connection open
    (closing connections would make FalkorDB stall the next handshake, see `verify`)."""

    def __init__(self, uri: str, auth: Any) -> None:
        self.uri, self.auth = uri, auth
        self.driver: neo4j.AsyncDriver | None = None

    async def ping(self, timeout: float) -> None:
        if self.driver is None:
            self.driver = neo4j.AsyncGraphDatabase.driver(self.uri, auth=self.auth, max_connection_pool_size=1,
                                                          connection_timeout=timeout,
                                                          connection_acquisition_timeout=timeout)
        await self.driver.verify_connectivity()

    async def close(self) -> None:
        if self.driver is not None:
            driver, self.driver = self.driver, None
            await driver.close()


def server_error(exc: Neo4jError) -> str:
    """One line for an error the server sent: what it means first, then its code and message.

    Transient errors reach this only once the driver's retries (managed transactions, up to
    NEO4J_MAX_TRANSACTION_RETRY_TIME) are spent."""
    code = exc.code or type(exc).__name__
    real = failures.server_code(exc) or code  # FalkorDB's own code, where it gives one
    first = ((exc.message or str(exc) or "").splitlines() or [""])[0][:300]
    if code == "Neo.ClientError.Database.DatabaseNotFound":
        return f"database not found: {first}"
    if code == "Neo.TransientError.General.DatabaseUnavailable":
        return f"database unavailable (stopped, starting or recovering): {first}"
    if ".ClientError.Security." in real:
        return f"permission denied ({real.rsplit('.', 1)[-1]}): {first}"
    if code == "Neo.DatabaseError.General.UnknownError":
        # FalkorDB's Bolt endpoint reports every failure so, with "An unknown error occurred" as the
        # message; the error's metadata may still name the kind (SyntaxError).
        if real != code:
            return f"the server failed the statement without saying why, beyond its code {real} (Neo.DatabaseError.General.UnknownError)"
        return "the server failed the statement without saying why (Neo.DatabaseError.General.UnknownError)"
    if isinstance(exc, TransientError):
        return f"transient error still failing after retries: {code}: {first}"
    return f"{code}: {first}"


TLS_SCHEMES = ("bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc")


def uses_tls(uri: str | None) -> bool:
    return (uri or "").split("://", 1)[0] in TLS_SCHEMES


def where(settings: Settings) -> failures.Where:
    """The server a failure message names: the masked NEO4J_URI."""
    uri = settings.neo4j.uri
    host = urlsplit(uri).hostname or "" if uri and "://" in uri else ""
    return failures.Where(mask_uri(uri) or "neo4j", host, settings.neo4j.username or None,
                          configured_database(settings))


def explain(exc: BaseException, settings: Settings, timeout: float | None = None) -> ConnectionFailed:
    """A one-line, masked ConnectionFailed for a driver error (connect/failures.py names the kind)."""
    failure = failures.classify(exc, tls=uses_tls(settings.neo4j.uri))
    if failure is not None:
        msg = failures.describe("neo4j", failure, where(settings), seconds=timeout)
        return ConnectionFailed("neo4j", redact(msg), transient=failure.transient)
    target = where(settings).target
    if isinstance(exc, Neo4jError):
        msg = f"{target}: {server_error(exc)}"
    else:
        msg = f"{target}: {type(exc).__name__}: {exc}"
    return ConnectionFailed("neo4j", redact(msg.splitlines()[0]), transient=isinstance(exc, TransientError))


@dataclass(frozen=True)
class DatabaseChoice:
    """The database a session should use; `name` None means the server's default."""

    requested: str | None
    name: str | None
    fell_back: bool

    @property
    def label(self) -> str:
        return self.name or "(server default)"


def configured_database(settings: Settings) -> str:
    return settings.neo4j.database or LIGHTRAG_DEFAULT_DATABASE


async def resolve_database(driver: neo4j.AsyncDriver, settings: Settings) -> DatabaseChoice:
    """Use the configured database if it answers, else the server's default (as LightRAG does)."""
    wanted = configured_database(settings)
    try:
        await driver.execute_query("RETURN 1 AS ok", database_=wanted)
        return DatabaseChoice(wanted, wanted, False)
    except ClientError as exc:
        if "DatabaseNotFound" not in (exc.code or "") and "database" not in (exc.message or "").lower():
            raise
    await driver.execute_query("RETURN 1 AS ok")
    return DatabaseChoice(wanted, None, True)


async def verify(driver: neo4j.AsyncDriver, *, deadline: float, attempt_timeout: float = 0.5) -> None:
    """verify_connectivity, retrying a stalled handshake until `deadline` (monotonic).

    FalkorDB's Bolt endpoint leaves the next handshake hanging after a client says GOODBYE; a
    short connection timeout plus a retry rides over it, and costs nothing on Neo4j. Only a stall
    (or a dropped connection) is retried: a refused port, an unknown host, a certificate or a
    password problem fails at once (connect/failures.py), so a stopped server is reported at once.
    """
    loop = asyncio.get_running_loop()
    pause = 0.05
    while True:
        remaining = max(deadline - loop.time(), 0.1)
        try:
            await asyncio.wait_for(driver.verify_connectivity(), min(attempt_timeout, remaining))
            return
        except (ServiceUnavailable, asyncio.TimeoutError, TimeoutError, OSError) as exc:
            failure = failures.classify(exc, tls=getattr(driver, "encrypted", None))
            stalled = failure is not None and failure.kind == failures.TIMEOUT
            if loop.time() >= deadline or not (stalled or failure is None or failure.kind in failures.RETRIED):
                raise
            if stalled:
                # Escalate (a slow but healthy link still gets through), but not far: FalkorDB stalls
                # one handshake per connection a previous client closed, and each stall costs a whole attempt.
                attempt_timeout = min(attempt_timeout * 2, 3.0)
            else:  # a dropped connection fails at once: pause, never spin
                await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
                pause = min(pause * 2, 0.5)
