"""Secret masking: passwords never reach output, logs, error messages or exception text.

Two mechanisms: every secret value the configuration loaded is registered here and replaced
wherever it appears (also as JSON or Python `repr` would escape it), first; then DSN/URI userinfo
is masked by pattern. A URI password may hold any character, a raw `@`, `/` or `:` included (people
paste them unencoded), so the userinfo of a URI runs to the LAST `@` of its whitespace-free token:
`redis://user:p@ss/w:rd@host` masks `p@ss/w:rd`, whole. That may mask more than the password when
a path or query of the same token holds an `@`; it never masks less.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

MASK = "****"
_secrets: set[str] = set()
_URI_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S*)@")
_KV_PASSWORD = re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)")


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears (raw, JSON- or repr-escaped)."""
    if not value or len(value) < 3:
        return
    _secrets.update({value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], repr(value)[1:-1]})


def uri_password(uri: str | None) -> str | None:
    """The password of `scheme://user:password@host...`, up to the last `@` (whatever it holds)."""
    if not uri or "://" not in uri:
        return None
    rest = uri.split("://", 1)[1]
    userinfo, at, _host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1]


def register_uri_password(uri: str | None) -> None:
    """Register a URI's password, as written and percent-decoded (the form a driver may echo)."""
    password = uri_password(uri)
    if password:
        register_secret(password)
        register_secret(unquote(password))


def redact(text: str) -> str:
    """Mask every registered secret, URI passwords and `password=` pairs in `text`."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_uri(uri: str | None) -> str | None:
    """A URI with its password (if any) replaced by the mask."""
    return None if uri is None else redact(uri)
