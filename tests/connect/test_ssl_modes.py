"""Every libpq SSL mode against a real PostgreSQL with ssl=on and a CA made in this test run."""

from __future__ import annotations

import pytest

from tests.servers import TEST_PASSWORD


@pytest.fixture
def ssl_env(pg_ssl_server, test_ca) -> dict[str, str]:
    return {**pg_ssl_server.env(), "POSTGRES_HOST": "localhost", "POSTGRES_SSL_ROOT_CERT": str(test_ca.ca_cert)}


def _pg(cli, env: dict[str, str]):
    result = cli("--json", "check-connections", "-b", "postgres", "--timeout", "5", env=env)
    return result, result.json()[0] if result.stdout.startswith("[") else None


def test_verify_full_reports_tls_details(cli, ssl_env):
    result, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": "verify-full"})
    assert result.exit_code == 0, result.output
    details = pg["details"]
    assert details["tls"] is True
    assert details["tls_version"].startswith("TLSv1.")
    assert details["cipher"]
    assert details["certificate_verified"] is True and details["hostname_verified"] is True
    assert "localhost" in details["server_certificate"]["subject"] or details["server_certificate"]["subject"]
    assert details["server_certificate"]["not_after"] > "2026"


@pytest.mark.parametrize("mode, verified", [("require", False), ("verify-ca", True), ("prefer", False)])
def test_encrypting_modes(cli, ssl_env, mode, verified):
    result, pg = _pg(cli, {**ssl_env, "POSTGRES_SSL_MODE": mode})
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
    assert "certificate verification failed" in pg["error"]
    assert "127.0.0.1" in pg["error"] or "match" in pg["error"].lower() or "mismatch" in pg["error"].lower()


def test_verify_ca_rejects_unknown_ca(cli, ssl_env, test_ca):
    env = {**ssl_env, "POSTGRES_SSL_MODE": "verify-ca", "POSTGRES_SSL_ROOT_CERT": str(test_ca.other_ca_cert)}
    result, pg = _pg(cli, env)
    assert result.exit_code == 1
    assert "certificate verification failed" in pg["error"]


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
