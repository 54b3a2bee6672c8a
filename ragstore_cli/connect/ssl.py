"""SSL for PostgreSQL with libpq's sslmode semantics, and a CRL that is really checked.

What libpq does, mode by mode (checked against Debian's libpq 15 with psql; docs/check-connections.md
has the table), and so what ragstore does:
- `disable`: plaintext only; certificates and CRL are ignored.
- `allow`: plaintext first; if the server answers it with an error (pg_hba.conf allows only TLS for
  this user, a failed login...), once more over TLS.
- `prefer`: TLS first; if the server has no TLS, or the TLS attempt fails (handshake, certificate
  verification, a login refused over TLS), once more in plaintext.
- `require`: TLS only.
- `verify-ca`, `verify-full`: TLS only, the server certificate verified (and its host name).
In every TLS attempt a root certificate, when given, is used: the server certificate is verified
against it (and the CRL, every certificate of the chain) even under allow/prefer/require, and a
client certificate is presented. ragstore builds its own context for every TLS attempt and never
hands asyncpg a mode string: asyncpg would read libpq's PGSSL* variables and ~/.postgresql files,
which are not LightRAG's settings.

Two deliberate differences: verify-ca/verify-full without POSTGRES_SSL_ROOT_CERT use the system's
trusted CAs (libpq wants ~/.postgresql/root.crt or `sslrootcert=system`), and a CRL that could not
be checked (no root certificate under allow/prefer/require) is refused when the settings load
(config.py), where libpq ignores it. LightRAG 1.5.7 passes an unsupported keyword when a CRL is configured, so its
CRL path always fails; here the CRL is loaded into the context's store.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ragstore_cli.config import Settings
from ragstore_cli.errors import ConfigError

ORDER = {  # the attempts of each mode, in libpq's order: True = TLS, False = plaintext
    "disable": (False,),
    "allow": (False, True),
    "prefer": (True, False),
    "require": (True,),
    "verify-ca": (True,),
    "verify-full": (True,),
}


@dataclass(frozen=True)
class PgSSL:
    """How to connect: the attempts in libpq's order, and what the check reports."""

    mode: str
    context: ssl.SSLContext | None  # the TLS attempts' context (None: the mode never uses TLS)
    verifies_certificate: bool  # in a TLS attempt
    verifies_hostname: bool

    @property
    def attempts(self) -> list[ssl.SSLContext | bool]:
        """What to hand asyncpg (`ssl=`) for each attempt, in order."""
        return [self.context if tls else False for tls in ORDER[self.mode]]

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        """The first attempt's `ssl=` argument."""
        return self.attempts[0]

    def falls_back(self, exc: BaseException, attempt: int) -> bool:
        """Does libpq try the next attempt after attempt number `attempt` failed with `exc`?"""
        if attempt + 1 >= len(ORDER[self.mode]):
            return False
        import asyncpg

        if isinstance(exc, asyncpg.PostgresError):  # the server answered with an error (pg_hba, login)
            return True
        plaintext_failed = not ORDER[self.mode][attempt]
        if plaintext_failed:  # allow: only a server's refusal leads to the TLS attempt
            return False
        # prefer: a failed TLS attempt (no TLS on the server, handshake, verification) → plaintext
        return isinstance(exc, (ssl.SSLError, ConnectionError)) and not isinstance(exc, ConnectionRefusedError)


def build_pg_ssl(settings: Settings) -> PgSSL:
    """The SSL attempts for POSTGRES_SSL_MODE and its certificate settings."""
    mode = settings.postgres.ssl_mode or "prefer"
    root = settings.postgres.ssl_root_cert
    cert, key, crl = settings.postgres.ssl_cert, settings.postgres.ssl_key, settings.postgres.ssl_crl
    if mode == "disable":
        return PgSSL(mode, None, False, False)
    verify = bool(root) or mode in ("verify-ca", "verify-full")  # a CRL alone is refused in config.py
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
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
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN  # libpq: X509_V_FLAG_CRL_CHECK | _CRL_CHECK_ALL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        try:
            ctx.load_cert_chain(certfile=cert, keyfile=key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("POSTGRES_SSL_KEY", f"cannot load the client certificate and key: {exc}") from None
    return PgSSL(mode, ctx, verify, ctx.check_hostname)
