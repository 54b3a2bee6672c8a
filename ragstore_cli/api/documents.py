"""The shapes of the documents the workspace and migrate verbs return (what `--json` prints), for
type checkers and readers; at run time they are plain dicts. The keys of a `total=False` part appear
only where they apply (Python 3.10 has no NotRequired)."""

from __future__ import annotations

from typing import Any, TypedDict


class WorkspaceEntry(TypedDict):
    workspace: str
    backends: list[str]  # the backends of the profile that hold it
    counts: dict[str, int]  # records per role: kv, vector, graph, doc_status
    collides_with: list[str]  # names LightRAG's server layer folds to the same workspace


class WorkspaceListing(TypedDict):
    profile: str  # the profile resolved per role, e.g. kv=files,vector=files,graph=files,doc_status=files
    workspaces: list[WorkspaceEntry]


class _NamespaceCount(TypedDict):
    backend: str
    namespace: str
    role: str
    count: int


class NamespaceRow(_NamespaceCount, total=False):
    """One namespace of one backend (backends/contract.py NamespaceStats, where the backend keeps them)."""

    bytes: int | None
    last_update: float | None  # Unix seconds
    dimension: int | None  # vector namespaces
    model: str | None  # vector namespaces
    location: str  # file or table


class WorkspaceShown(TypedDict):
    workspace: str
    profile: str
    namespaces: list[NamespaceRow]
    last_update: float | None
    collides_with: list[str]


class WorkspaceCreated(TypedDict):
    workspace: str
    profile: str
    created: dict[str, list[str]]  # backend → what it prepared (empty: already prepared)
    collides_with: list[str]


class WorkspaceDropped(TypedDict):
    workspace: str
    profile: str
    removed: dict[str, dict[str, int]]  # backend → namespace → records removed
    traces: list[str]  # ragstore's own leftovers removed with it (ledgers, staging, copy journal)


class _BackendCopyDone(TypedDict):
    method: str  # native | stream | finished before
    details: dict[str, Any]


class BackendCopy(_BackendCopyDone, total=False):
    dropped_fields: dict[str, list[str]]  # stream: fields the target cannot keep
    note: str


class WorkspaceCopied(TypedDict):
    source: str
    target: str
    profile: str
    collides_with: list[str]
    resumed: bool  # an interrupted copy or rename was finished
    backends: dict[str, BackendCopy]


class _SchemaRevision(TypedDict):
    target: str  # the database, without credentials
    revision: str | None  # None: not managed by ragstore yet
    head: str
    behind: bool


class SchemaState(_SchemaRevision, total=False):
    pending: list[str]  # migrate_check: the revisions still to apply
