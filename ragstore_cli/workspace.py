"""Workspace names: validated once, here, for every backend, and mapped to each backend's unit.

LightRAG itself only rejects `/`, `\\`, `.` and `..` (docs/lightrag-formats.md); its server layer rewrites
anything outside `[a-zA-Z0-9_]` to `_`, which makes `a-b` and `a_b` the same workspace there and
in AGE graph names and Neo4j full-text index names. ragstore accepts what LightRAG accepts minus
what is unsafe anywhere: control characters, NUL, path separators, glob characters (Redis SCAN),
backticks (Cypher labels), leading/trailing spaces and names over 64 characters.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragstore_cli.errors import UsageError

MAX_LENGTH = 64
PG_DEFAULT = "default"
NEO4J_DEFAULT = "base"
_FORBIDDEN = set('/\\*?[]{}`\'"$:;|&<>%!~#,=')
_LOSSY = re.compile(r"[^a-zA-Z0-9_]")


class Workspace(str):
    """A workspace name `validate_workspace` accepted: checked once, where it came in (a plan, a CLI
    argument, a setting, a name read from a backend), and trusted from there on."""

    __slots__ = ()


def validate_workspace(name: str | None) -> Workspace:
    """Return `name` ("" for the default workspace) as a Workspace, or raise UsageError saying why it
    is refused. A name already checked is returned as it is."""
    if isinstance(name, Workspace):
        return name
    if name is None or name == "":
        return Workspace("")
    if not isinstance(name, str):
        raise UsageError("workspace name must be text")
    _refuse_unsafe(name)
    return Workspace(name)


def _refuse_unsafe(name: str) -> None:
    shown = repr(name[:40] + ("…" if len(name) > 40 else ""))
    if len(name) > MAX_LENGTH:
        raise UsageError(f"workspace name {shown} is longer than {MAX_LENGTH} characters")
    if name in (".", "..") or name.startswith("."):
        raise UsageError(f"workspace name {shown} may not start with '.'")
    if name != name.strip():
        raise UsageError(f"workspace name {shown} has leading or trailing spaces")
    bad = sorted({c for c in name if c in _FORBIDDEN or ord(c) < 32 or ord(c) == 127 or c.isspace() and c != " "})
    if bad:
        listed = " ".join(repr(c) for c in bad)
        raise UsageError(f"workspace name {shown} contains characters that are not allowed: {listed}")


def lossy_key(name: str) -> str:
    """The name as LightRAG's server header / AGE / full-text index names fold it (`a-b` → `a_b`)."""
    return _LOSSY.sub("_", name)


def collisions(name: str, existing: list[str]) -> list[str]:
    """Existing workspaces that LightRAG's lossy folding would confuse with `name`."""
    key = lossy_key(name)
    return [other for other in existing if other != name and lossy_key(other) == key]


def files_dir(working_dir: Path, workspace: str) -> Path:
    """The folder LightRAG's file storages use: the root for "", else a direct subfolder."""
    root = Path(working_dir).resolve()
    folder = (root / workspace).resolve() if workspace else root
    if folder != root and folder.parent != root:  # belt and braces: never escape the working dir
        raise UsageError(f"workspace {workspace!r} would leave the working directory")
    return folder


def pg_workspace(workspace: str) -> str:
    """The value of PostgreSQL's `workspace` column ("" ↔ `default`)."""
    return workspace or PG_DEFAULT


def neo4j_label(workspace: str) -> str:
    """The Neo4j node label isolating the workspace ("" ↔ `base`)."""
    return workspace or NEO4J_DEFAULT


def quote_label(label: str) -> str:
    """A Cypher identifier in backticks, backticks doubled (as LightRAG's Neo4j storage does)."""
    if "\x00" in label:
        raise UsageError("a Cypher label cannot contain NUL")
    return "`" + label.replace("`", "``") + "`"


def redis_prefix(workspace: str, namespace: str) -> str:
    """LightRAG's Redis key prefix: `<workspace>_<namespace>`, or `<namespace>` for the default."""
    return f"{workspace}_{namespace}" if workspace else namespace


def redis_glob_escape(text: str) -> str:
    """Escape SCAN/KEYS glob characters so a pattern matches `text` literally."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
