"""The neo4j async driver from settings, with LightRAG's pool settings and database fallback.

LightRAG uses NEO4J_DATABASE, or a database named after the graph namespace when unset; where that
database does not exist (or the edition cannot create it) it falls back to the server's default.
`resolve_database` reproduces that choice and says which database was actually used.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import AuthError, ClientError, Neo4jError, ServiceUnavailable, TransientError

from ragstore_cli.config import Settings
from ragstore_cli.connect import liveness
from ragstore_cli.errors import ConfigError, ConnectionFailed
from ragstore_cli.redact import mask_uri, redact

LIGHTRAG_DEFAULT_DATABASE = "chunk-entity-relation"

# The driver logs every routing retry and server notification at WARNING/ERROR; with no logging set up,
# Python prints those on stderr (thousands of lines for a neo4j:// URI to a stopped server). A
# NullHandler keeps them off the terminal; an application that configures logging still gets them.
logging.getLogger("neo4j").addHandler(logging.NullHandler())


def create_driver(settings: Settings, *, timeout: float | None = None) -> neo4j.AsyncDriver:
    """An async driver configured like LightRAG's (pool size, timeouts, keep-alive)."""
    uri = settings["NEO4J_URI"]
    if not uri:
        raise ConfigError("NEO4J_URI", "not set")
    user, password = settings["NEO4J_USERNAME"], settings["NEO4J_PASSWORD"]
    auth = (user, password or "") if user else None
    connect_timeout = settings["NEO4J_CONNECTION_TIMEOUT"]
    if timeout is not None:  # leave room for a retry inside the caller's bound
        connect_timeout = min(connect_timeout, max(timeout / 3, 0.5))
    try:
        driver = neo4j.AsyncGraphDatabase.driver(
            uri,
            auth=auth,
            max_connection_pool_size=settings["NEO4J_MAX_CONNECTION_POOL_SIZE"],
            connection_timeout=connect_timeout,
            connection_acquisition_timeout=settings["NEO4J_CONNECTION_ACQUISITION_TIMEOUT"] if timeout is None else timeout,
            max_transaction_retry_time=settings["NEO4J_MAX_TRANSACTION_RETRY_TIME"],
            max_connection_lifetime=settings["NEO4J_MAX_CONNECTION_LIFETIME"],
            liveness_check_timeout=settings["NEO4J_LIVENESS_CHECK_TIMEOUT"],
            keep_alive=settings["NEO4J_KEEP_ALIVE"],
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise ConfigError("NEO4J_URI", redact(str(exc))) from None
    liveness.watch("neo4j", mask_uri(uri) or "neo4j", settings["RAGSTORE_COMMAND_TIMEOUT"], driver,
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
    first = ((exc.message or str(exc) or "").splitlines() or [""])[0][:300]
    if code == "Neo.ClientError.Database.DatabaseNotFound":
        return f"database not found: {first}"
    if code == "Neo.TransientError.General.DatabaseUnavailable":
        return f"database unavailable (stopped, starting or recovering): {first}"
    if code.startswith("Neo.ClientError.Security."):
        return f"permission denied ({code.rsplit('.', 1)[-1]}): {first}"
    if code == "Neo.DatabaseError.General.UnknownError":
        # FalkorDB's Bolt endpoint reports every failure so, a syntax error included.
        return "the server failed the statement without saying why (Neo.DatabaseError.General.UnknownError)"
    if isinstance(exc, TransientError):
        return f"transient error still failing after retries: {code}: {first}"
    return f"{code}: {first}"


def explain(exc: BaseException, settings: Settings, timeout: float | None = None) -> ConnectionFailed:
    """A one-line, masked ConnectionFailed for a driver error."""
    target = mask_uri(settings["NEO4J_URI"]) or "neo4j"
    if isinstance(exc, AuthError):
        msg = f"authentication failed for {target} (user {settings['NEO4J_USERNAME'] or '(none)'})"
    elif isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        msg = f"timed out talking to {target}" + (f" after {timeout:g} s" if timeout else "")
    elif isinstance(exc, ServiceUnavailable) and _certificate_error(exc) is not None:
        msg = (f"TLS: the certificate of {target} is not trusted ({_certificate_error(exc)}); trust its CA "
               "through SSL_CERT_FILE, or use bolt+ssc:// or neo4j+ssc:// to encrypt without verifying")
    elif isinstance(exc, ServiceUnavailable):
        scheme = settings["NEO4J_URI"].split("://", 1)[0]
        hint = ""
        if scheme in ("bolt", "neo4j") and "handshake" in str(exc):
            hint = " If it requires TLS, use bolt+s:// or neo4j+s://"
        elif scheme == "neo4j+s" and "routing" in str(exc):  # the routing driver drops the TLS cause
            hint = (" With neo4j+s:// its certificate must also be trusted (SSL_CERT_FILE) for this host name; "
                    "bolt+s:// to the same address says why it is not")
        msg = f"cannot reach {target} (is the server running?{hint})"
    elif isinstance(exc, Neo4jError):
        msg = f"{target}: {server_error(exc)}"
    elif isinstance(exc, OSError):
        msg = f"cannot reach {target}: {exc.strerror or exc}"
    else:
        msg = f"{target}: {type(exc).__name__}: {exc}"
    return ConnectionFailed("neo4j", redact(msg.splitlines()[0]),
                            transient=isinstance(exc, (ServiceUnavailable, TransientError)))


def _certificate_error(exc: BaseException) -> str | None:
    """The reason a TLS certificate was refused, where that is why the driver could not connect."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc.verify_message or str(exc)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


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
    return settings["NEO4J_DATABASE"] or LIGHTRAG_DEFAULT_DATABASE


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
    """verify_connectivity, retrying a stalled or refused handshake until `deadline` (monotonic).

    FalkorDB's Bolt endpoint leaves the next handshake hanging after a client says GOODBYE; a
    short connection timeout plus a retry rides over it, and costs nothing on Neo4j.
    """
    loop = asyncio.get_running_loop()
    while True:
        remaining = max(deadline - loop.time(), 0.1)
        try:
            await asyncio.wait_for(driver.verify_connectivity(), min(attempt_timeout, remaining))
            return
        except (ServiceUnavailable, asyncio.TimeoutError, TimeoutError, OSError):
            if loop.time() >= deadline:
                raise
            # Escalate (a slow but healthy link still gets through), but not far: FalkorDB stalls
            # one handshake per connection a previous client closed, and each stall costs a whole attempt.
            attempt_timeout = min(attempt_timeout * 2, 3.0)
