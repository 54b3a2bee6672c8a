"""SSL for PostgreSQL with libpq's sslmode semantics, and a CRL that is really checked.

LightRAG 1.5.7 passes an unsupported keyword when a CRL is configured, so its CRL path always
fails; here the CRL is loaded into the context's store and leaf checking is switched on.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ragstore_cli.config import Settings
from ragstore_cli.errors import ConfigError


@dataclass(frozen=True)
class PgSSL:
    """What to hand asyncpg (`ssl=`), plus what the check reports."""

    mode: str
    ssl: ssl.SSLContext | str | bool | None
    verifies_certificate: bool
    verifies_hostname: bool


def build_pg_ssl(settings: Settings) -> PgSSL:
    """The asyncpg `ssl` argument for POSTGRES_SSL_MODE and its certificate settings."""
    mode = settings["POSTGRES_SSL_MODE"] or "prefer"
    root = settings["POSTGRES_SSL_ROOT_CERT"]
    cert, key, crl = settings["POSTGRES_SSL_CERT"], settings["POSTGRES_SSL_KEY"], settings["POSTGRES_SSL_CRL"]
    if mode == "disable":
        return PgSSL(mode, False, False, False)
    if mode in ("allow", "prefer") and not cert:
        # asyncpg implements libpq's fallback semantics for these two modes itself.
        return PgSSL(mode, mode, False, False)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    verify = mode in ("verify-ca", "verify-full")
    ctx.check_hostname = mode == "verify-full"
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            if root:
                ctx.load_verify_locations(cafile=root)
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("POSTGRES_SSL_ROOT_CERT", f"cannot load CA certificates: {exc}") from None
        if crl:
            try:
                ctx.load_verify_locations(cafile=crl)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError("POSTGRES_SSL_CRL", f"cannot load the CRL: {exc}") from None
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        try:
            ctx.load_cert_chain(certfile=cert, keyfile=key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("POSTGRES_SSL_KEY", f"cannot load the client certificate and key: {exc}") from None
    return PgSSL(mode, ctx, verify, ctx.check_hostname)
