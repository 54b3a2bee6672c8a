"""The result of one backend check, as `--json` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """`backend`, `ok`, `latency_ms`, `details`, `error`: the documented JSON shape."""

    backend: str
    ok: bool
    latency_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": self.ok, "latency_ms": self.latency_ms,
                "details": self.details, "error": self.error}
