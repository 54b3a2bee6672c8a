"""Session fixtures that start real servers, and helpers to run the CLI against them."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from ragstore_cli.cli.app import app
from ragstore_cli.config import SPECS
from ragstore_cli.embedded.falkordb import EmbeddedFalkorDB
from tests.servers import (
    TEST_PASSWORD, ExternalNeo4j, PlainRedis, make_test_ca, neo4j_missing, ssl_capable_bin_dir, start_falkordb,
    start_neo4j, start_postgres,
)

# CI runs the same Hypothesis examples every time (a failure reproduces); developers explore new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

CONFIG_VARS = [spec.env for spec in SPECS] + ["PGSSLMODE", "PGSSLROOTCERT", "PGPASSWORD", "PGHOST", "PGUSER"]


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ragstore-test-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- PostgreSQL 18 + pgvector
@pytest.fixture(scope="session")
def pg_server(server_root: Path):
    server = start_postgres(server_root / "pg")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_env(pg_server) -> dict[str, str]:
    """Settings pointing at the embedded server's `postgres` database over TCP."""
    return pg_server.env()


@pytest.fixture
def pg_database(pg_server) -> Iterator[dict[str, str]]:
    """A fresh, empty database (with pgvector) for one test; settings pointing at it."""
    name = "t_" + uuid.uuid4().hex[:12]
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    pg_server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
    yield pg_server.env(database=name)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- PostgreSQL with TLS
@pytest.fixture(scope="session")
def test_ca(server_root: Path):
    return make_test_ca(server_root / "ca")


@pytest.fixture(scope="session")
def pg_ssl_server(server_root: Path, test_ca):
    bin_dir = ssl_capable_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL build with SSL support (the embedded wheel has none): install Debian's "
                    "postgresql package or set RAGSTORE_TEST_PG_BIN")
    server = start_postgres(server_root / "pg-ssl", tls=test_ca, bin_dir=bin_dir)
    yield server
    server.stop()


# --------------------------------------------------------------------------- Bolt: FalkorDB and Neo4j, and Redis
# Every test that takes `bolt_server` / `bolt_env` runs once per Bolt server. RAGSTORE_TEST_BOLT_SERVERS
# (comma-separated) narrows the list for a quick local run; a test pins one server with
# @pytest.mark.parametrize("bolt_server", ["neo4j"], indirect=True).
BOLT_SERVERS = [name for name in os.environ.get("RAGSTORE_TEST_BOLT_SERVERS", "falkordb,neo4j").split(",") if name]


@pytest.fixture(scope="session")
def falkordb_server(server_root: Path):
    server = start_falkordb(server_root / "falkordb")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neo4j_server(server_root: Path):
    """A real Neo4j Community 5.26 (RAGSTORE_TEST_NEO4J_URI: an external one instead)."""
    external = os.environ.get("RAGSTORE_TEST_NEO4J_URI")
    if external:
        yield ExternalNeo4j(external, os.environ.get("RAGSTORE_TEST_NEO4J_USERNAME", "neo4j"),
                            os.environ.get("RAGSTORE_TEST_NEO4J_PASSWORD", ""))
        return
    missing = neo4j_missing()
    if missing:
        pytest.skip(missing)
    server = start_neo4j(server_root / "neo4j")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neo4j_tls_server(server_root: Path, test_ca):
    """A second real Neo4j that serves Bolt over TLS only, with the test CA's `localhost` certificate."""
    missing = neo4j_missing()
    if missing:
        pytest.skip(missing)
    server = start_neo4j(server_root / "neo4j-tls", tls=test_ca)
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BOLT_SERVERS)
def bolt_server(request):
    """The Bolt server of this leg: FalkorDB's endpoint or a real Neo4j."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture(scope="session")
def bolt_env(bolt_server) -> dict[str, str]:
    """LightRAG's NEO4J_* settings for this leg's Bolt server."""
    return bolt_server.env()


@pytest.fixture(scope="session")
def is_real_neo4j(bolt_server) -> bool:
    return not isinstance(bolt_server, EmbeddedFalkorDB)


@pytest.fixture(scope="session")
def bolt_name(is_real_neo4j) -> str:
    """The leg's server, as fault records and messages name it."""
    return "Neo4j" if is_real_neo4j else "FalkorDB"


@pytest.fixture(scope="session")
def redis_server(server_root: Path):
    server = PlainRedis(server_root / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_env(redis_server) -> dict[str, str]:
    return {"REDIS_URI": redis_server.uri}


# --------------------------------------------------------------------------- the machine's extra servers
def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg15_env() -> dict[str, str]:
    """The machine's PostgreSQL 15 (no pgvector) on 127.0.0.1:5432, where present and usable.

    Whether it is usable is asked of asyncpg directly, not of ragstore: a test skips for a missing
    server, never because the command under test failed."""
    import asyncio

    import asyncpg

    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
           "POSTGRES_PASSWORD": "unused", "POSTGRES_DATABASE": "postgres"}
    if not _port_open(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 on this machine")

    async def version() -> int:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", password="unused",
                                     database="postgres", timeout=5, ssl=False)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    try:
        major = asyncio.run(version())
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        pytest.skip(f"the PostgreSQL on 127.0.0.1:5432 does not let this machine's tests in: {exc}")
    if major != 15:
        pytest.skip(f"the PostgreSQL on 127.0.0.1:5432 is version {major}, not 15")
    return env


# --------------------------------------------------------------------------- isolation and the CLI
@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the machine's LightRAG variables, .env or config.ini."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _secrets_forgotten() -> Iterator[None]:
    """Passwords a test's settings registered for redaction are forgotten after it: a fuzzed password
    such as `mpe` would otherwise mask `stamped` in a later test's JSON (the servers' own passwords,
    registered by session fixtures before this runs, stay)."""
    from ragstore_cli import redact

    saved = set(redact._secrets)  # noqa: SLF001 - the registry is process state; tests reset it
    yield
    redact._secrets.clear()  # noqa: SLF001
    redact._secrets.update(saved)  # noqa: SLF001


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """Run `ragstore ARGS` in-process with extra environment; returns exit code, stdout, stderr."""

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(app, list(args), env=env or {}, input=input, catch_exceptions=False)
        # Every captured output of the suite is scanned for the servers' test password.
        assert TEST_PASSWORD not in result.stdout + result.stderr, "a password was printed"
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke




@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Scan everything a test printed or logged (captured by pytest) for the servers' password."""
    outcome = yield
    report = outcome.get_result()
    captured = "".join(text for _, text in report.sections)
    if TEST_PASSWORD in captured and report.when == "call" and report.passed:
        report.outcome = "failed"
        report.longrepr = f"the test password appeared in captured output of {item.nodeid}"
