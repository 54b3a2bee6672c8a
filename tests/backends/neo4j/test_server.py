"""What only a real Neo4j shows: database selection as LightRAG makes it, the driver's errors as one
line each, transient errors retried, one transaction per write batch."""

from __future__ import annotations

import asyncio

import neo4j
import pytest

from ragstore_cli.backends.neo4j import cypher, limits
from ragstore_cli.connect.neo4j import server_error
from ragstore_cli.errors import ConnectionFailed, OperationFailed
from tests.backends.neo4j.graphdata import node, read_all

ON_NEO4J = pytest.mark.parametrize("bolt_server", ["neo4j"], indirect=True)


def test_check_connections_reports_version_and_edition(cli, bolt_env, is_real_neo4j):
    result = cli("--json", "check-connections", "--backend", "neo4j", env=bolt_env)
    assert result.exit_code == 0, result.output
    details = result.json()[0]["details"]
    if is_real_neo4j:
        assert details["server_version"].startswith("5.") and details["edition"] in ("community", "enterprise")
    else:  # FalkorDB's endpoint has no dbms.components()
        assert details["server_version"] is None and details["edition"] is None


@ON_NEO4J
def test_check_connections_shows_the_database_used_and_why(cli, bolt_env):
    result = cli("--json", "check-connections", "--backend", "neo4j", env={**bolt_env, "NEO4J_DATABASE": "neo4j"})
    details = result.json()[0]["details"]
    assert details["database_used"] == "neo4j" and details["database_fell_back"] is False
    result = cli("--json", "check-connections", "--backend", "neo4j", env={**bolt_env, "NEO4J_DATABASE": "mydb"})
    details = result.json()[0]["details"]
    assert details["database_requested"] == "mydb" and details["database_fell_back"] is True
    assert "single database" in details["database_note"] and "LightRAG falls back" in details["database_note"]


@ON_NEO4J
def test_a_wrong_password_is_one_line(cli, bolt_env):
    wrong = {**bolt_env, "NEO4J_PASSWORD": "not-the-password"}
    listed = cli("workspace", "list", "--profile", "kv=files,vector=files,graph=neo4j,doc_status=files", env=wrong)
    assert listed.exit_code == 1 and "authentication failed for user neo4j at bolt://" in listed.stderr
    assert len(listed.stderr.strip().splitlines()) <= 2 and "Traceback" not in listed.stderr


@ON_NEO4J
async def test_neo4j_database_is_honoured(open_backend):
    backend = await open_backend(NEO4J_DATABASE="neo4j")
    assert backend.bolt.database == "neo4j"
    writer = await backend.graph().writer()
    await writer.write([node("in neo4j")])
    await writer.commit()
    given = backend.settings.neo4j
    with neo4j.GraphDatabase.driver(given.uri, auth=(given.username, given.password)) as driver:
        found = driver.execute_query(f"MATCH (n:{cypher.quote_label(backend.label)}) RETURN n.entity_id AS id",
                                     database_="neo4j").records
    assert [r["id"] for r in found] == ["in neo4j"]


@ON_NEO4J
async def test_a_missing_database_falls_back_like_lightrag(open_backend):
    """Community has one database: LightRAG's CREATE DATABASE is refused and it uses the default one."""
    backend = await open_backend(NEO4J_DATABASE="mydb")
    assert backend.bolt.database is None  # CREATE DATABASE was tried and refused
    writer = await backend.graph().writer()
    await writer.write([node("in the default database")])
    await writer.commit()
    same = await open_backend(backend.workspace)  # NEO4J_DATABASE unset: LightRAG's default name, also missing
    assert list((await read_all(same.graph()))[0]) == ["in the default database"]


@ON_NEO4J
async def test_driver_errors_are_one_clear_line(bolt_env, open_backend):
    backend = await open_backend()
    with neo4j.GraphDatabase.driver(bolt_env["NEO4J_URI"], auth=(bolt_env["NEO4J_USERNAME"],
                                                                 bolt_env["NEO4J_PASSWORD"])) as driver:
        with pytest.raises(neo4j.exceptions.ClientError) as missing:
            driver.execute_query("RETURN 1", database_="nosuchdb")
    assert server_error(missing.value).startswith("database not found: ")
    with pytest.raises(OperationFailed, match="^neo4j: Neo.ClientError.Statement.SyntaxError: "):
        await backend.bolt.run("MATCH (n RETURN n")


async def test_falkordb_failures_do_not_read_unknown_error(open_backend, is_real_neo4j):
    backend = await open_backend()
    with pytest.raises(OperationFailed) as failed:
        await backend.bolt.run("MATCH (n RETURN n")
    if not is_real_neo4j:
        assert "failed the statement without saying why" in str(failed.value)
    assert not str(failed.value).startswith("neo4j: Neo.DatabaseError.General.UnknownError")


async def _crossing_updates(backend, rounds: int = 12, workers: int = 6) -> None:
    """Workers updating the same nodes in opposite orders, so their transactions wait on each other."""
    label = cypher.quote_label(backend.label)
    ids = [f"n{i:03d}" for i in range(60)]
    query = f"UNWIND $ids AS id MATCH (n:{label} {{entity_id: id}}) SET n.v = coalesce(n.v, 0) + 1"

    async def worker(k: int) -> None:
        order = ids if k % 2 else ids[::-1]
        for _ in range(rounds):
            await backend.bolt.run(query, {"ids": order})

    await asyncio.gather(*(worker(k) for k in range(workers)))


@ON_NEO4J
async def test_transient_errors_are_retried(open_backend):
    backend = await open_backend()
    writer = await backend.graph().writer()
    await writer.write([node(f"n{i:03d}") for i in range(60)])
    await writer.commit()
    await _crossing_updates(backend)  # deadlocks happen (see below) and are retried by the driver
    counts = await backend.bolt.run(f"MATCH (n:{cypher.quote_label(backend.label)}) RETURN n.v AS v", read=True)
    assert {r["v"] for r in counts} == {12 * 6}

    impatient = await open_backend(backend.workspace, NEO4J_MAX_TRANSACTION_RETRY_TIME="0")
    failures = []
    for _ in range(5):  # without retries the same load fails, with a line that names the cause
        try:
            await _crossing_updates(impatient)
        except (OperationFailed, ConnectionFailed) as exc:
            failures.append(str(exc))
            break
    assert failures and "transient error still failing after retries: Neo.TransientError" in failures[0]


@ON_NEO4J
async def test_a_write_batch_is_one_transaction(open_backend, monkeypatch):
    """A statement the server fails (here a node id over the index's key limit, let past the checks)
    leaves nothing of its batch behind: each batch is one transaction."""
    backend = await open_backend()
    writer = await backend.graph().writer()  # staged under a label with an entity_id index
    await writer.write([node("earlier")])
    monkeypatch.setattr(limits, "check_rows", lambda *a: None)
    with pytest.raises(OperationFailed, match="too large to index"):
        await writer.write([node("a"), node("b"), node("x" * 9000), node("c")])
    got = await backend.bolt.run(f"MATCH (n:{cypher.quote_label(writer.stage)}) RETURN n.entity_id AS id", read=True)
    assert [r["id"] for r in got] == ["earlier"]
    await writer.abort()
