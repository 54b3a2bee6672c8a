"""Loading into a LightRAG working directory: the files backend's part of the contract's Target.

When the files backend takes every role of a load (and the load replaces rather than merges), the
workspace is written into a hidden staging folder `<WORKING_DIR>/.ragstore-import.<workspace or _>/`,
on the same filesystem as the target, then each file is moved in by an atomic rename; LightRAG and
ragstore ignore folders whose name starts with a dot. The swap plan (files to move, files to
delete) is written into the ledger before the first rename, so a swap interrupted half-way finishes
with `--resume` instead of losing files. Otherwise each file is replaced on its own (tmp + rename).

The ledger (engine/ledger.py) is a JSON file in the workspace folder — in the staging folder when
the files backend takes every role, so that a refused or abandoned load leaves nothing beside the
workspace.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np

from ragstore_cli.atomic import fsync_dir, keep_mode, write_atomic
from ragstore_cli.backends.contract import Check, LoadPlan, NoteKeeper, Writer
from ragstore_cli.backends.sections import StoreSession
from ragstore_cli.config import Settings
from ragstore_cli.errors import DataError
from ragstore_cli.records import DEFAULT_BATCH, SECTION, Batch, Role, VectorBatch
from ragstore_cli.workspace import files_dir

LEDGER_FILE = ".ragstore-import-ledger.json"
F16_MAX = float(np.finfo(np.float16).max)  # LightRAG's files vector store keeps a float16 copy of every vector


def staging_root(settings: Settings, workspace: str) -> Path:
    return settings.working_dir / f".ragstore-import.{workspace or '_'}"


def staging_settings(settings: Settings, workspace: str) -> Settings:
    """Settings whose working dir is the staging root: the files backend writes there."""
    return settings.with_overrides({"WORKING_DIR": str(staging_root(settings, workspace))})


class FileLedgerStore:
    """The ledger as a JSON file, written to a tmp sibling, fsynced and renamed: never half a ledger."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER_FILE

    async def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        return json.loads(self.path.read_text("utf-8"))

    async def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(state))

    async def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    async def close(self) -> None:
        return None


def traces(settings: Settings, workspace: str, *, remove: bool) -> list[str]:
    """The ledger and staging folder of killed or refused loads into `workspace`."""
    found: list[str] = []
    for path in (files_dir(settings.working_dir, workspace) / LEDGER_FILE, staging_root(settings, workspace)):
        if path.exists():
            found.append(str(path))
            if remove and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif remove:
                path.unlink(missing_ok=True)
    return found


class Float16Check:
    """Refuse vectors beyond float16's range before any write: the files vector store would keep inf."""

    needs_vectors = True

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = keys

    async def narrow(self, source: Any) -> None:
        """Sections whose values the source bounds within float16 need no reading (PostgreSQL: the
        largest norm, computed by the server)."""
        settled = set()
        for key in self.keys:
            bound = await source.peak_bound(key)
            if bound is not None and bound <= F16_MAX:
                settled.add(key)
        self.keys = self.keys - settled

    async def observe(self, key: str, batch: Batch) -> None:
        assert isinstance(batch, VectorBatch)
        refuse_peak(key, float(np.abs(np.asarray(batch.vectors, dtype=np.float32)).max(initial=0.0)))

    async def finish(self) -> None:
        return None


def refuse_peak(key: str, peak: float) -> None:
    if peak > F16_MAX:
        raise DataError(f"{key}: vectors reach {peak:.3g}, beyond float16's ±65504, and LightRAG's files "
                        "vector store keeps a float16 copy of every vector; import them into postgres instead")


class FilesLoader:
    """One load into the working directory (see the module docstring)."""

    def __init__(self, backend: Any, plan: LoadPlan) -> None:
        self.backend, self.plan = backend, plan
        self.stage = plan.all_roles and plan.replace

    def ledger(self) -> FileLedgerStore:
        settings, ws = self.backend.settings, self.plan.workspace
        folder = files_dir(staging_root(settings, ws), ws) if self.plan.all_roles else files_dir(settings.working_dir, ws)
        return FileLedgerStore(folder)

    def _vector_keys(self) -> list[str]:
        if Role.VECTOR not in self.plan.roles:
            return []
        return [k for k, n in self.plan.counts.items() if SECTION[k].role is Role.VECTOR and n]

    def precheck(self) -> None:
        """Vectors the source measured (a verified archive) that float16 cannot hold are refused at once."""
        for key in self._vector_keys():
            if key in self.plan.peaks:
                refuse_peak(key, self.plan.peaks[key])

    async def checks(self) -> list[Check]:
        unknown = frozenset(k for k in self._vector_keys() if k not in self.plan.peaks)
        return [Float16Check(unknown)] if unknown else []

    async def session(self) -> "FilesSession":
        backend = self.backend
        if self.stage:
            if not self.plan.resume:  # leftovers of an abandoned load: the staged workspace starts empty
                shutil.rmtree(staging_root(backend.settings, self.plan.workspace), ignore_errors=True)
            backend = type(backend)(staging_settings(backend.settings, self.plan.workspace), self.plan.workspace)
            await backend.open()
        return FilesSession(self, backend)


class FilesSession(StoreSession):
    """Writers for one load; a staged load is published by `commit()`."""

    def __init__(self, loader: FilesLoader, backend: Any) -> None:
        super().__init__(backend, loader.plan)
        self.loader = loader
        self.deferred = loader.stage

    async def vector_writer(self, namespace: str, dim: int, rows: int | None) -> Writer:
        vectors = self.backend.vectors()
        inner = await vectors.writer(namespace, dim=dim, replace=True)
        if self.plan.replace:
            return inner
        # NanoVectorDB files are rewritten whole: merge = the new rows + the target's other rows
        return _RewriteMerge(inner, vectors.read(namespace))

    async def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        """A vector section's ids without decoding its vectors; other sections as the records say."""
        section = SECTION[key]
        if section.role is Role.VECTOR:
            async for ids in self.backend.vectors().ids(section.namespace, batch_size):
                yield ids
            return
        async for ids in super().identities(key, batch_size):
            yield ids

    async def commit(self, note: NoteKeeper) -> None:
        settings, ws = self.loader.backend.settings, self.plan.workspace
        if self.deferred:
            note.point("swap:before")
            await swap_in(settings, ws, note)
        if self.plan.all_roles:
            shutil.rmtree(staging_root(settings, ws), ignore_errors=True)

    async def discard(self) -> None:
        if self.deferred:
            shutil.rmtree(staging_root(self.loader.backend.settings, self.plan.workspace), ignore_errors=True)

    async def close(self) -> None:
        if self.backend is not self.loader.backend:
            await self.backend.close()


async def swap_in(settings: Settings, workspace: str, note: NoteKeeper) -> None:
    """Move the staged LightRAG files over the target's; delete target files the load replaced by nothing."""
    from ragstore_cli.backends.files import FILES

    staged, dest = files_dir(staging_root(settings, workspace), workspace), files_dir(settings.working_dir, workspace)
    plan = note.state.get("swap")
    if plan is None:
        move = [name for name in FILES.values() if (staged / name).is_file()]
        delete = [name for name in FILES.values() if name not in move and (dest / name).is_file()]
        plan = note.state["swap"] = {"move": move, "delete": delete}
        await note.save()
    dest.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(plan["move"]):
        if (staged / name).is_file():
            keep_mode(staged / name, dest / name)  # as LightRAG rewrites a file: its permission bits stay
            os.replace(staged / name, dest / name)
        if number == 0:
            note.point("swap:during")
    for name in plan["delete"]:
        (dest / name).unlink(missing_ok=True)
    fsync_dir(dest)


class _RewriteMerge:
    """Merge for a file that can only be rewritten: the new rows, then the old rows not replaced."""

    def __init__(self, inner: Any, old_rows: AsyncIterator[VectorBatch]) -> None:
        self.inner, self.old_rows, self.seen = inner, old_rows, set()

    @property
    def dropped(self) -> set[str]:
        return getattr(self.inner, "dropped", set())

    async def write(self, batch: VectorBatch) -> None:
        self.seen.update(batch.ids)
        await self.inner.write(batch)

    async def commit(self) -> None:
        async for old in self.old_rows:
            keep = [i for i, rid in enumerate(old.ids) if rid not in self.seen]
            if keep:
                await self.inner.write(VectorBatch([old.ids[i] for i in keep], old.vectors[keep],
                                                   [old.meta[i] for i in keep] if old.meta else []))
        await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()
