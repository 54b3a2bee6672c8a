"""The tenant's env file: LightRAG settings with the generated credentials, owner-only (0600).

An existing file is updated in place: the keys ragstore writes replace their old lines, every
other line is kept. The new content goes through `atomic.write_atomic` with an owner-only mode, so
the file never exists with looser permissions or half written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ragstore_cli.atomic import OWNER_ONLY, write_atomic
from ragstore_cli.errors import UsageError

_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,-]*")
_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def check_writable(path: Path) -> Path:
    """Resolve `path` and refuse (UsageError) before anything changes when it cannot be written."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise UsageError(f"--write-env {path} is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"--write-env: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK)):
        raise UsageError(f"--write-env: cannot write {path}")
    return path


def _quote(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def keys_in(path: Path) -> set[str]:
    """The variable names an env file assigns (empty when it does not exist)."""
    if not path.exists():
        return set()
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            found.add(match.group(1))
    return found


def write(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the env file at `path`, keeping its other lines; the result is mode 0600."""
    path = check_writable(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    out: list[str] = []
    written: set[str] = set()
    for line in lines:
        match = _ASSIGNMENT.match(line)
        key = match.group(1) if match else None
        if key in values:
            if key not in written:
                out.append(f"{key}={_quote(values[key])}")
                written.add(key)
            continue
        out.append(line)
    out += [f"{key}={_quote(value)}" for key, value in values.items() if key not in written]
    write_atomic(path, "\n".join(out) + "\n", mode=OWNER_ONLY)
