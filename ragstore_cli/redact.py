"""Secret masking: passwords never reach output, logs, error messages or exception text.

Two mechanisms: DSN/URI userinfo is masked by pattern, and every secret value the configuration
loaded is registered here so that it is replaced wherever it appears in a message.
"""

from __future__ import annotations

import re

MASK = "****"
_secrets: set[str] = set()
_URI_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)")


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears."""
    if value and len(value) >= 3:
        _secrets.add(value)


def redact(text: str) -> str:
    """Mask URI passwords, `password=` pairs and every registered secret in `text`."""
    if not text:
        return text
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_uri(uri: str | None) -> str | None:
    """A URI with its password (if any) replaced by the mask."""
    return None if uri is None else redact(uri)
