"""`export`: stream every namespace of one workspace, from any profile, into a `.ragstore` archive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from ragstore_cli.archive import ArchiveWriter
from ragstore_cli.archive.manifest import KIND_VECTORS
from ragstore_cli.archive.writer import SectionWriter
from ragstore_cli.records import DEFAULT_BATCH, KV_NAMESPACES, VECTOR_NAMESPACES, Role
from ragstore_cli.backends.registry import describe, open_backends, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.transfer.common import (Progress, dimension_warning, embedding_model_of, lightrag_warning,
                                          needs_lock, not_carried)
from ragstore_cli.transfer.consistency import Digest, ExportView, consistent_view, mechanisms
from ragstore_cli.workspace import validate_workspace


@dataclass
class ExportReport:
    output: str
    workspace: str
    profile: str
    counts: dict[str, int]
    bytes: int
    seconds: float
    embedding: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    consistency: dict[str, str] = field(default_factory=dict)  # backend → snapshot | fingerprint | reread

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "output": self.output, "workspace": self.workspace, "profile": self.profile,
                "counts": self.counts, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "embedding": self.embedding, "consistency": self.consistency, "warnings": self.warnings}


async def export_workspace(settings: Settings, output: Path, *, workspace: str | None = None,
                           profile: str | None = None, vector_dtype: str = "float32",
                           progress: Progress | None = None, batch_size: int = DEFAULT_BATCH,
                           lock_timeout: float | None = None, allow_empty: bool = False,
                           overwrite: bool = False) -> ExportReport:
    """Write the workspace to `output` from one consistent view (consistency.py says what each backend
    guarantees); a workspace with no record is refused unless `allow_empty`, an existing `output`
    before anything is read unless `overwrite`."""
    started = time.perf_counter()
    if not overwrite and Path(output).exists():
        raise UsageError(f"{output} exists; choose another name or pass --force to replace it")
    workspace = validate_workspace(settings["WORKSPACE"] if workspace is None else workspace)
    prof = parse_profile(profile, settings)
    warnings = [w for w in (lightrag_warning(settings, prof),) if w]
    async with contextlib.AsyncExitStack() as stack:
        if needs_lock(prof):
            from ragstore_cli.coordination import workspace_lock

            await stack.enter_async_context(workspace_lock(settings, workspace, command="export", timeout=lock_timeout))
        stores = await open_backends(settings, prof, workspace)
        stack.push_async_callback(stores.close)
        view = await stack.enter_async_context(consistent_view(stores))
        check = getattr(stores.backend(Role.VECTOR), "check_export", None)
        if callable(check):
            await check()
        model, noted = await embedding_model_of(stores, settings)
        warnings += noted
        writer = ArchiveWriter(Path(output), workspace=workspace, backends={r.value: n for r, n in prof.items()},
                               embedding_model=model, embedding_dim=None, vector_dtype=vector_dtype,
                               progress=progress, overwrite=overwrite)
        try:
            await _write_all(stores, writer, batch_size, progress, view)
            await view.confirm()
            if not allow_empty and not any(s.records for s in writer.manifest.sections):
                raise UsageError(f"workspace {workspace or '(default)'!r} holds no records in {describe(prof)}: "
                                 "nothing to export", hint="check the name and --profile; pass --allow-empty to write "
                                                           "an empty archive on purpose")
            warnings += dimension_warning(settings, writer.manifest.embedding.get("dim"))
            for section, fields in not_carried(prof, stores).items():
                writer.not_carried(section, fields)
            manifest = writer.finish()
            warnings.extend(writer.notes)  # vector parts stored as float32 because float16 could not hold them
        except BaseException:
            writer.abort()
            raise
    return ExportReport(output=str(output), workspace=workspace, profile=describe(prof), counts=manifest.counts(),
                        bytes=Path(output).stat().st_size, seconds=time.perf_counter() - started,
                        embedding=manifest.embedding, warnings=warnings, consistency=mechanisms(stores))


async def _write_all(stores: Any, writer: ArchiveWriter, batch_size: int, progress: Progress | None = None,
                     view: ExportView | None = None) -> None:
    announce = getattr(progress, "total", None)  # bars on a TTY want record counts for their ETA
    for open_section, role, read, count in _sections(stores, writer, batch_size):
        with open_section() as section:
            if announce is not None:
                announce(section.section.key, await count())
            if section.section.kind == KIND_VECTORS and await stores.vectors.dimension(section.section.namespace) is None:
                continue
            digest = view.watch(section.section.key, role, read) if view is not None else None
            await _pump(read(), section, digest)


def _sections(stores: Any, writer: ArchiveWriter, batch_size: int) -> list[tuple[Any, Role, Any, Any]]:
    """(open the section, role, a fresh reader, its record count) for every section, in archive order."""
    out: list[tuple[Any, Role, Any, Any]] = [
        (partial(writer.kv, ns), Role.KV, partial(stores.kv.read, ns, batch_size), partial(stores.kv.count, ns))
        for ns in KV_NAMESPACES]
    out += [(writer.doc_status, Role.DOC_STATUS, partial(stores.doc_status.read, batch_size), stores.doc_status.count),
            (writer.graph_nodes, Role.GRAPH, partial(stores.graph.read_nodes, batch_size), _graph_count(stores, 0)),
            (writer.graph_edges, Role.GRAPH, partial(stores.graph.read_edges, batch_size), _graph_count(stores, 1))]
    out += [(partial(writer.vectors, ns), Role.VECTOR, partial(stores.vectors.read, ns, batch_size),
             partial(stores.vectors.count, ns)) for ns in VECTOR_NAMESPACES]
    return out


def _graph_count(stores: Any, which: int) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return (await stores.graph.count())[which]

    return count


async def _pump(batches: AsyncIterator[Any], section: SectionWriter, digest: Digest | None = None) -> None:
    """Compress and hash batch k in a worker thread while the source fetches batch k+1."""
    pending: asyncio.Future[None] | None = None

    def write(batch: Any) -> None:
        section.write(batch)
        if digest is not None:
            digest.add(batch)

    try:
        async for batch in batches:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(write, batch))
        if pending is not None:
            await pending
    finally:
        if pending is not None and not pending.done():
            await asyncio.gather(pending, return_exceptions=True)
