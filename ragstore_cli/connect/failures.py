"""One classification of connection failures for every backend, and the settings to check for each.

Why one: PostgreSQL, Neo4j/FalkorDB and Redis fail the same ways (a wrong password, a host that does
not resolve, a port nobody listens on, a silent server, a certificate nobody trusts...), but each
driver says so differently -- asyncpg raises the OS error, the neo4j driver wraps it in
ServiceUnavailable (through a routing table's exception group for neo4j://), redis-py in its own
ConnectionError, FalkorDB reports a wrong password as UnknownError with the real code in the error's
metadata. `classify` looks through all of that and names the kind; `describe` turns a kind into the
one line every backend shares -- what happened, then "— check" the settings that decide it
(docs/check-connections.md, "What each failure says", is checked against `CHECKS` by a test).

The kinds also decide retries: a refused port, an unknown host, a wrong password or a certificate
problem stay so until someone changes something, so they are never retried; a server starting up or
out of connection slots, and a dropped connection, are (`RETRIED`). A timeout is retried only by
the Bolt and Redis clients, over FalkorDB's stalled handshakes (connect/neo4j.py, connect/redis.py).
"""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass

AUTH = "auth"
DNS = "dns"
REFUSED = "refused"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
BUSY = "busy"
LOST = "lost"
TLS_UNTRUSTED = "tls-untrusted"
TLS_HOSTNAME = "tls-hostname"
TLS_REQUIRED = "tls-required"
TLS_UNAVAILABLE = "tls-unavailable"
DATABASE_MISSING = "database-missing"
ACCESS_DENIED = "access-denied"

KINDS = (AUTH, DNS, REFUSED, UNREACHABLE, TIMEOUT, BUSY, LOST, TLS_UNTRUSTED, TLS_HOSTNAME, TLS_REQUIRED,
         TLS_UNAVAILABLE, DATABASE_MISSING, ACCESS_DENIED)
RETRIED = frozenset({BUSY, LOST})  # retried while connecting (within RAGSTORE_COMMAND_TIMEOUT)
TRANSIENT = frozenset({DNS, REFUSED, UNREACHABLE, TIMEOUT, BUSY, LOST})  # a server gone away, not a setting

_HOSTNAME_CODES = (62, 64)  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclass(frozen=True)
class Failure:
    """What kind of failure an exception is, with the driver's reason where it adds something."""

    kind: str
    reason: str = ""

    @property
    def transient(self) -> bool:
        """Could the same command succeed later without a setting changed (a server lost or stalled)?"""
        return self.kind in TRANSIENT


@dataclass(frozen=True)
class Check:
    """What to check for one kind of failure of one backend: settings, and a note after them."""

    settings: tuple[str, ...]
    note: str = ""

    def text(self) -> str:
        names = " / ".join(self.settings)
        return f"check {names}" + (f" ({self.note})" if self.note else "") if names else self.note


_RUNNING = "is the server running?"
_SILENT = "is the host reachable, the port right and the server not stalled?"
_AGAIN = "run the command again once the server answers"

CHECKS: dict[str, dict[str, Check]] = {
    "postgres": {
        AUTH: Check(("POSTGRES_USER", "POSTGRES_PASSWORD")),
        DNS: Check(("POSTGRES_HOST",)),
        REFUSED: Check(("POSTGRES_HOST", "POSTGRES_PORT"), _RUNNING),
        UNREACHABLE: Check(("POSTGRES_HOST",), "a route or a firewall"),
        TIMEOUT: Check(("POSTGRES_HOST", "POSTGRES_PORT"), _SILENT),
        BUSY: Check(("POSTGRES_MAX_CONNECTIONS",), "the server is starting up or out of connection slots"),
        LOST: Check((), _AGAIN),
        TLS_UNTRUSTED: Check(("POSTGRES_SSL_ROOT_CERT", "POSTGRES_SSL_MODE"), "the CA that signed the server's certificate"),
        TLS_HOSTNAME: Check(("POSTGRES_HOST", "POSTGRES_SSL_MODE"),
                            "connect by a name the certificate lists; verify-ca does not check the name"),
        TLS_REQUIRED: Check(("POSTGRES_SSL_MODE",), "require, verify-ca or verify-full"),
        TLS_UNAVAILABLE: Check(("POSTGRES_SSL_MODE",), "disable, allow or prefer for a server without TLS"),
        DATABASE_MISSING: Check(("POSTGRES_DATABASE",)),
        ACCESS_DENIED: Check(("POSTGRES_USER", "POSTGRES_HOST"), "the server's pg_hba.conf"),
    },
    "neo4j": {
        AUTH: Check(("NEO4J_USERNAME", "NEO4J_PASSWORD")),
        DNS: Check(("NEO4J_URI",)),
        REFUSED: Check(("NEO4J_URI",), _RUNNING),
        UNREACHABLE: Check(("NEO4J_URI",), "a route or a firewall"),
        TIMEOUT: Check(("NEO4J_URI",), _SILENT),
        BUSY: Check((), "the server is starting up or busy; " + _AGAIN),
        LOST: Check((), _AGAIN),
        TLS_UNTRUSTED: Check(("SSL_CERT_FILE", "NEO4J_URI"),
                             "SSL_CERT_FILE names the CA to trust; bolt+ssc:// encrypts without verifying"),
        TLS_HOSTNAME: Check(("NEO4J_URI",), "connect by a name the certificate lists"),
        TLS_REQUIRED: Check(("NEO4J_URI",), "bolt+s:// or neo4j+s://"),
        TLS_UNAVAILABLE: Check(("NEO4J_URI",), "bolt:// or neo4j:// for a server without TLS"),
        DATABASE_MISSING: Check(("NEO4J_DATABASE",)),
        ACCESS_DENIED: Check(("NEO4J_USERNAME",), "the user's roles"),
    },
    "redis": {
        AUTH: Check(("REDIS_URI",), "the user and password in it"),
        DNS: Check(("REDIS_URI",)),
        REFUSED: Check(("REDIS_URI",), _RUNNING),
        UNREACHABLE: Check(("REDIS_URI",), "a route or a firewall"),
        TIMEOUT: Check(("REDIS_URI",), _SILENT),
        BUSY: Check((), "the server is loading its data; " + _AGAIN),
        LOST: Check((), _AGAIN),
        TLS_UNTRUSTED: Check(("REDIS_URI", "SSL_CERT_FILE"), "ssl_ca_certs=… in the URI or SSL_CERT_FILE names the CA"),
        TLS_HOSTNAME: Check(("REDIS_URI",), "connect by a name the certificate lists"),
        TLS_REQUIRED: Check(("REDIS_URI",), "rediss://"),
        TLS_UNAVAILABLE: Check(("REDIS_URI",), "redis:// for a server without TLS"),
        DATABASE_MISSING: Check(("REDIS_URI",), "the database number after the port"),
        ACCESS_DENIED: Check(("REDIS_URI",), "the user's ACL"),
    },
}


@dataclass(frozen=True)
class Where:
    """The server a failure is about, as the message names it (never a password)."""

    target: str  # host:port/database, or the masked URI
    host: str = ""
    user: str | None = None
    database: str | None = None


def describe(backend: str, failure: Failure, where: Where, *, seconds: float | None = None, note: str = "") -> str:
    """The one line for `failure` (no backend prefix: ConnectionFailed adds it), e.g.
    `connection refused at 127.0.0.1:5432/postgres — check POSTGRES_HOST / POSTGRES_PORT (is the server running?)`.
    `note` adds what only the caller knows (a URI scheme that may be the cause)."""
    check = CHECKS[backend][failure.kind]
    reason = f" ({failure.reason})" if failure.reason else ""
    target, kind = where.target, failure.kind
    if kind == AUTH:
        who = f" for user {where.user}" if where.user else ""
        what = f"authentication failed{who} at {target}{reason}"
    elif kind == DNS:
        what = f"cannot resolve host {where.host or target}"
    elif kind == REFUSED:
        what = f"connection refused at {target}"
    elif kind == UNREACHABLE:
        what = f"cannot reach {target}{reason}"
    elif kind == TIMEOUT:
        within = f" within {seconds:g} s" if seconds else ""
        what = f"no answer from {target}{within}"
    elif kind == BUSY:
        what = f"{target} cannot take a connection now{reason}"
    elif kind == LOST:
        what = f"the connection to {target} failed{reason}"
    elif kind == TLS_UNTRUSTED:
        what = f"TLS: the certificate of {target} is not trusted{reason}"
    elif kind == TLS_HOSTNAME:
        what = f"TLS: the certificate of {target} is not valid for host {where.host or target}"
    elif kind == TLS_REQUIRED:
        what = f"TLS: {target} accepts only TLS connections{reason}"
    elif kind == TLS_UNAVAILABLE:
        what = f"TLS: {target} does not speak TLS{reason}"
    elif kind == DATABASE_MISSING:
        what = f"database {where.database} does not exist at {target}"
    else:
        who = f" user {where.user}" if where.user else ""
        what = f"{target} refuses{who}{reason}"
    return f"{what} — {check.text()}" + (f"; {note}" if note else "")


# --------------------------------------------------------------------------- classification
def chain(exc: BaseException) -> list[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups (the neo4j driver's routing
    error keeps the real reason there), outermost first, bounded."""
    found: list[BaseException] = []
    queue: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while queue and len(found) < 40:
        item = queue.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        if isinstance(item, BaseExceptionGroup):
            queue.extend(item.exceptions)
        queue.extend((item.__cause__, item.__context__))
    return found


def classify(exc: BaseException, *, tls: bool | None = None) -> Failure | None:
    """The kind of connection failure `exc` is, or None for anything else (a query error...).

    `tls`: whether the client asked for TLS (a URI scheme), where the driver's error alone cannot
    tell a TLS-only server from a server that dropped the connection. The first exception of the
    chain with a definite kind decides; generic "connection gone" wrappers count only when nothing
    more precise is found."""
    items = chain(exc)
    for item in items:
        failure = _definite(item, tls)
        if failure is not None:
            return failure
    for item in items:
        if _generic_loss(item):
            return Failure(LOST, _first_line(item))
    return None


def _definite(exc: BaseException, tls: bool | None) -> Failure | None:
    name, module, text = type(exc).__name__, type(exc).__module__, _first_line(exc)
    lowered = text.lower()
    code = server_code(exc)
    # -- authentication
    if name in ("InvalidPasswordError", "AuthError", "AuthenticationError", "AuthenticationWrongNumberOfArgsError",
                "TokenExpired") or code.endswith((".Security.Unauthorized", ".Security.AuthenticationRateLimit")):
        return Failure(AUTH, "too many failed attempts" if code.endswith("RateLimit") else "")
    if module.startswith("redis") and lowered.startswith(("wrongpass", "noauth", "invalid username-password")):
        return Failure(AUTH)
    if name == "InvalidAuthorizationSpecificationError":  # pg_hba.conf, an unknown role
        if "no encryption" in lowered:
            return Failure(TLS_REQUIRED, text)
        if "role" in lowered and "does not exist" in lowered:
            return Failure(AUTH, text)
        return Failure(ACCESS_DENIED, text)
    # -- TLS
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _HOSTNAME_CODES:
            return Failure(TLS_HOSTNAME)
        return Failure(TLS_UNTRUSTED, exc.verify_message or str(exc.reason or "certificate verify failed"))
    if module.startswith("asyncpg") or isinstance(exc, ConnectionError):
        if "rejected ssl upgrade" in lowered:
            return Failure(TLS_UNAVAILABLE, "it rejected the TLS upgrade")
    if name == "BoltSecurityError" and not isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return Failure(TLS_UNAVAILABLE, "it dropped the TLS handshake")
    if isinstance(exc, ssl.SSLError):  # a server answering a TLS hello with something else
        plain = exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNEXPECTED_EOF_WHILE_READING")
        return Failure(TLS_UNAVAILABLE, exc.reason) if plain and tls is not False else None
    if tls is False and "incomplete handshake response" in lowered:  # Neo4j TLS-only, asked in plaintext
        return Failure(TLS_REQUIRED, "it closed the connection during the Bolt handshake")
    # -- the database
    if name == "InvalidCatalogNameError" or code.endswith(".Database.DatabaseNotFound"):
        return Failure(DATABASE_MISSING)
    if module.startswith("redis") and "db index is out of range" in lowered:
        return Failure(DATABASE_MISSING)
    # -- the network
    if isinstance(exc, OSError):
        number = exc.errno
        if type(exc).__name__ == "gaierror" or (number is not None and number < 0):
            return Failure(DNS, exc.strerror or text)
        if isinstance(exc, ConnectionRefusedError) or number == errno.ECONNREFUSED:
            return Failure(REFUSED)
        if isinstance(exc, FileNotFoundError):  # a Unix socket path: nobody listens there
            return Failure(REFUSED)
        if number in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            return Failure(UNREACHABLE, exc.strerror or text)
    if name in ("CannotConnectNowError", "TooManyConnectionsError", "BusyLoadingError"):
        return Failure(BUSY, text)
    if isinstance(exc, TimeoutError) or (module.startswith("redis") and name == "TimeoutError"):
        return Failure(TIMEOUT)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return Failure(LOST, exc.strerror or name)
    if name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "AdminShutdownError", "CrashShutdownError",
                "SessionExpired", "IncompleteCommit"):
        return Failure(LOST, text)
    return None


def _generic_loss(exc: BaseException) -> bool:
    """A driver's "the connection or server is gone" without a more precise cause."""
    name, module, lowered = type(exc).__name__, type(exc).__module__, _first_line(exc).lower()
    if name in ("ServiceUnavailable", "BoltError") or isinstance(exc, ConnectionError):
        return True
    if name == "InterfaceError" and ("closed" in lowered or "connection" in lowered):
        return True
    return module.startswith("redis") and name == "ConnectionError"


def server_gone(exc: BaseException) -> bool:
    """Did `exc` end a command because a server went away or stopped answering (or Ctrl-C) -- the one
    kind of failure that running the same command again, or resuming it, can get past unchanged?
    A refusal of the data, a permission, a statement error, a bug: no."""
    from ragstore_cli.errors import ConnectionFailed, Interrupted

    if isinstance(exc, Interrupted):
        return True
    if isinstance(exc, ConnectionFailed) and exc.transient:
        return True
    failure = classify(exc)
    return failure is not None and failure.transient


def server_code(exc: BaseException) -> str:
    """A driver error's Neo4j-style status code ('' when it has none). FalkorDB reports every failure
    as UnknownError and puts the real code in the error's metadata (FalkorDB.ClientError.Security.Unauthorized)."""
    metadata = getattr(exc, "metadata", None)
    real = metadata.get("code") if isinstance(metadata, dict) else None
    if isinstance(real, str) and real:
        return real
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, BaseExceptionGroup) else exc.message
    return (text.splitlines() or [""])[0][:300]

