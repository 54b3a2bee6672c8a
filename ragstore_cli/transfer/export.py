"""`export`: stream every namespace of one workspace, from any profile, into a `.ragstore` archive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from ragstore_cli.archive import ArchiveWriter
from ragstore_cli.archive.writer import SectionWriter
from ragstore_cli.backends.base import DEFAULT_BATCH, KV_NAMESPACES, VECTOR_NAMESPACES
from ragstore_cli.backends.registry import describe, open_backends, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.transfer.common import (Progress, embedding_model_of, lightrag_warning, needs_lock, not_carried,
                                          snapshot)
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

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "output": self.output, "workspace": self.workspace, "profile": self.profile,
                "counts": self.counts, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "embedding": self.embedding, "warnings": self.warnings}


async def export_workspace(settings: Settings, output: Path, *, workspace: str | None = None,
                           profile: str | None = None, vector_dtype: str = "float32",
                           progress: Progress | None = None, batch_size: int = DEFAULT_BATCH,
                           lock_timeout: float | None = None, overwrite: bool = False) -> ExportReport:
    """Write the workspace to `output` from one consistent view (snapshot and/or workspace lock).

    An existing `output` is refused before anything is read unless `overwrite`."""
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
        await stack.enter_async_context(snapshot(stores))
        model = await embedding_model_of(stores, settings)
        writer = ArchiveWriter(Path(output), workspace=workspace, backends={r.value: n for r, n in prof.items()},
                               embedding_model=model, embedding_dim=None, vector_dtype=vector_dtype,
                               progress=progress, overwrite=overwrite)
        try:
            await _write_all(stores, writer, batch_size, progress)
            for section, fields in not_carried(prof, stores).items():
                writer.not_carried(section, fields)
            manifest = writer.finish()
            warnings.extend(writer.notes)  # vector parts stored as float32 because float16 could not hold them
        except BaseException:
            writer.abort()
            raise
    return ExportReport(output=str(output), workspace=workspace, profile=describe(prof), counts=manifest.counts(),
                        bytes=Path(output).stat().st_size, seconds=time.perf_counter() - started,
                        embedding=manifest.embedding, warnings=warnings)


async def _write_all(stores: Any, writer: ArchiveWriter, batch_size: int, progress: Progress | None = None) -> None:
    announce = getattr(progress, "total", None)  # bars on a TTY want record counts for their ETA

    async def opened(section: SectionWriter, count: Callable[[], Awaitable[int]]) -> SectionWriter:
        if announce is not None:
            announce(section.section.key, await count())
        return section

    for ns in KV_NAMESPACES:
        with await opened(writer.kv(ns), lambda: stores.kv.count(ns)) as section:
            await _pump(stores.kv.read(ns, batch_size), section)
    with await opened(writer.doc_status(), stores.doc_status.count) as section:
        await _pump(stores.doc_status.read(batch_size), section)
    with await opened(writer.graph_nodes(), _graph_count(stores, 0)) as section:
        await _pump(stores.graph.read_nodes(batch_size), section)
    with await opened(writer.graph_edges(), _graph_count(stores, 1)) as section:
        await _pump(stores.graph.read_edges(batch_size), section)
    for ns in VECTOR_NAMESPACES:
        with await opened(writer.vectors(ns), lambda: stores.vectors.count(ns)) as section:
            if await stores.vectors.dimension(ns) is not None:
                await _pump(stores.vectors.read(ns, batch_size), section)


def _graph_count(stores: Any, which: int) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return (await stores.graph.count())[which]

    return count


async def _pump(batches: AsyncIterator[Any], section: SectionWriter) -> None:
    """Compress and hash batch k in a worker thread while the source fetches batch k+1."""
    pending: asyncio.Future[None] | None = None
    try:
        async for batch in batches:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(section.write, batch))
        if pending is not None:
            await pending
    finally:
        if pending is not None and not pending.done():
            await asyncio.gather(pending, return_exceptions=True)
