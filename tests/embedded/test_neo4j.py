"""The embedded Neo4j launcher: a real Neo4j Community on loopback, data kept across restarts, and
one-line errors where Java, javac, Maven or an artifact is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import neo4j
import psutil
import pytest

from ragstore_cli.embedded import neo4j_runtime
from ragstore_cli.embedded.neo4j import EmbeddedNeo4j
from ragstore_cli.errors import OperationFailed, UsageError
from tests.servers import TEST_PASSWORD, neo4j_missing

needs_java = pytest.mark.skipif(neo4j_missing() is not None, reason=neo4j_missing() or "")


def tools_only(tmp_path: Path, *names: str) -> str:
    """A PATH holding only the named tools (symlinks to this machine's), for "missing tool" runs."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        found = shutil.which(name)
        if found:
            (folder / name).symlink_to(found)
    return str(folder)


@pytest.mark.parametrize("present, missing", [((), "java"), (("java",), "mvn")])
def test_a_missing_tool_is_one_line_that_says_how_to_get_it(tmp_path, monkeypatch, present, missing):
    if present and not shutil.which("java"):
        pytest.skip("no java on this machine")
    monkeypatch.setenv("PATH", tools_only(tmp_path, *present))
    for name in ("JAVA_HOME", "RAGSTORE_JAVA", "RAGSTORE_MVN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAGSTORE_CACHE_DIR", str(tmp_path / "cache"))  # nothing resolved yet
    with pytest.raises(UsageError) as refused:
        neo4j_runtime.prepare()
    message = str(refused.value)
    assert f"`{missing}`" in message and "apt-get install" in message and "\n" not in message


@needs_java
def test_an_unresolvable_artifact_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGSTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAGSTORE_NEO4J_VERSION", "5.26.999")  # not published
    with pytest.raises(OperationFailed) as refused:
        neo4j_runtime.prepare(timeout=300)
    message = str(refused.value)
    assert "\n" not in message and "org.neo4j:neo4j" in message and "5.26.999" in message


def test_maven_errors_are_cut_to_the_clause_that_says_what_failed():
    output = ("\x1b[1;31m[ERROR]\x1b[m Failed to execute goal on project x: Could not resolve dependencies for "
              "project io:x:pom:1: Could not transfer artifact org.neo4j:neo4j:jar:5.26.30 from/to central "
              "(https://repo.maven.apache.org/maven2): Connect timed out -> [Help 1]\n[ERROR] \n[ERROR] To see…")
    assert neo4j_runtime._maven_error(output) == ("Could not transfer artifact org.neo4j:neo4j:jar:5.26.30 from/to "
                                                  "central (https://repo.maven.apache.org/maven2): Connect timed out")


def test_java_versions_are_read_from_both_styles(tmp_path):
    for text, major in (('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8),
                        ('openjdk version "25" 2025-09-16', 25)):
        fake = tmp_path / f"java{major}"
        fake.write_text(f"#!/bin/sh\necho '{text}' >&2\n")
        fake.chmod(0o755)
        assert neo4j_runtime.java_major(str(fake)) == major


@needs_java
def test_restart_keeps_data_binds_loopback_only_and_stops_on_sigterm(server_root):
    server = EmbeddedNeo4j(server_root / "neo4j-restart", password=TEST_PASSWORD)
    server.start()
    try:
        pid = server.pid()
        listening = [c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}
        assert [c.laddr.port for c in listening] == [server.port]  # Bolt only: no HTTP, no backup port
        with neo4j.GraphDatabase.driver(server.bolt_uri, auth=("neo4j", TEST_PASSWORD)) as driver:
            driver.execute_query("CREATE (:Kept {entity_id: 'across restarts'})")
            with pytest.raises(neo4j.exceptions.AuthError):
                with neo4j.GraphDatabase.driver(server.bolt_uri, auth=("neo4j", "not-the-password")) as other:
                    other.verify_connectivity()
        server.stop()
        assert not server.running() and not psutil.pid_exists(pid)
        assert "RAGSTORE_NEO4J_READY" in server.log_file.read_text()
        server.start()  # same folder, same port
        with neo4j.GraphDatabase.driver(server.bolt_uri, auth=("neo4j", TEST_PASSWORD)) as driver:
            records = driver.execute_query("MATCH (n:Kept) RETURN n.entity_id AS id").records
            assert [r["id"] for r in records] == ["across restarts"]
        assert stat_mode(server.data_dir / "neo4j.conf") == 0o600
    finally:
        server.stop()


@needs_java
def test_a_port_in_use_is_reported_in_one_line(server_root):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        server = EmbeddedNeo4j(server_root / "neo4j-port", password=TEST_PASSWORD, port=taken.getsockname()[1])
        with pytest.raises(OperationFailed, match="neo4j did not start: ") as refused:
            server.start()
    assert "\n" not in str(refused.value) and not server.running()


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
