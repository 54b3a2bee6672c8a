"""Every libpq SSL mode against a real PostgreSQL with ssl=on and a CA made in this test run."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.servers import TEST_PASSWORD


@pytest.fixture
def ssl_env(pg_ssl_server, test_ca) -> dict[str, str]:
    return {**pg_ssl_server.env(), "POSTGRES_HOST": "localhost", "POSTGRES_SSL_ROOT_CERT": str(test_ca.ca_cert)}


def _pg(cli, env: dict[str, str]):
    result = cli("--json", "check-connections", "-b", "postgres", "--timeout", "5", env=env)
    return result, result.json()[0] if result.stdout.startswith("[") else None


def test_verify_full_reports_tls_details(cli, ssl_env, test_ca):
    result, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": "verify-full"})
    assert result.exit_code == 0, result.output
    details = pg["details"]
    assert details["tls"] is True
    assert details["tls_version"].startswith("TLSv1.")
    assert details["cipher"]
    assert details["certificate_verified"] is True and details["hostname_verified"] is True
    server_cert = x509.load_pem_x509_certificate(test_ca.server_cert.read_bytes())
    assert details["server_certificate"]["serial"] == format(server_cert.serial_number, "x")  # this server's own
    assert details["server_certificate"]["issuer"] == server_cert.issuer.rfc4514_string()
    assert details["server_certificate"]["not_after"] > "2026"


@pytest.mark.parametrize("mode, root, verified", [("require", False, False), ("require", True, True),
                                                  ("prefer", False, False), ("prefer", True, True),
                                                  ("verify-ca", True, True)])
def test_encrypting_modes(cli, ssl_env, mode, root, verified):
    """A root certificate, when given, verifies the server in every TLS attempt (libpq)."""
    env = {**ssl_env, "POSTGRES_SSL_MODE": mode}
    if not root:
        env.pop("POSTGRES_SSL_ROOT_CERT")
    result, pg = _pg(cli, env)
    assert result.exit_code == 0, result.output
    assert pg["details"]["tls"] is True
    assert pg["details"]["certificate_verified"] is verified
    assert pg["details"]["hostname_verified"] is False


@pytest.mark.parametrize("mode", ["disable", "allow"])
def test_plain_modes(cli, ssl_env, mode):
    result, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": mode})
    assert result.exit_code == 0, result.output
    assert pg["details"]["tls"] is False


def test_verify_full_rejects_name_mismatch(cli, ssl_env):
    # The server certificate names only "localhost"; 127.0.0.1 does not match it.
    result, pg = _pg(cli, {**ssl_env, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_SSL_MODE": "verify-full"})
    assert result.exit_code == 1
    assert "certificate of 127.0.0.1:" in pg["error"] and "is not valid for host 127.0.0.1" in pg["error"]
    assert "check POSTGRES_HOST / POSTGRES_SSL_MODE" in pg["error"]


def test_verify_ca_rejects_unknown_ca(cli, ssl_env, test_ca):
    env = {**ssl_env, "POSTGRES_SSL_MODE": "verify-ca", "POSTGRES_SSL_ROOT_CERT": str(test_ca.other_ca_cert)}
    result, pg = _pg(cli, env)
    assert result.exit_code == 1
    assert "is not trusted (self-signed certificate in certificate chain)" in pg["error"]
    assert "check POSTGRES_SSL_ROOT_CERT / POSTGRES_SSL_MODE" in pg["error"]


def test_crl_is_really_checked(cli, ssl_env, test_ca):
    revoked, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CRL": str(test_ca.crl_revoking_server)})
    assert revoked.exit_code == 1
    assert "revoked" in pg["error"].lower()
    clean, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CRL": str(test_ca.crl_empty)})
    assert clean.exit_code == 0, clean.output


def test_client_certificate_authenticates(cli, ssl_env, test_ca):
    env = {**ssl_env, "POSTGRES_USER": "certuser", "POSTGRES_PASSWORD": "", "POSTGRES_SSL_MODE": "verify-full",
           "POSTGRES_SSL_CERT": str(test_ca.client_cert), "POSTGRES_SSL_KEY": str(test_ca.client_key)}
    result, pg = _pg(cli, env)
    assert result.exit_code == 0, result.output
    assert pg["details"]["user"] == "certuser"


def test_client_certificate_required_but_absent(cli, ssl_env):
    env = {**ssl_env, "POSTGRES_USER": "certuser", "POSTGRES_SSL_MODE": "verify-full"}
    result, pg = _pg(cli, env)
    assert result.exit_code == 1
    assert pg["ok"] is False and pg["error"]


def test_missing_client_key_is_a_configuration_error(cli, ssl_env, test_ca, tmp_path):
    env = {**ssl_env, "POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CERT": str(test_ca.client_cert),
           "POSTGRES_SSL_KEY": str(tmp_path / "missing.key")}
    result = cli("check-connections", "-b", "postgres", env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: POSTGRES_SSL_KEY:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cert_without_key_is_a_configuration_error(cli, ssl_env, test_ca):
    env = {**ssl_env, "POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CERT": str(test_ca.client_cert)}
    result = cli("check-connections", "-b", "postgres", env=env)
    assert result.exit_code == 2
    assert "POSTGRES_SSL_KEY" in result.stderr


def test_password_never_printed_on_tls_failure(cli, ssl_env, test_ca):
    env = {**ssl_env, "POSTGRES_SSL_MODE": "verify-ca", "POSTGRES_SSL_ROOT_CERT": str(test_ca.other_ca_cert)}
    result, _ = _pg(cli, env)
    assert TEST_PASSWORD not in result.output


# --------------------------------------------------------------------------- libpq's semantics, case by case
# Each row: sslmode, user, root certificate, CRL, client certificate → "tls" / "plain" / an error
# fragment. These are what Debian's libpq 15 (psql) does on this server (pg_hba: certuser needs a
# client certificate over TLS and is rejected in plaintext; everyone else may use either); the test
# also asks psql itself when it is there. docs/check-connections.md holds the same table.
LIBPQ_CASES = [
    ("allow", "postgres", None, None, False, "plain"),
    ("allow", "postgres", "other", None, False, "plain"),
    ("allow", "postgres", None, None, True, "plain"),
    ("allow", "certuser", None, None, True, "tls"),  # plaintext refused → TLS, with the certificate
    ("allow", "certuser", "other", None, True, "not trusted"),
    ("allow", "certuser", None, None, False, "error"),
    ("prefer", "postgres", None, None, False, "tls"),
    ("prefer", "postgres", "ca", None, False, "tls"),
    ("prefer", "postgres", "other", None, False, "plain"),  # verification failed → plaintext
    ("prefer", "postgres", "ca", "revoking", False, "plain"),
    ("prefer", "postgres", None, None, True, "tls"),
    ("prefer", "certuser", None, None, True, "tls"),
    ("prefer", "certuser", "other", None, True, "error"),  # TLS fails, plaintext refused
    ("require", "postgres", None, None, False, "tls"),
    ("require", "postgres", "ca", None, False, "tls"),
    ("require", "postgres", "other", None, False, "not trusted"),  # a root cert: verified like verify-ca
    ("require", "postgres", "ca", "revoking", False, "revoked"),
    ("require", "postgres", "ca", "empty", False, "tls"),
    ("require", "certuser", None, None, True, "tls"),
    ("require", "certuser", None, None, False, "error"),
    ("verify-ca", "postgres", "ca", "revoking", False, "revoked"),
    ("verify-ca", "postgres", "other", None, False, "not trusted"),
]


def _case_env(server, test_ca, mode, user, root, crl, cert) -> dict[str, str]:
    env = {**server.env(), "POSTGRES_HOST": "localhost", "POSTGRES_USER": user, "POSTGRES_SSL_MODE": mode}
    if user == "certuser":
        env["POSTGRES_PASSWORD"] = ""
    if root:
        env["POSTGRES_SSL_ROOT_CERT"] = str(test_ca.ca_cert if root == "ca" else test_ca.other_ca_cert)
    if crl:
        env["POSTGRES_SSL_CRL"] = str(test_ca.crl_revoking_server if crl == "revoking" else test_ca.crl_empty)
    if cert:
        env.update(POSTGRES_SSL_CERT=str(test_ca.client_cert), POSTGRES_SSL_KEY=str(test_ca.client_key))
    return env


def _libpq(server, env: dict[str, str], tmp_path) -> str | None:
    """What psql (libpq) does with the same settings: "tls", "plain" or "error"; None without psql."""
    import shutil
    import subprocess

    from tests.servers import ssl_capable_bin_dir

    bin_dir = ssl_capable_bin_dir()
    psql = bin_dir / "psql" if bin_dir and (bin_dir / "psql").exists() else shutil.which("psql")
    if not psql:
        return None
    keys = {"POSTGRES_SSL_ROOT_CERT": "sslrootcert", "POSTGRES_SSL_CRL": "sslcrl", "POSTGRES_SSL_CERT": "sslcert",
            "POSTGRES_SSL_KEY": "sslkey"}
    dsn = (f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} dbname={env['POSTGRES_DATABASE']} "
           f"user={env['POSTGRES_USER']} sslmode={env['POSTGRES_SSL_MODE']} connect_timeout=5 "
           + " ".join(f"{v}={env[k]}" for k, v in keys.items() if k in env))
    run = subprocess.run([str(psql), dsn, "-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
                         capture_output=True, text=True, timeout=20,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PGPASSWORD": env["POSTGRES_PASSWORD"]})
    if run.returncode != 0:
        return "error"
    return "tls" if run.stdout.strip() == "t" else "plain"


@pytest.mark.parametrize("mode, user, root, crl, cert, expected", LIBPQ_CASES)
def test_ssl_modes_behave_as_libpq(cli, pg_ssl_server, test_ca, tmp_path, mode, user, root, crl, cert, expected):
    env = _case_env(pg_ssl_server, test_ca, mode, user, root, crl, cert)
    libpq = _libpq(pg_ssl_server, env, tmp_path)
    if libpq is not None:  # the table is libpq's: keep it honest
        assert libpq == (expected if expected in ("tls", "plain") else "error"), f"psql does {libpq}"
    result, pg = _pg(cli, env)
    if expected in ("tls", "plain"):
        assert result.exit_code == 0, result.output
        assert pg["details"]["tls"] is (expected == "tls")
        assert pg["details"]["user"] == user
    else:
        assert result.exit_code == 1, result.output
        assert expected == "error" or expected in pg["error"].lower(), pg["error"]


@pytest.mark.parametrize("mode, expected", [("allow", "plain"), ("prefer", "plain"), ("require", "error")])
def test_a_server_without_tls_with_a_client_certificate(cli, pg_server, test_ca, tmp_path, mode, expected):
    """The embedded server has no TLS: prefer (and allow) fall back to plaintext as libpq does, even
    with a client certificate configured; require fails."""
    env = {**pg_server.env(), "POSTGRES_SSL_MODE": mode, "POSTGRES_SSL_CERT": str(test_ca.client_cert),
           "POSTGRES_SSL_KEY": str(test_ca.client_key)}
    result, pg = _pg(cli, env)
    if expected == "plain":
        assert result.exit_code == 0, result.output
        assert pg["details"]["tls"] is False
    else:
        assert result.exit_code == 1, result.output


@pytest.mark.parametrize("mode", ["allow", "prefer", "require"])
def test_a_crl_that_cannot_be_checked_is_refused(cli, pg_ssl_server, test_ca, mode):
    """libpq ignores a CRL when it does not verify the server (no root certificate); ragstore says so."""
    env = {**pg_ssl_server.env(), "POSTGRES_SSL_MODE": mode, "POSTGRES_SSL_CRL": str(test_ca.crl_revoking_server)}
    result = cli("check-connections", "-b", "postgres", env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: POSTGRES_SSL_CRL:") and "POSTGRES_SSL_ROOT_CERT" in result.stderr
