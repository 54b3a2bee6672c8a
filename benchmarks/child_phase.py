"""A benchmark phase run in a fresh interpreter, so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_in_child(script: str, name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """`script --phase NAME --ctx JSON` in a new Python; the last JSON line it printed."""
    proc = subprocess.run([sys.executable, script, "--phase", name, "--ctx", json.dumps(ctx)],
                          capture_output=True, text=True, timeout=7200)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"phase {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
