"""`import`: verify an archive completely, then load it into a workspace of any profile.

Order of events: manifest check → full verify pass (nothing written yet) → embedding model and
dimension checks against the target → lock → preflight: pending ledger, `--if-exists`, every
backend's `check_import`, chunk-vector fields (preflight.py; `--dry-run` runs it and stops) → load
section by section, each through the backend's atomic writer (PostgreSQL: every section in ONE
transaction of the backend's import unit, committed at the end together with the ledger's removal;
files: tmp + rename; Bolt: tagged writes removed on abort), recording each committed section in the
target's ledger (PostgreSQL sections only as `uncommitted`: they commit all at once) → (files-only
targets) swap the staged folder in → clear the ledger. `--resume` skips the sections the ledger
lists as committed by the same archive. A writer refusing the archive's data leaves no ledger when
nothing was committed for good, and no resume hint (resuming would stop at the same record).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragstore_cli.archive import ArchiveReader, SectionReader, SectionStats
from ragstore_cli.archive.writer import F16_MAX
from ragstore_cli.archive.manifest import KIND_DOC_STATUS, KIND_EDGES, KIND_KV, KIND_NODES, KIND_VECTORS, Manifest
from ragstore_cli.records import DEFAULT_BATCH, KV_NAMESPACES, VECTOR_NAMESPACES, Role
from ragstore_cli.backends.registry import Stores, describe, open_backends, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.connect import liveness
from ragstore_cli.errors import DataError, OperationFailed, RagstoreError, UsageError
from ragstore_cli.transfer import preflight, staging
from ragstore_cli.transfer.common import Progress, lightrag_warning, needs_lock
from ragstore_cli.transfer.ledger import PgLedger, open_ledger
from ragstore_cli.workspace import validate_workspace

IF_EXISTS = ("fail", "replace", "merge")
FAULT_ENV = "RAGSTORE_FAULT_KILL"  # test-only fault injection: SIGKILL this process at a named point


@dataclass
class ImportReport:
    archive: str
    workspace: str
    profile: str
    mode: str
    dry_run: bool
    resumed: bool
    counts: dict[str, int]
    skipped: list[str]
    existing_records: int
    embedding: dict[str, Any]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **{k: getattr(self, k) for k in self.__dataclass_fields__}}


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _fault_soon(point: str) -> None:
    """Kill at the next event-loop turn, i.e. while the following write is waiting on the server
    (inside a COPY for PostgreSQL)."""
    if os.environ.get(FAULT_ENV) == point:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGKILL)


def target_embedding(settings: Settings, manifest: Manifest, relabel: str | None) -> tuple[str | None, int | None]:
    """The model name and dimension the target will record; refuses what would need re-embedding."""
    model, dim = manifest.embedding.get("model"), manifest.embedding.get("dim")
    configured_dim = settings["EMBEDDING_DIM"] if settings.is_set("EMBEDDING_DIM") else None
    if configured_dim is not None and dim is not None and configured_dim != dim:
        raise UsageError(f"the archive's vectors have dimension {dim} but the target is configured for "
                         f"EMBEDDING_DIM={configured_dim}; ragstore never re-embeds")
    if relabel:
        return relabel, dim
    configured = settings["EMBEDDING_MODEL"] if settings.is_set("EMBEDDING_MODEL") else None
    if configured and model and configured != model:
        raise UsageError(f"the archive's vectors were made with model {model!r} but the target is configured "
                         f"for {configured!r} (EMBEDDING_MODEL)",
                         hint=f"pass --embedding-model {configured} to relabel them (ragstore never re-embeds), "
                              f"or set EMBEDDING_MODEL={model}")
    return configured or model, dim


def check_float16(stats: dict[str, SectionStats], prof: dict[Role, str]) -> None:
    """LightRAG's files vector store keeps a float16 copy of every vector (its `vector` field): refuse,
    before any write, vectors that copy would turn into inf (verify measured each section's peak)."""
    if prof[Role.VECTOR] != "files":
        return
    for key, st in stats.items():
        peak = float(st.extra.get("max_abs", 0.0))
        if peak > F16_MAX:
            raise DataError(f"{key}: vectors reach {peak:.3g}, beyond float16's ±65504, and LightRAG's files "
                            "vector store keeps a float16 copy of every vector; import them into postgres instead")


async def existing_records(stores: Stores) -> int:
    total = 0
    for ns in KV_NAMESPACES:
        total += await stores.kv.count(ns)
    total += await stores.doc_status.count()
    total += sum(await stores.graph.count())
    for ns in VECTOR_NAMESPACES:
        total += await stores.vectors.count(ns)
    return total


async def check_dimensions(stores: Stores, manifest: Manifest) -> None:
    for s in manifest.sections:
        if s.kind == KIND_VECTORS and s.dim is not None:
            have = await stores.vectors.dimension(s.namespace)
            if have is not None and have != s.dim:
                raise UsageError(f"the target's {s.namespace} vectors have dimension {have}, the archive's {s.dim}; "
                                 "ragstore never re-embeds")


async def check_graph_records(reader: ArchiveReader, stores: Stores, batch_size: int) -> None:
    """Graph records the target server cannot store (a node id longer than its index takes) stop the
    import here, before its first write: a pass over the archive up to its last graph section."""
    check = getattr(stores.backend(Role.GRAPH), "check_graph_batch", None)
    pending = {s.key for s in reader.manifest.sections if s.kind in (KIND_NODES, KIND_EDGES) and s.records}
    if not callable(check) or not pending:
        return

    def scan() -> None:
        for section in reader.sections(batch_size):
            if section.key in pending:
                for batch in section.batches():
                    check(batch)
                pending.discard(section.key)
                if not pending:
                    return

    await asyncio.to_thread(scan)


async def import_archive(settings: Settings, archive: Path, *, workspace: str | None = None,
                         profile: str | None = None, if_exists: str = "fail", dry_run: bool = False,
                         resume: bool = False, embedding_model: str | None = None,
                         progress: Progress | None = None, batch_size: int = DEFAULT_BATCH,
                         lock_timeout: float | None = None) -> ImportReport:
    """Load `archive` into the workspace; see the module docstring for the order of events.

    Every check that can refuse runs before the first write (`--dry-run` runs exactly those, then
    stops). A refusal that still comes from a writer (the archive's data, e.g. an id twice) leaves
    nothing behind when nothing was committed for good: no staging folder, no pending ledger."""
    started = time.perf_counter()
    if if_exists not in IF_EXISTS:
        raise UsageError(f"--if-exists must be one of {', '.join(IF_EXISTS)}, not {if_exists!r}")
    reader = ArchiveReader(Path(archive))
    manifest = reader.manifest
    workspace = validate_workspace(manifest.source.get("workspace", "") if workspace is None else workspace)
    prof = parse_profile(profile, settings)
    model, dim = target_embedding(settings, manifest, embedding_model)
    overrides = {k: v for k, v in (("EMBEDDING_MODEL", model), ("EMBEDDING_DIM", dim)) if v is not None}
    target = settings.with_overrides(overrides)
    warnings = [w for w in (lightrag_warning(settings, prof), _model_warning(settings, prof, model, dim)) if w]

    reader._progress = (lambda key, rec, nbytes: progress(f"verify {key}", rec, nbytes)) if progress else None
    stats = reader.verify()  # the whole archive, before anything is written
    reader._progress = progress
    check_float16(stats, prof)

    async with contextlib.AsyncExitStack() as stack:
        if needs_lock(prof) and not dry_run:  # a dry run writes nothing, not even a lock file
            from ragstore_cli.coordination import workspace_lock

            await stack.enter_async_context(workspace_lock(target, workspace, command="import", timeout=lock_timeout))
        stores = await open_backends(target, prof, workspace)
        stack.push_async_callback(stores.close)
        await check_dimensions(stores, manifest)
        await check_graph_records(reader, stores, batch_size)
        files_only = staging.files_only(prof)
        ledger = open_ledger(prof[Role.KV], target, workspace, staging.folder(target, workspace) if files_only else None)
        stack.push_async_callback(ledger.close)
        state = await ledger.load()
        done: dict[str, int] = {}
        if state and resume:
            if state.get("archive") != reader.manifest_sha256:
                raise UsageError(f"the interrupted import into workspace {workspace!r} was of another archive "
                                 f"({state.get('file')})")
            done = dict(state.get("done", {}))
            if_exists = state.get("mode", if_exists)
        elif resume:
            raise UsageError("there is no interrupted import into this workspace to resume")
        elif state and if_exists != "replace":
            raise UsageError(f"an import of {state.get('file')} into workspace {workspace!r} was interrupted "
                             f"after {len(state.get('done', {}))} sections",
                             hint="finish it with --resume, or start over with --if-exists replace")
        skipped = sorted(done)  # `done` grows as sections load; the report lists what was done before
        staged = staging.applies(prof, if_exists)
        existing = 0 if resume else await existing_records(stores)
        if existing and if_exists == "fail":
            raise UsageError(f"workspace {workspace!r} already holds {existing} records in the target",
                             hint="choose --if-exists replace or --if-exists merge")
        await preflight.check_backends(stores, reader, replace=if_exists != "merge", model=model, dim=dim)
        await preflight.check_chunk_fields(stores, reader, merge=if_exists == "merge", batch_size=batch_size)
        plan = {s.key: s.records for s in manifest.sections
                if s.key not in done and not (s.kind == KIND_VECTORS and s.records == 0 and dim is None)}
        if dry_run:
            return ImportReport(str(archive), workspace, describe(prof), if_exists, True, resume, plan,
                                skipped, existing, {"model": model, "dim": dim},
                                time.perf_counter() - started, warnings)
        if not resume:
            if staged:
                staging.discard(target, workspace)  # leftovers of an abandoned import
            state = {"archive": reader.manifest_sha256, "file": str(archive), "mode": if_exists, "done": done,
                     "started_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            await ledger.save(state)
        assert state is not None
        resume_hint = resume_command(archive, workspace, profile)
        liveness.set_resume_hint(resume_hint)
        try:
            written = await _write(stores, reader, state, ledger, target, workspace, if_exists, staged, batch_size,
                                   dim, stack)
        except (DataError, UsageError) as exc:
            if not _refused(exc):
                exc.hint = exc.hint or resume_hint
                raise
            await _after_refusal(exc, state, ledger, target, workspace, staged)
            raise
        except Exception as exc:  # noqa: BLE001 - a server lost, a timeout: the ledger lets --resume finish
            if isinstance(exc, RagstoreError):
                exc.hint = exc.hint or resume_hint
                raise
            raise OperationFailed(_stopped(exc), hint=resume_hint) from None
        await ledger.clear()
        if files_only:
            staging.discard(target, workspace)
    return ImportReport(str(archive), workspace, describe(prof), if_exists, False, resume, written, skipped,
                        existing, {"model": model, "dim": dim}, time.perf_counter() - started, warnings)


def resume_command(archive: Path, workspace: str, profile: str | None) -> str:
    """The command that finishes this import after an interruption."""
    to = f" --to {shlex.quote(profile)}" if profile else ""
    return (f"finish it with: ragstore import {shlex.quote(str(archive))}{to} "
            f"--workspace {shlex.quote(workspace)} --resume")


def _stopped(exc: Exception) -> str:
    """One line for a driver error that ended the load (the CLI shows it with the resume hint)."""
    text = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out: a server did not answer within the command timeout (RAGSTORE_COMMAND_TIMEOUT)"
    if type(exc).__module__.startswith("asyncpg") and "connection" in (type(exc).__name__ + text).lower():
        return f"postgres: the connection was lost ({text})"
    return f"the import stopped ({type(exc).__name__}: {text})"


async def _write(stores: Stores, reader: ArchiveReader, state: dict[str, Any], ledger: Any, target: Settings,
                 workspace: str, if_exists: str, staged: bool, batch_size: int, dim: int | None,
                 stack: contextlib.AsyncExitStack) -> dict[str, int]:
    """The writing part of an import: stale staging cleaned, sections loaded, units committed, swap."""
    for backend in stores.backends.values():
        # Staged graph nodes of an import that was killed (we hold the workspace lock: none is running).
        cleanup = getattr(backend, "cleanup_stale_imports", None)
        if callable(cleanup):
            await cleanup()
    load_stores = stores
    if staged:
        load_stores = await open_backends(staging.settings(target, workspace), stores.profile, workspace)
        stack.push_async_callback(load_stores.close)
    async with contextlib.AsyncExitStack() as unit_stack:  # commits each unit on a clean exit
        units = await _open_units(unit_stack, load_stores, reader.manifest, dim)
        written = await _load(reader, load_stores, state, ledger, if_exists != "merge", batch_size, dim,
                              deferred=frozenset(units))
        if isinstance(ledger, PgLedger) and "postgres" in units:
            await ledger.clear(await units["postgres"].connection())  # removed by the same commit
    if staged:
        _fault("swap:before")
        await staging.swap_in(target, workspace, state, ledger.save, lambda: _fault("swap:during"))
    return written


def _refused(exc: BaseException) -> bool:
    """The target refused the archive's data (ragstore's own checks, a PostgreSQL data exception or
    constraint, class 22/23), rather than failing on its own (lost connection, shutdown, timeout):
    only then would --resume stop at the same place. A driver error wrapped as DataError keeps its
    cause as __context__."""
    cause: BaseException | None = exc.__context__
    for _ in range(5):
        if cause is None:
            return True
        state = str(getattr(cause, "sqlstate", "") or "")
        if state:
            return state[:2] in ("22", "23")
        if isinstance(cause, (OSError, TimeoutError)) or type(cause).__module__.startswith("asyncpg"):
            return False
        cause = cause.__context__
    return True


async def _after_refusal(exc: RagstoreError, state: dict[str, Any], ledger: Any, target: Settings, workspace: str,
                         staged: bool) -> None:
    """A writer refused the archive's data: resuming would stop at the same place. Leave nothing behind
    when nothing is committed for good (staged files are not; PostgreSQL's unit rolled back)."""
    kept = [] if staged else sorted(state.get("done", {}))
    if kept:
        exc.hint = (f"sections {', '.join(kept)} of this archive are already committed in the target; going on "
                    "would stop at the same record again: import a sound archive with --if-exists replace")
        return
    if staged:
        staging.discard(target, workspace)
    await ledger.clear()
    exc.hint = "nothing was written to the target"


def _model_warning(settings: Settings, prof: dict[Role, str], model: str | None, dim: int | None) -> str | None:
    """PostgreSQL names vector tables after the model: say where they go when EMBEDDING_MODEL is unset."""
    if prof[Role.VECTOR] != "postgres" or not model or not dim or settings.is_set("EMBEDDING_MODEL"):
        return None
    from ragstore_cli.schema.names import VDB_CHUNKS, vector_table_name

    table = vector_table_name(VDB_CHUNKS, model, dim).lower()
    return (f"EMBEDDING_MODEL is not set: the vectors go to the archive's model's tables ({table} and its "
            f"siblings), which LightRAG reads with EMBEDDING_MODEL={model}")


async def _open_units(stack: contextlib.AsyncExitStack, stores: Stores, manifest: Manifest,
                      dim: int | None) -> dict[str, Any]:
    """Open the import unit of every backend that has one (PostgreSQL: one transaction for all its
    sections), so each such backend shows the workspace old or new, never a mix of sections."""
    units: dict[str, Any] = {}
    for name, backend in stores.backends.items():
        opener = getattr(backend, "import_unit", None)
        if not callable(opener):
            continue
        dims = preflight.vector_dims(manifest, dim) if stores.profile[Role.VECTOR] == name else ()
        units[name] = await stack.enter_async_context(opener(dims))
    return units


_ROLE_OF = {KIND_KV: Role.KV, KIND_DOC_STATUS: Role.DOC_STATUS, KIND_NODES: Role.GRAPH, KIND_EDGES: Role.GRAPH,
            KIND_VECTORS: Role.VECTOR}


async def _load(reader: ArchiveReader, stores: Stores, state: dict[str, Any], ledger: Any, replace: bool,
                batch_size: int, dim: int | None, deferred: frozenset[str] = frozenset()) -> dict[str, int]:
    """Write the sections not yet done; those of a backend in `deferred` (an open import unit) become
    visible only when the unit commits, so the ledger lists them as `uncommitted` (progress for a
    reader of the ledger), never as `done`: --resume redoes them."""
    done: dict[str, int] = state["done"]
    uncommitted: dict[str, int] = {}
    if deferred:
        state["uncommitted"] = uncommitted  # a resumed run starts its own list
    written: dict[str, int] = {}
    graph_writer: Any = None
    for section in reader.sections(batch_size):
        key, kind = section.key, section.section.kind
        if key in done or (kind == KIND_EDGES and "graph/nodes" in done):
            continue  # committed before the interruption; the reader skips its bytes
        if kind == KIND_VECTORS and section.section.records == 0 and dim is None:
            continue
        if kind == KIND_EDGES:
            writer = graph_writer
        else:
            writer = await _writer(stores, section, replace, dim)
        if kind == KIND_NODES:
            graph_writer = writer
        try:
            count = await _pump(section, writer, reader._progress)
            if kind == KIND_NODES:
                written[key] = count
                continue  # nodes and edges commit together
            await writer.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await writer.abort()
            lost = liveness.server_error(exc)
            if lost is not None:
                raise lost from None
            if isinstance(exc, Exception) and not isinstance(exc, RagstoreError):
                first = (str(exc).splitlines() or [""])[0][:200]
                if str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23"):  # data exception, constraint
                    raise DataError(f"{key}: the target refused the data ({first})") from None
                raise OperationFailed(f"{key}: the target failed ({type(exc).__name__}: {first})") from None
            raise
        _fault(f"commit:{key}")
        written[key] = count
        # in an open import unit: not committed yet, a killed import leaves that backend untouched
        into = uncommitted if stores.profile.get(_ROLE_OF.get(kind, Role.KV)) in deferred else done
        into[key] = count
        if kind == KIND_EDGES:
            into["graph/nodes"] = written.get("graph/nodes", 0)
        await ledger.save(state)
    return written


async def _writer(stores: Stores, section: SectionReader, replace: bool, dim: int | None) -> Any:
    s = section.section
    if s.kind == KIND_KV:
        return await stores.kv.writer(s.namespace, replace=replace)
    if s.kind == KIND_DOC_STATUS:
        return await stores.doc_status.writer(replace=replace)
    if s.kind == KIND_NODES:
        return await stores.graph.writer(replace=replace)
    if s.kind == KIND_VECTORS:
        width = int(s.dim or dim or 0)
        if not replace and stores.profile[Role.VECTOR] == "files":
            # NanoVectorDB files are rewritten whole: merge = the archive's rows + the target's other rows
            inner = await stores.vectors.writer(s.namespace, dim=width, replace=True)
            return _RewriteMerge(inner, stores.vectors.read(s.namespace))
        return await stores.vectors.writer(s.namespace, dim=width, replace=replace, expected_rows=s.records)
    raise DataError(f"archive section {s.key} has an unknown kind {s.kind!r}")


async def _pump(section: SectionReader, writer: Any, progress: Progress | None) -> int:
    """Decode the next batch in a worker thread while the target takes the current one."""
    batches = section.batches()
    count = number = 0
    batch = await asyncio.to_thread(next, batches, None)
    while batch is not None:
        _fault(f"batch:{section.key}:{number}")
        _fault_soon(f"inside:{section.key}:{number}")
        upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
        try:
            await writer.write(batch)
        except BaseException:
            await asyncio.gather(upcoming, return_exceptions=True)  # never close a running generator
            raise
        count += len(batch)
        number += 1
        if progress is not None:
            progress(section.key, len(batch), 0)
        batch = await upcoming
    return count


class _RewriteMerge:
    """Merge for stores that can only be rewritten: write the new rows, then the old rows not replaced."""

    def __init__(self, inner: Any, old_rows: Any) -> None:
        self.inner, self.old_rows, self.seen = inner, old_rows, set()

    async def write(self, batch: Any) -> None:
        self.seen.update(batch.ids)
        await self.inner.write(batch)

    async def commit(self) -> None:
        from ragstore_cli.records import VectorBatch

        async for old in self.old_rows:
            keep = [i for i, rid in enumerate(old.ids) if rid not in self.seen]
            if keep:
                await self.inner.write(VectorBatch([old.ids[i] for i in keep], old.vectors[keep],
                                                   [old.meta[i] for i in keep] if old.meta else []))
        await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()
