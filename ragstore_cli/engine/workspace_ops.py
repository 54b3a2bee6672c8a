"""What `ragstore workspace …` does, as library calls over the backends of a profile (copy and rename
are copy.py's `copy_workspace`).

Each function opens the profile's backends, does its work per backend and returns a JSON-ready
report. The names given are checked once, here (workspace.py).
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.backends.registry import Profile, create_backend, describe, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.engine.copy import copy_workspace
from ragstore_cli.engine.ledger import JournalStore
from ragstore_cli.engine.workspaces import drop_each, open_backend, shown, workspace_locks
from ragstore_cli.errors import UsageError
from ragstore_cli.records import KV_NAMESPACES, ROLE_ORDER, VECTOR_NAMESPACES, Role
from ragstore_cli.workspace import collisions, files_dir, validate_workspace

_ROLE_NAMESPACES = {
    Role.KV: set(KV_NAMESPACES),
    Role.VECTOR: set(VECTOR_NAMESPACES),
    Role.DOC_STATUS: {"doc_status"},
    Role.GRAPH: {"chunk_entity_relation", "chunk_entity_relation:nodes", "chunk_entity_relation:edges"},
}


def _roles_of(profile: Profile, backend: str) -> list[Role]:
    return [role for role in ROLE_ORDER if profile[role] == backend]


async def _stats(backend: Any, roles: list[Role]) -> list[dict[str, Any]]:
    """Per-namespace stats for the roles this backend serves in the profile (counts if no stats())."""
    wanted = set().union(*(_ROLE_NAMESPACES[r] for r in roles)) if roles else set()
    if hasattr(backend, "stats"):
        return [vars(s) | {"role": s.role.value} for s in await backend.stats() if s.namespace in wanted]
    out: list[dict[str, Any]] = []
    for role in roles:
        if role is Role.KV:
            for ns in KV_NAMESPACES:
                out.append({"namespace": ns, "role": role.value, "count": await backend.kv().count(ns)})
        elif role is Role.VECTOR:
            for ns in VECTOR_NAMESPACES:
                out.append({"namespace": ns, "role": role.value, "count": await backend.vectors().count(ns),
                            "dimension": await backend.vectors().dimension(ns)})
        elif role is Role.GRAPH:
            nodes, edges = await backend.graph().count()
            out += [{"namespace": "chunk_entity_relation:nodes", "role": role.value, "count": nodes},
                    {"namespace": "chunk_entity_relation:edges", "role": role.value, "count": edges}]
        else:
            out.append({"namespace": "doc_status", "role": role.value, "count": await backend.doc_status().count()})
    return [s for s in out if s["count"]]


async def list_workspaces(settings: Settings, profile_text: str | None) -> dict[str, Any]:
    """Every workspace in every backend of the profile, with record counts per role."""
    profile = parse_profile(profile_text, settings)
    found: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(profile.values()):
        roles = _roles_of(profile, name)
        backend = await open_backend(settings, name, "")
        try:
            names = await backend.list_workspaces()
        finally:
            await backend.close()
        for ws in names:
            entry = found.setdefault(ws, {"workspace": ws, "backends": [], "counts": {r.value: 0 for r in ROLE_ORDER}})
            entry["backends"].append(name)
            bound = await open_backend(settings, name, ws)
            try:
                for item in await _stats(bound, roles):
                    entry["counts"][item["role"]] += item["count"]
            finally:
                await bound.close()
    everything = sorted(found)
    for ws, entry in found.items():
        entry["collides_with"] = collisions(ws, everything) if ws else []
    return {"profile": describe(profile), "workspaces": [found[ws] for ws in everything]}


async def show_workspace(settings: Settings, profile_text: str | None, workspace: str) -> dict[str, Any]:
    """Counts per namespace, vector model and dimension, sizes and last update, per backend."""
    workspace = validate_workspace(workspace)
    profile = parse_profile(profile_text, settings)
    namespaces: list[dict[str, Any]] = []
    existing: set[str] = set()
    for name in dict.fromkeys(profile.values()):
        backend = await open_backend(settings, name, workspace)
        try:
            existing.update(await backend.list_workspaces())
            for item in await _stats(backend, _roles_of(profile, name)):
                namespaces.append({"backend": name, **item})
        finally:
            await backend.close()
    if workspace not in existing and not namespaces:
        raise UsageError(f"no workspace {shown(workspace)!r} in any backend of profile {describe(profile)}")
    last = [n["last_update"] for n in namespaces if n.get("last_update")]
    return {"workspace": workspace, "profile": describe(profile), "namespaces": namespaces,
            "last_update": max(last) if last else None,
            "collides_with": collisions(workspace, sorted(existing)) if workspace else []}


async def create_workspace(settings: Settings, profile_text: str | None, workspace: str) -> dict[str, Any]:
    """Prepare what each backend needs so LightRAG can start on an empty workspace."""
    workspace = validate_workspace(workspace)
    profile = parse_profile(profile_text, settings)
    report: dict[str, Any] = {"workspace": workspace, "profile": describe(profile), "created": {}, "collides_with": []}
    for name in dict.fromkeys(profile.values()):
        backend = await open_backend(settings, name, workspace)
        try:
            report["collides_with"] += [c for c in collisions(workspace, await backend.list_workspaces())
                                        if c not in report["collides_with"]]
            if hasattr(backend, "create_workspace"):
                report["created"][name] = await backend.create_workspace(
                    embedding_model=settings.embedding.model, embedding_dim=settings.embedding.dim)
            else:
                report["created"][name] = []
        finally:
            await backend.close()
    return report


async def drop_workspace(settings: Settings, profile_text: str | None, workspace: str, *, yes: bool,
                         lock_timeout: float | None = None) -> dict[str, Any]:
    """Delete the workspace from every backend of the profile, with every trace ragstore keeps of it
    (ledgers and staging of killed loads, the copy journal, staged keys and nodes); refuses without
    `yes`, and refuses a workspace that is in none of the backends and left no trace (a misspelt name)."""
    workspace = validate_workspace(workspace)
    profile = parse_profile(profile_text, settings)
    if not yes:
        raise UsageError(f"refusing to drop workspace {shown(workspace)!r} without --yes")
    names = list(dict.fromkeys(profile.values()))
    if not await _present(settings, names, workspace):
        raise UsageError(f"no workspace {shown(workspace)!r} in any backend of profile {describe(profile)}, "
                         "and no trace of one: nothing to drop", hint="`ragstore workspace list` shows what exists")
    async with workspace_locks(settings, [workspace], "workspace drop", lock_timeout):
        traces = await _traces(settings, names, workspace, remove=True)
        removed = await drop_each(settings, profile, workspace)
        journal = JournalStore(settings, workspace)
        try:
            if await journal.clear():  # a dropped workspace is no unfinished copy any more
                traces.append(f"workspace-transfer journal of {shown(workspace)!r}")
        finally:
            await journal.close()
    return {"workspace": workspace, "profile": describe(profile), "removed": removed, "traces": traces}


async def _traces(settings: Settings, names: list[str], workspace: str, *, remove: bool) -> list[str]:
    """What killed or refused loads into `workspace` left in each backend (ledgers, staging), removed
    when `remove`: nothing of a dropped workspace may block or confuse a later load."""
    found: list[str] = []
    for name in names:
        found += await create_backend(name, settings, workspace).traces(workspace, remove=remove)
    return found


async def _present(settings: Settings, names: list[str], workspace: str) -> bool:
    """The workspace holds data in one of the backends, or ragstore keeps a trace of it."""
    if "files" in names and workspace and files_dir(settings.working_dir, workspace).is_dir():
        return True  # a folder a killed drop emptied but could not remove yet
    for name in names:
        backend = await open_backend(settings, name, workspace)
        try:
            if workspace in await backend.list_workspaces():
                return True
        finally:
            await backend.close()
    if await _traces(settings, names, workspace, remove=False):
        return True
    journal = JournalStore(settings, workspace)
    try:
        return await journal.exists()
    finally:
        await journal.close()


__all__ = ["copy_workspace", "create_workspace", "drop_workspace", "list_workspaces", "show_workspace"]
