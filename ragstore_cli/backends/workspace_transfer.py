"""`workspace copy` and `workspace rename` across the backends of a profile, finishable after a kill.

Each backend does its part natively where it can (a staged folder renamed into place, one SQL
transaction, server-side Cypher in batches) or through the streaming protocol. Across backends
nothing is atomic, and a Bolt server copies in batches, so the operation is recorded in a journal
(transfer_journal.py) before any backend is touched and the journal is cleared after the last:

- an unfinished **copy** is restarted: DST is dropped in every backend of the profile (the journal
  proves it holds only what the killed copy wrote) and copied again from the untouched source;
- an unfinished **rename** is continued: backends already done are skipped, a backend whose
  source is gone is done, a Bolt rename relabels the nodes it had not reached, and a streamed
  rename whose copy finished only drops the source.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.backends.registry import ROLE_ORDER, Profile, Stores, describe
from ragstore_cli.backends.stream_copy import CopyReport, copy_stores
from ragstore_cli.backends.transfer_journal import Journal, Pending
from ragstore_cli.backends.workspace_ops import _drop_each, _open, shown
from ragstore_cli.config import Settings
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.workspace import collisions


async def _existing(settings: Settings, profile: Profile) -> set[str]:
    found: set[str] = set()
    for name in dict.fromkeys(profile.values()):
        backend = await _open(settings, name, "")
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


async def transfer(settings: Settings, profile: Profile, source: str, target: str, *, move: bool) -> dict[str, Any]:
    """Copy or rename under both workspaces' locks (the caller holds them)."""
    if source == target:
        raise UsageError("source and target workspace are the same")
    op = "rename" if move else "copy"
    async with Journal(settings) as journal:
        pending = await journal.pending(target)
        resumed = pending is not None
        if pending is not None:
            pending.refuse_other(op, source, describe(profile))
        if pending is not None and not move:
            await _drop_each(settings, profile, target)  # a copy restarts from an empty target
            pending = None
        if pending is None:
            collides = await _check_pair(settings, profile, source, target, move)
            pending = Pending(op, source, target, describe(profile))
            await journal.save(pending)
        else:
            collides = collisions(target, sorted(await _existing(settings, profile) - {source, target}))
        report: dict[str, Any] = {"source": source, "target": target, "profile": describe(profile),
                                  "collides_with": collides, "resumed": resumed, "backends": {}}
        for name in dict.fromkeys(profile.values()):
            if name in pending.done:
                report["backends"][name] = {"method": "finished before", "details": {}}
                continue
            report["backends"][name] = await _one(settings, journal, pending, name, resumed)
            pending.done.append(name)
            await journal.save(pending)
        await journal.clear(target)
    return report


async def _one(settings: Settings, journal: Journal, pending: Pending, name: str, resumed: bool) -> dict[str, Any]:
    move, source, target = pending.op == "rename", pending.source, pending.target
    native = "rename_workspace" if move else "copy_workspace"
    backend = await _open(settings, name, source)
    try:
        if hasattr(backend, native):
            if move and resumed:
                return await _resume_native_rename(backend, name, source, target)
            return {"method": "native", "details": await getattr(backend, native)(target)}
        if move and name in pending.copied:  # killed while dropping the source: finish that
            await backend.drop_workspace()
            return {"method": "stream", "details": {}, "dropped_fields": {}}
        if move and resumed:
            await _drop_target(settings, name, target)  # a streamed copy the kill interrupted
        copied = await _stream(settings, name, source, target)
        if move:
            pending.copied.append(name)
            await journal.save(pending)
            await backend.drop_workspace()
        return {"method": "stream", "details": copied.copied, "dropped_fields": copied.dropped_fields}
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


async def _drop_target(settings: Settings, name: str, target: str) -> None:
    backend = await _open(settings, name, target)
    try:
        await backend.drop_workspace()
    finally:
        await backend.close()


async def _stream(settings: Settings, name: str, source: str, target: str) -> CopyReport:
    """Copy through the streaming protocol (backends without a native copy)."""
    src, dst = await _open(settings, name, source), await _open(settings, name, target)
    try:
        return await copy_stores(Stores({r: name for r in ROLE_ORDER}, source, {name: src}),
                                 Stores({r: name for r in ROLE_ORDER}, target, {name: dst}))
    finally:
        await src.close()
        await dst.close()
