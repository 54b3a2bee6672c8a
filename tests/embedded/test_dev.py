"""`ragstore dev up | status | down`: the embedded default, end to end."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.servers import neo4j_missing


@pytest.fixture
def dev_dir(cli):
    # Not under tmp_path: pytest keeps /tmp/pytest-of-<user> at 0700 (and a concurrent pytest resets it),
    # which the unprivileged server user cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="ragstore-dev-test-"))
    folder = root / "dev"
    yield folder
    cli("dev", "down", "--data-dir", str(folder))
    shutil.rmtree(root, ignore_errors=True)


def test_up_status_check_down(cli, dev_dir, tmp_path):
    up = cli("--json", "dev", "up", "--data-dir", str(dev_dir), "--write-env", ".env")
    assert up.exit_code == 0, up.output
    document = up.json()
    assert document["postgres"]["running"] and document["bolt"]["running"]
    assert document["env"]["POSTGRES_PASSWORD"] == "****"
    real_password = (dev_dir / "ragstore.env").read_text()
    assert "POSTGRES_PASSWORD=" in real_password
    password = [l.split("=", 1)[1] for l in real_password.splitlines() if l.startswith("POSTGRES_PASSWORD=")][0]
    assert password and password not in up.output
    for secret_file in (dev_dir / "ragstore.env", tmp_path / ".env", dev_dir / "dev-state.json"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

    status = cli("--json", "dev", "status", "--data-dir", str(dev_dir))
    assert status.exit_code == 0 and status.json()["postgres"]["running"]

    checked = cli("--json", "check-connections", "--timeout", "10")  # reads ./.env written by dev up
    assert checked.exit_code == 0, checked.output
    by_backend = {r["backend"]: r for r in checked.json()}
    assert set(by_backend) == {"postgres", "neo4j", "files"}
    assert by_backend["postgres"]["details"]["pgvector_installed"] is True
    assert by_backend["postgres"]["details"]["database"] == "lightrag"

    again = cli("--json", "dev", "up", "--data-dir", str(dev_dir))  # idempotent: same ports, same password
    assert again.exit_code == 0
    assert again.json()["postgres"]["port"] == document["postgres"]["port"]

    down = cli("dev", "down", "--data-dir", str(dev_dir))
    assert down.exit_code == 0
    after = cli("--json", "dev", "status", "--data-dir", str(dev_dir))
    assert after.exit_code == 1
    assert after.json()["postgres"]["running"] is False and after.json()["bolt"]["running"] is False


def test_write_env_refuses_foreign_file(cli, dev_dir, tmp_path):
    (tmp_path / ".env").write_text("MY_APP=1\n")
    result = cli("dev", "up", "--data-dir", str(dev_dir), "--write-env", ".env")
    assert result.exit_code == 2
    assert "not written by ragstore" in result.stderr
    assert (tmp_path / ".env").read_text() == "MY_APP=1\n"


def test_status_of_unknown_folder(cli, tmp_path):
    result = cli("--json", "dev", "status", "--data-dir", str(tmp_path / "never"))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["postgres"]["running"] is False


def test_down_then_up_keeps_every_servers_data(cli, dev_dir):
    """`dev down` + `dev up` used to wipe the FalkorDB graph and every Redis key on that server (an
    export afterwards silently had no graph)."""
    import asyncio

    import asyncpg
    import neo4j
    import redis

    from ragstore_cli.embedded import dev

    assert cli("dev", "up", "--data-dir", str(dev_dir)).exit_code == 0
    servers = dev.load(dev_dir)
    env = servers.env()

    async def pg(sql: str):
        conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                     password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"], timeout=10)
        try:
            return await (conn.fetchval(sql) if sql.startswith("SELECT") else conn.execute(sql))
        finally:
            await conn.close()

    async def bolt(query: str):
        driver = neo4j.AsyncGraphDatabase.driver(env["NEO4J_URI"], auth=("default", ""), connection_timeout=5)
        try:
            for _ in range(5):  # FalkorDB may stall the first handshake after a restart
                try:
                    async with driver.session() as session:
                        record = await (await session.run(query)).single()
                        return record[0] if record else None
                except neo4j.exceptions.ServiceUnavailable:
                    await asyncio.sleep(0.5)
            raise AssertionError("the Bolt server did not answer")
        finally:
            await driver.close()

    asyncio.run(pg("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"))
    asyncio.run(bolt("CREATE (:Kept {name: 'alice'}) RETURN 1"))
    with redis.Redis(host="127.0.0.1", port=servers.graph.port, socket_timeout=10) as client:
        client.set("ragstore:test:kept", "yes")

    assert cli("dev", "down", "--data-dir", str(dev_dir)).exit_code == 0
    assert cli("dev", "up", "--data-dir", str(dev_dir)).exit_code == 0

    assert asyncio.run(pg("SELECT n FROM kept")) == 7
    assert asyncio.run(bolt("MATCH (k:Kept) RETURN k.name")) == "alice"
    with redis.Redis(host="127.0.0.1", port=servers.graph.port, socket_timeout=10) as client:
        assert client.get("ragstore:test:kept") == b"yes"


@pytest.mark.skipif(neo4j_missing() is not None, reason=neo4j_missing() or "")
def test_graph_choice_neo4j_then_falkordb(cli, dev_dir, tmp_path):
    up = cli("--json", "dev", "up", "--data-dir", str(dev_dir), "--graph", "neo4j", "--write-env", ".env")
    assert up.exit_code == 0, up.output
    assert up.json()["bolt"]["server"] == "neo4j" and up.json()["env"]["NEO4J_PASSWORD"] == "****"
    status = cli("dev", "status", "--data-dir", str(dev_dir))
    assert status.exit_code == 0 and "bolt (neo4j)" in status.stdout and "running" in status.stdout
    checked = cli("--json", "check-connections", "--backend", "neo4j", "--timeout", "20")
    assert checked.exit_code == 0, checked.output
    details = checked.json()[0]["details"]
    assert details["server_agent"].startswith("Neo4j/5.26") and details["edition"] == "community"
    state = json.loads((dev_dir / "dev-state.json").read_text())
    assert state["graph"] == "neo4j" and state["neo4j_password"] not in up.output + status.output
    kept = cli("--json", "dev", "up", "--data-dir", str(dev_dir))  # no --graph: the one used last
    assert kept.json()["bolt"]["server"] == "neo4j" and kept.json()["bolt"]["uri"] == up.json()["bolt"]["uri"]

    neo4j_pid = kept.json()["bolt"]["pid"]
    switched = cli("--json", "dev", "up", "--data-dir", str(dev_dir), "--graph", "falkordb")
    assert switched.exit_code == 0 and switched.json()["bolt"]["server"] == "falkordb"
    assert not psutil.pid_exists(neo4j_pid)  # the other graph server is stopped, its data kept
    assert (dev_dir / "neo4j" / "home").is_dir()
    refused = cli("dev", "up", "--data-dir", str(dev_dir), "--graph", "memgraph")
    assert refused.exit_code == 2 and "falkordb, neo4j" in refused.stderr


@pytest.mark.skipif(neo4j_missing() is not None, reason=neo4j_missing() or "")
def test_a_failed_dev_up_leaves_no_graph_server_behind(dev_dir, monkeypatch):
    """Neo4j starts first; when PostgreSQL then fails, nothing is recorded yet, so `dev down` could
    not stop it: dev up stops it itself."""
    from ragstore_cli.embedded import dev
    from ragstore_cli.embedded.neo4j import EmbeddedNeo4j
    from ragstore_cli.embedded.postgres import EmbeddedPostgres
    from ragstore_cli.errors import OperationFailed

    started = []
    real_start = EmbeddedNeo4j.start

    def start(self, *args, **kwargs):
        real_start(self, *args, **kwargs)
        started.append(self.pid())

    def refuse(self, *args, **kwargs):
        raise OperationFailed("embedded postgres: initdb failed (simulated)")

    monkeypatch.setattr(EmbeddedNeo4j, "start", start)
    monkeypatch.setattr(EmbeddedPostgres, "start", refuse)
    with pytest.raises(OperationFailed, match="simulated"):
        dev.up(dev_dir, "neo4j")
    assert started and not psutil.pid_exists(started[0])
    assert dev.load(dev_dir) is None
