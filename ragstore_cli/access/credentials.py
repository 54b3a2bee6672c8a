"""Tenant login names and passwords: validated names, generated passwords, server-side verifiers.

A password is generated here, written only to the owner-only env file, and sent to the servers
only as a verifier (PostgreSQL SCRAM-SHA-256, Redis `#<sha256>`), so neither a statement log nor
`ACL LIST` ever holds it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets

from ragstore_cli.errors import UsageError
from ragstore_cli.redact import register_secret

ROLE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: Names that PostgreSQL, Redis or ragstore give a meaning of their own.
RESERVED = {"public", "none", "default", "current_user", "current_role", "session_user", "user", "all",
            "postgres", "root", "admin"}
SCRAM_ITERATIONS = 4096


def validate_role(name: str | None) -> str:
    """A login name usable unquoted in SQL, in a Redis ACL and as an OS user name; UsageError otherwise."""
    if not name:
        raise UsageError("--role needs a name")
    shown = repr(name[:40] + ("…" if len(name) > 40 else ""))
    if not ROLE_PATTERN.fullmatch(name):
        raise UsageError(f"role name {shown} is not allowed: use 1-63 characters a-z, 0-9 and _, starting with a letter")
    if name.startswith("pg_") or name in RESERVED:
        raise UsageError(f"role name {shown} is reserved")
    return name


def new_password() -> str:
    """A random password (256 bits, URL-safe so it fits a REDIS_URI), registered for redaction."""
    password = secrets.token_urlsafe(32)
    register_secret(password)
    return password


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The `SCRAM-SHA-256$…` verifier PostgreSQL stores (RFC 5802/7677); the server never sees the password."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def redis_password_hash(password: str) -> str:
    """The hex SHA-256 Redis keeps for a password (`ACL SETUSER … #<hash>`)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()
