"""check-connections against the real fixture servers: success details and every failure case."""

from __future__ import annotations

import time

import pytest

from tests.servers import SilentListener


def _by_backend(result) -> dict:
    return {item["backend"]: item for item in result.json()}


def test_embedded_postgres_reports_pgvector(cli, pg_env):
    result = cli("--json", "check-connections", "--backend", "postgres", env=pg_env)
    assert result.exit_code == 0, result.output
    pg = _by_backend(result)["postgres"]
    assert pg["ok"] is True and pg["error"] is None
    assert pg["details"]["pgvector_installed"] is True
    assert pg["details"]["pgvector_version"].startswith("0.")
    assert pg["details"]["server_version"].startswith("18")
    assert pg["details"]["tls"] is False
    assert pg["details"]["may_create_tables"] is True
    assert pg["latency_ms"] > 0


def test_bolt_server_reports_agent_and_database(cli, bolt_env):
    result = cli("--json", "check-connections", "--backend", "neo4j", env=bolt_env)
    assert result.exit_code == 0, result.output
    graph = _by_backend(result)["neo4j"]
    assert graph["ok"] is True
    assert graph["details"]["server_agent"]
    assert graph["details"]["database_used"]


def test_redis_and_files(cli, redis_env, tmp_path):
    (tmp_path / "rag_storage").mkdir()
    env = {**redis_env, "WORKING_DIR": str(tmp_path / "rag_storage")}
    result = cli("--json", "check-connections", "-b", "redis", "-b", "files", env=env)
    assert result.exit_code == 0, result.output
    found = _by_backend(result)
    assert found["redis"]["details"]["server_version"]
    assert found["files"]["details"]["writable"] is True


def test_wrong_password_fails_with_one_line(cli, pg_env):
    env = {**pg_env, "POSTGRES_PASSWORD": "definitely-wrong-pw"}
    result = cli("--json", "check-connections", "-b", "postgres", env=env)
    assert result.exit_code == 1
    pg = _by_backend(result)["postgres"]
    assert pg["ok"] is False and "authentication failed" in pg["error"]
    assert "definitely-wrong-pw" not in result.output


def test_server_down_fails_fast(cli, pg_env):
    from ragstore_cli.embedded.postgres import free_port

    env = {**pg_env, "POSTGRES_PORT": str(free_port())}
    started = time.monotonic()
    result = cli("--json", "check-connections", "-b", "postgres", "--timeout", "5", env=env)
    assert result.exit_code == 1
    assert "refused" in _by_backend(result)["postgres"]["error"]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("backend", ["postgres", "neo4j", "redis"])
def test_silent_server_times_out_within_bound(cli, backend):
    listener = SilentListener()
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(listener.port), "POSTGRES_PASSWORD": "x",
           "NEO4J_URI": f"bolt://127.0.0.1:{listener.port}", "NEO4J_USERNAME": "u", "NEO4J_PASSWORD": "p",
           "REDIS_URI": f"redis://127.0.0.1:{listener.port}"}
    try:
        started = time.monotonic()
        result = cli("--json", "check-connections", "-b", backend, "--timeout", "1.5", env=env)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert result.exit_code == 1
    assert _by_backend(result)[backend]["ok"] is False
    assert elapsed < 4


def test_checks_run_concurrently(cli, pg_env, redis_env):
    listener = SilentListener()
    env = {**pg_env, **redis_env, "NEO4J_URI": f"bolt://127.0.0.1:{listener.port}", "NEO4J_USERNAME": "u",
           "NEO4J_PASSWORD": "p", "WORKING_DIR": "."}
    try:
        started = time.monotonic()
        result = cli("--json", "check-connections", "--timeout", "2", env=env)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    found = _by_backend(result)
    assert set(found) == {"postgres", "neo4j", "redis", "files"}
    assert found["postgres"]["ok"] and found["redis"]["ok"] and not found["neo4j"]["ok"]
    assert elapsed < 3.5  # ≈ the slowest (2 s), not the sum
    assert result.exit_code == 1


def test_machine_postgres15_without_pgvector(cli, pg15_env):
    result = cli("--json", "check-connections", "-b", "postgres", env=pg15_env)
    assert result.exit_code == 0, result.output  # the fixture proved the server usable
    pg = _by_backend(result)["postgres"]
    assert pg["details"]["server_version"].startswith("15")
    assert pg["details"]["pgvector_installed"] is False


def test_unknown_backend_is_usage_error(cli):
    result = cli("check-connections", "--backend", "mysql")
    assert result.exit_code == 2
    assert "unknown backend" in result.stderr
    assert "Traceback" not in result.output
