"""`workspace copy` and `workspace rename` across the backends of a profile, finishable after a kill.

Each backend does its part natively where it can — a staged folder renamed into place, one SQL
transaction, server-side Cypher in batches, Redis COPY/RENAMENX (contract.WorkspaceAdmin) — or else
streams it through the engine (`move()` from the source workspace to the target one). Across
backends nothing is atomic, and a Bolt server copies in batches, so the operation is noted in the
ledger (ledger.py, the coordination store's journal) before any backend is touched and the note is
removed after the last:

- an unfinished **copy** is restarted: DST is dropped in every backend of the profile (the note
  proves it holds only what the killed copy wrote) and copied again from the untouched source;
- an unfinished **rename** is continued: backends already done are skipped, a backend whose
  source is gone is done, a Bolt rename relabels the nodes it had not reached, and a streamed
  rename whose copy finished only drops the source.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.backends.registry import Profile, describe, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.engine.ledger import Ledger, Note, journal
from ragstore_cli.engine.move import MovePlan, move
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.engine.workspaces import (WorkspaceSource, WorkspaceTarget, drop_each, open_backend, shown,
                                            workspace_locks)
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.records import ROLE_ORDER
from ragstore_cli.workspace import collisions, validate_workspace


async def copy_workspace(settings: Settings, profile_text: str | None, source: str, target: str, *,
                         move: bool = False, lock_timeout: float | None = None,
                         observer: Observer = NOTHING) -> dict[str, Any]:
    """Copy (or, with `move`, rename) a workspace inside each backend of the profile, under both
    workspaces' locks; a re-run after a kill finishes the job (see the module docstring). A native
    copy is the observer's `copy` phase (its section: the backend), a streamed one a move's phases."""
    source, target = validate_workspace(source), validate_workspace(target)
    profile = parse_profile(profile_text, settings)
    if source == target:
        raise UsageError("source and target workspace are the same")
    command = "workspace rename" if move else "workspace copy"
    async with workspace_locks(settings, [source, target], command, lock_timeout):
        async with journal(settings, target) as ledger:
            return await _copy(settings, ledger, profile, source, target, "rename" if move else "copy", observer)


async def _existing(settings: Settings, profile: Profile) -> set[str]:
    found: set[str] = set()
    for name in dict.fromkeys(profile.values()):
        backend = await open_backend(settings, name, "")
        try:
            found.update(await backend.list_workspaces())
        finally:
            await backend.close()
    return found


async def _check_pair(settings: Settings, profile: Profile, source: str, target: str, move: bool) -> list[str]:
    """Source present, target absent; returns the names the target collides with."""
    existing = await _existing(settings, profile)
    if source not in existing:
        raise UsageError(f"no workspace {shown(source)!r} in any backend of profile {describe(profile)}")
    if target in existing:
        raise UsageError(f"workspace {shown(target)!r} already exists; drop it first or choose another name")
    return collisions(target, sorted(existing - {source} if move else existing))


async def _copy(settings: Settings, ledger: Ledger, profile: Profile, source: str, target: str, op: str,
                observer: Observer) -> dict[str, Any]:
    pending = await ledger.pending()
    resumed = pending is not None
    if pending is not None:
        pending.refuse_other(op, source, describe(profile))
    if pending is not None and op == "copy":
        await drop_each(settings, profile, target)  # a copy restarts from an empty target
        pending = None
    if pending is None:
        collides = await _check_pair(settings, profile, source, target, op == "rename")
        pending = Note(op, source, target, describe(profile))
        await ledger.save(pending)
    else:
        collides = collisions(target, sorted(await _existing(settings, profile) - {source, target}))
    report: dict[str, Any] = {"source": source, "target": target, "profile": describe(profile),
                              "collides_with": collides, "resumed": resumed, "backends": {}}
    for name in dict.fromkeys(profile.values()):
        if name in pending.done:
            report["backends"][name] = {"method": "finished before", "details": {}}
            continue
        report["backends"][name] = await _one(settings, ledger, pending, profile, name, resumed, observer)
        pending.done[name] = 1
        await ledger.save(pending)
    await ledger.clear()
    return report


async def _one(settings: Settings, ledger: Ledger, pending: Note, profile: Profile, name: str,
               resumed: bool, observer: Observer) -> dict[str, Any]:
    rename, source, target = pending.op == "rename", pending.source, pending.target
    native = "rename_workspace" if rename else "copy_workspace"
    backend = await open_backend(settings, name, source)
    try:
        if hasattr(backend, native):
            observer.phase("copy", None, "")
            observer.section(f"copy {name}")
            if rename and resumed:
                done = await _resume_native_rename(backend, name, source, target)
            else:
                done = {"method": "native", "details": await getattr(backend, native)(target)}
            observer.phase_done("copy")
            return done
        if rename and name in pending.copied:  # killed while dropping the source: finish that
            await backend.drop_workspace()
            return {"method": "stream", "details": {}, "dropped_fields": {}}
        if rename and resumed:
            await _drop(settings, name, target)  # a streamed copy the kill interrupted
        streamed = await _stream(settings, profile, name, source, target, observer)
        if rename:
            pending.copied.append(name)
            await ledger.save(pending)
            await backend.drop_workspace()
        return {"method": "stream", "details": streamed.counts, "dropped_fields": streamed.dropped}
    finally:
        await backend.close()


async def _resume_native_rename(backend: Any, name: str, source: str, target: str) -> dict[str, Any]:
    present = set(await backend.list_workspaces())
    if source not in present:
        return {"method": "native", "details": {}, "note": "already renamed"}
    if target not in present:
        return {"method": "native", "details": await backend.rename_workspace(target)}
    if not getattr(backend, "resumable_rename", False):
        raise OperationFailed(f"{name}: both {shown(source)!r} and {shown(target)!r} hold data after an "
                              "interrupted rename; inspect them with `workspace show` before going on")
    return {"method": "native", "details": await backend.rename_workspace(target, resume=True)}


async def _drop(settings: Settings, name: str, workspace: str) -> None:
    backend = await open_backend(settings, name, workspace)
    try:
        await backend.drop_workspace()
    finally:
        await backend.close()


async def _stream(settings: Settings, profile: Profile, name: str, source: str, target: str,
                  observer: Observer) -> Any:
    """Copy the roles backend `name` serves through the engine (a backend without a native copy);
    the caller holds both locks and the journal, so the move keeps neither."""
    roles = {role: name for role in ROLE_ORDER if profile[role] == name}
    return await move(WorkspaceSource(settings, roles, source, lock=False, verb="copy", outcome="the copy stopped"),
                      WorkspaceTarget(settings, roles, target, lock=False, keep_ledger=False),
                      MovePlan(op="copy", mode="replace"), observer)
