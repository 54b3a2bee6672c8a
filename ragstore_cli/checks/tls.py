"""What a TLS session looks like from the client side: protocol, cipher, server certificate."""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, *, hostname_verified: bool, verified: bool) -> dict[str, Any]:
    """`{"tls": False}` for plain connections, else protocol/cipher/certificate details."""
    if ssl_object is None:
        return {"tls": False}
    cipher = ssl_object.cipher()
    info: dict[str, Any] = {
        "tls": True,
        "tls_version": ssl_object.version(),
        "cipher": cipher[0] if cipher else None,
        "certificate_verified": verified,
        "hostname_verified": hostname_verified,
    }
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        cert = x509.load_der_x509_certificate(der)
        info["server_certificate"] = {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "serial": format(cert.serial_number, "x"),
        }
    return info
