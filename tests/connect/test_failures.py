"""Every backend's connection failures against the real servers: one line that names what happened and
the settings to check (connect/failures.py), exit 1, within a time bound -- in `check-connections` and
in a command that uses the backend (`workspace list`), which say the same line."""

from __future__ import annotations

import time

import pytest

from ragstore_cli.connect import failures
from ragstore_cli.embedded.postgres import free_port
from tests.servers import SilentListener

FAST = 2.0  # seconds: a refused port, an unknown host, a wrong password or a TLS refusal answers within this
UNKNOWN_HOST = "no-such-host.invalid"  # RFC 2606: never resolves
PROFILE = {"postgres": "postgres", "neo4j": "graph=neo4j,files", "redis": "kv=redis,doc_status=redis,files"}


def check_text(backend: str, kind: str) -> str:
    """What the line must end with: the settings (and note) the shared table names for this kind."""
    return " — " + failures.CHECKS[backend][kind].text()


def check(cli, backend: str, env: dict[str, str], timeout: float = 5.0):
    """(result, the backend's error line, seconds) of `check-connections --backend BACKEND --json`."""
    started = time.monotonic()
    result = cli("--json", "check-connections", "--backend", backend, "--timeout", f"{timeout:g}", env=env)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = result.json()[0]["error"]
    assert "\n" not in error
    return result, error, elapsed


def command_says(cli, backend: str, env: dict[str, str], line: str, tmp_path) -> None:
    """`workspace list` on a profile using the backend fails with the same one line, exit 1, fast."""
    (tmp_path / "rag_storage").mkdir(exist_ok=True)
    started = time.monotonic()
    result = cli("workspace", "list", "--profile", PROFILE[backend],
                 env={"WORKING_DIR": str(tmp_path / "rag_storage"), **env})
    assert time.monotonic() - started < FAST, result.output
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == f"error: {line}"
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- PostgreSQL
def test_postgres_wrong_password(cli, pg_env, tmp_path):
    env = {**pg_env, "POSTGRES_PASSWORD": "not-the-password-9"}
    _, error, elapsed = check(cli, "postgres", env)
    assert error == (f"postgres: authentication failed for user postgres at 127.0.0.1:{pg_env['POSTGRES_PORT']}/postgres"
                     + check_text("postgres", failures.AUTH))
    assert elapsed < FAST and "not-the-password-9" not in error
    command_says(cli, "postgres", env, error, tmp_path)


def test_postgres_unknown_host(cli, pg_env, tmp_path):
    env = {**pg_env, "POSTGRES_HOST": UNKNOWN_HOST}
    _, error, elapsed = check(cli, "postgres", env)
    assert error == f"postgres: cannot resolve host {UNKNOWN_HOST}" + check_text("postgres", failures.DNS)
    assert elapsed < FAST
    command_says(cli, "postgres", env, error, tmp_path)


def test_postgres_refused_port(cli, pg_env, tmp_path):
    port = free_port()
    env = {**pg_env, "POSTGRES_PORT": str(port)}
    _, error, elapsed = check(cli, "postgres", env)
    assert error == (f"postgres: connection refused at 127.0.0.1:{port}/postgres"
                     + check_text("postgres", failures.REFUSED))
    assert error.endswith("— check POSTGRES_HOST / POSTGRES_PORT (is the server running?)")
    assert elapsed < FAST
    command_says(cli, "postgres", env, error, tmp_path)


def test_postgres_missing_database(cli, pg_env, tmp_path):
    env = {**pg_env, "POSTGRES_DATABASE": "no_such_db"}
    _, error, elapsed = check(cli, "postgres", env)
    assert error == (f"postgres: database no_such_db does not exist at 127.0.0.1:{pg_env['POSTGRES_PORT']}/no_such_db"
                     + check_text("postgres", failures.DATABASE_MISSING))
    assert elapsed < FAST
    command_says(cli, "postgres", env, error, tmp_path)


def test_postgres_tls_asked_of_a_server_without_tls(cli, pg_env, tmp_path):
    env = {**pg_env, "POSTGRES_SSL_MODE": "require"}
    _, error, elapsed = check(cli, "postgres", env)
    assert error == (f"postgres: TLS: 127.0.0.1:{pg_env['POSTGRES_PORT']}/postgres does not speak TLS "
                     "(it rejected the TLS upgrade)" + check_text("postgres", failures.TLS_UNAVAILABLE))
    assert elapsed < FAST
    command_says(cli, "postgres", env, error, tmp_path)


def test_postgres_tls_unknown_ca_wrong_host_and_plaintext_refused(cli, pg_ssl_server, test_ca, tmp_path):
    base = {**pg_ssl_server.env(), "POSTGRES_HOST": "localhost"}
    where = f"localhost:{base['POSTGRES_PORT']}/postgres"
    unknown_ca = {**base, "POSTGRES_SSL_MODE": "verify-ca", "POSTGRES_SSL_ROOT_CERT": str(test_ca.other_ca_cert)}
    _, error, elapsed = check(cli, "postgres", unknown_ca)
    assert error == (f"postgres: TLS: the certificate of {where} is not trusted (self-signed certificate in "
                     "certificate chain)" + check_text("postgres", failures.TLS_UNTRUSTED))
    assert elapsed < FAST
    command_says(cli, "postgres", unknown_ca, error, tmp_path)

    wrong_host = {**base, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_SSL_MODE": "verify-full",
                  "POSTGRES_SSL_ROOT_CERT": str(test_ca.ca_cert)}
    _, error, _ = check(cli, "postgres", wrong_host)
    assert error == (f"postgres: TLS: the certificate of 127.0.0.1:{base['POSTGRES_PORT']}/postgres is not valid "
                     "for host 127.0.0.1" + check_text("postgres", failures.TLS_HOSTNAME))

    plaintext = {**base, "POSTGRES_USER": "certuser", "POSTGRES_PASSWORD": "", "POSTGRES_SSL_MODE": "disable"}
    _, error, _ = check(cli, "postgres", plaintext)
    assert error.startswith(f"postgres: TLS: {where} accepts only TLS connections (pg_hba.conf rejects connection")
    assert error.endswith(check_text("postgres", failures.TLS_REQUIRED))


# --------------------------------------------------------------------------- Neo4j and FalkorDB (Bolt)
def test_bolt_wrong_password_is_an_authentication_failure(cli, bolt_env, bolt_name, tmp_path):
    """FalkorDB reports it as Neo.DatabaseError.General.UnknownError with the real code in the error's
    metadata; Neo4j as Neo.ClientError.Security.Unauthorized. Both read the same."""
    env = {**bolt_env, "NEO4J_PASSWORD": "not-the-password-9"}
    _, error, elapsed = check(cli, "neo4j", env)
    assert error == (f"neo4j: authentication failed for user {bolt_env['NEO4J_USERNAME']} at {bolt_env['NEO4J_URI']}"
                     + check_text("neo4j", failures.AUTH)), bolt_name
    assert "UnknownError" not in error and elapsed < FAST
    command_says(cli, "neo4j", env, error, tmp_path)


@pytest.mark.parametrize("scheme", ["bolt+s", "bolt+ssc", "neo4j+s"])
def test_tls_asked_of_a_plaintext_bolt_server(cli, bolt_env, bolt_name, scheme, tmp_path):
    uri = bolt_env["NEO4J_URI"].replace("bolt://", f"{scheme}://")
    env = {**bolt_env, "NEO4J_URI": uri}
    _, error, elapsed = check(cli, "neo4j", env)
    assert error == (f"neo4j: TLS: {uri} does not speak TLS (it dropped the TLS handshake)"
                     + check_text("neo4j", failures.TLS_UNAVAILABLE)), bolt_name
    assert elapsed < FAST
    command_says(cli, "neo4j", env, error, tmp_path)


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
def test_bolt_unknown_host_and_refused_port(cli, scheme, tmp_path):
    env = {"NEO4J_URI": f"{scheme}://{UNKNOWN_HOST}:7687", "NEO4J_USERNAME": "neo4j", "NEO4J_PASSWORD": "x"}
    _, error, elapsed = check(cli, "neo4j", env, timeout=10)
    assert error == f"neo4j: cannot resolve host {UNKNOWN_HOST}" + check_text("neo4j", failures.DNS)
    assert elapsed < FAST
    command_says(cli, "neo4j", env, error, tmp_path)

    refused = {**env, "NEO4J_URI": f"{scheme}://127.0.0.1:{free_port()}"}
    _, error, elapsed = check(cli, "neo4j", refused, timeout=10)  # 8 s before: every refusal was retried
    assert error == (f"neo4j: connection refused at {refused['NEO4J_URI']}"
                     + check_text("neo4j", failures.REFUSED))
    assert elapsed < FAST
    command_says(cli, "neo4j", refused, error, tmp_path)


def test_bolt_tls_refusals(cli, neo4j_tls_server, test_ca, monkeypatch):
    """A real Neo4j serving the test CA's `localhost` certificate, over TLS only."""
    port = neo4j_tls_server.port
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.other_ca_cert))
    for uri in (f"bolt+s://localhost:{port}", f"neo4j+s://localhost:{port}"):  # neo4j+s: through the routing error
        _, error, elapsed = check(cli, "neo4j", {**neo4j_tls_server.env(), "NEO4J_URI": uri})
        assert error == (f"neo4j: TLS: the certificate of {uri} is not trusted (unable to get local issuer "
                         "certificate)" + check_text("neo4j", failures.TLS_UNTRUSTED))
        assert elapsed < FAST

    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_cert))
    uri = f"bolt+s://127.0.0.1:{port}"
    _, error, _ = check(cli, "neo4j", {**neo4j_tls_server.env(), "NEO4J_URI": uri})
    assert error == (f"neo4j: TLS: the certificate of {uri} is not valid for host 127.0.0.1"
                     + check_text("neo4j", failures.TLS_HOSTNAME))

    uri = f"bolt://localhost:{port}"
    _, error, elapsed = check(cli, "neo4j", {**neo4j_tls_server.env(), "NEO4J_URI": uri})
    assert error == (f"neo4j: TLS: {uri} accepts only TLS connections (it closed the connection during the Bolt "
                     "handshake)" + check_text("neo4j", failures.TLS_REQUIRED))
    assert elapsed < FAST


# --------------------------------------------------------------------------- Redis
def test_redis_wrong_password_unknown_host_refused_and_missing_database(cli, redis_server, tmp_path):
    uri = f"redis://ragstore-nobody:not-the-password-9@127.0.0.1:{redis_server.port}/0"
    _, error, elapsed = check(cli, "redis", {"REDIS_URI": uri})
    assert error == (f"redis: authentication failed for user ragstore-nobody at "
                     f"redis://ragstore-nobody:****@127.0.0.1:{redis_server.port}/0" + check_text("redis", failures.AUTH))
    assert elapsed < FAST and "not-the-password-9" not in error
    command_says(cli, "redis", {"REDIS_URI": uri}, error, tmp_path)

    retries = {"REDIS_RETRY_ATTEMPTS": "10"}  # were any of these retried, the backoff alone would pass the bound
    for env, expected in (
        ({"REDIS_URI": f"redis://{UNKNOWN_HOST}:6379/0"},
         f"redis: cannot resolve host {UNKNOWN_HOST}" + check_text("redis", failures.DNS)),
        ({"REDIS_URI": f"redis://127.0.0.1:{(port := free_port())}/0"},
         f"redis: connection refused at redis://127.0.0.1:{port}/0" + check_text("redis", failures.REFUSED)),
        ({"REDIS_URI": f"redis://127.0.0.1:{redis_server.port}/99"},
         f"redis: database 99 does not exist at redis://127.0.0.1:{redis_server.port}/99"
         + check_text("redis", failures.DATABASE_MISSING)),
    ):
        _, error, elapsed = check(cli, "redis", {**env, **retries})
        assert error == expected
        assert elapsed < FAST  # no retries of what will not pass by itself
        command_says(cli, "redis", env, error, tmp_path)


def test_redis_tls_to_a_plain_port_times_out_and_says_the_scheme_may_be_why(cli, redis_server):
    """A plain Redis never answers a TLS hello: the wait is a timeout, whose line points at rediss://."""
    uri = f"rediss://127.0.0.1:{redis_server.port}/0"
    _, error, elapsed = check(cli, "redis", {"REDIS_URI": uri}, timeout=1.5)
    assert error.startswith(f"redis: no answer from {uri} within 1.5 s — check REDIS_URI")
    assert "rediss://" in error.split("—", 1)[1]
    assert elapsed < 3


# --------------------------------------------------------------------------- a silent port, every backend
@pytest.mark.parametrize("backend", ["postgres", "neo4j", "redis"])
def test_a_silent_port_is_a_timeout_within_the_bound(cli, backend):
    listener = SilentListener()
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(listener.port), "POSTGRES_PASSWORD": "x",
           "NEO4J_URI": f"bolt://127.0.0.1:{listener.port}", "NEO4J_USERNAME": "u", "NEO4J_PASSWORD": "p",
           "REDIS_URI": f"redis://127.0.0.1:{listener.port}/0"}
    try:
        _, error, elapsed = check(cli, backend, env, timeout=1.5)
    finally:
        listener.close()
    target = {"postgres": f"127.0.0.1:{listener.port}/postgres", "neo4j": env["NEO4J_URI"],
              "redis": env["REDIS_URI"]}[backend]
    assert error == f"{backend}: no answer from {target} within 1.5 s" + check_text(backend, failures.TIMEOUT)
    assert elapsed < 3


@pytest.mark.parametrize("backend", ["postgres", "neo4j", "redis"])
def test_a_command_facing_a_silent_port_ends_within_the_command_timeout(cli, backend, tmp_path):
    """Connecting counts against RAGSTORE_COMMAND_TIMEOUT too (PostgreSQL's 10 s connect timeout did not)."""
    (tmp_path / "rag_storage").mkdir()
    listener = SilentListener()
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(listener.port), "POSTGRES_PASSWORD": "x",
           "NEO4J_URI": f"bolt://127.0.0.1:{listener.port}", "NEO4J_USERNAME": "u", "NEO4J_PASSWORD": "p",
           "REDIS_URI": f"redis://127.0.0.1:{listener.port}/0", "WORKING_DIR": str(tmp_path / "rag_storage"),
           "RAGSTORE_COMMAND_TIMEOUT": "3"}
    try:
        started = time.monotonic()
        result = cli("workspace", "list", "--profile", PROFILE[backend], env=env)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert result.exit_code == 1, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {backend}: ") and f"127.0.0.1:{listener.port}" in first
    assert "no answer from" in first or "stopped answering" in first  # the connect timeout, or the command's guard
    assert elapsed < 4.5


# --------------------------------------------------------------------------- Redis behind a TLS-only port
@pytest.fixture
def redis_tls(redis_server, test_ca, monkeypatch):
    """The plain Redis behind a TLS-only port with the test CA's `localhost` certificate."""
    from tests.servers import TLSFront

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    front = TLSFront(redis_server.port, test_ca)
    yield front
    front.close()


def test_redis_tls_unknown_ca_wrong_host_and_plaintext_refused(cli, redis_tls, test_ca, tmp_path):
    port = redis_tls.port
    trusted = {"REDIS_URI": f"rediss://localhost:{port}/0?ssl_ca_certs={test_ca.ca_cert}"}
    result = cli("--json", "check-connections", "--backend", "redis", env=trusted)
    assert result.exit_code == 0 and result.json()[0]["details"]["tls"] is True, result.output

    unknown_ca = {"REDIS_URI": f"rediss://localhost:{port}/0?ssl_ca_certs={test_ca.other_ca_cert}"}
    _, error, elapsed = check(cli, "redis", unknown_ca)
    assert error == (f"redis: TLS: the certificate of rediss://localhost:{port}/0 is not trusted (unable to get local "
                     "issuer certificate)" + check_text("redis", failures.TLS_UNTRUSTED))
    assert elapsed < FAST
    command_says(cli, "redis", unknown_ca, error, tmp_path)

    wrong_host = {"REDIS_URI": f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={test_ca.ca_cert}"}
    _, error, _ = check(cli, "redis", wrong_host)
    assert error == (f"redis: TLS: the certificate of rediss://127.0.0.1:{port}/0 is not valid for host 127.0.0.1"
                     + check_text("redis", failures.TLS_HOSTNAME))

    plaintext = {"REDIS_URI": f"redis://localhost:{port}/0"}
    _, error, elapsed = check(cli, "redis", plaintext)
    assert error == (f"redis: TLS: redis://localhost:{port}/0 accepts only TLS connections (it closed the connection "
                     "at the first command, as a TLS-only port does)" + check_text("redis", failures.TLS_REQUIRED))
    assert elapsed < FAST
    command_says(cli, "redis", plaintext, error, tmp_path)
