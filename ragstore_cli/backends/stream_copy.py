"""Copy every namespace of one workspace between stores through the streaming protocol.

Used where no native (server-side / file) copy exists, e.g. between two different backends. Each
namespace is read in batches and written through the target's bulk writer; a namespace becomes
visible in the target only when its writer commits, and a failure aborts the open writer.

Chunk vectors in NanoVectorDB files carry no `tokens`/`chunk_order_index`, which PostgreSQL's
vector table needs: they are taken from the source's `text_chunks` as it streams past (two ints
per chunk are kept), never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.records import DEFAULT_BATCH, KV_NAMESPACES, VECTOR_NAMESPACES


@dataclass
class CopyReport:
    copied: dict[str, int] = field(default_factory=dict)  # namespace → records
    dropped_fields: dict[str, list[str]] = field(default_factory=dict)  # namespace → fields the target lost


async def _pump(reader: Any, writer: Any) -> int:
    count = 0
    try:
        async for batch in reader:
            await writer.write(batch)
            count += len(batch)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    return count


def _note_dropped(report: CopyReport, namespace: str, writer: Any) -> None:
    dropped = sorted(getattr(writer, "dropped", ()) or ())
    if dropped:
        report.dropped_fields[namespace] = dropped


CHUNK_FIELDS = ("tokens", "chunk_order_index")


async def _remember_chunks(reader: Any, seen: dict[str, tuple[Any, Any]]) -> Any:
    async for batch in reader:
        for ident, record in batch:
            seen[ident] = (record.get("tokens"), record.get("chunk_order_index"))
        yield batch


async def _complete_chunks(reader: Any, seen: dict[str, tuple[Any, Any]]) -> Any:
    async for batch in reader:
        for ident, meta in zip(batch.ids, batch.meta):
            if ident in seen and any(meta.get(f) is None for f in CHUNK_FIELDS):
                meta.update({f: v for f, v in zip(CHUNK_FIELDS, seen[ident]) if meta.get(f) is None})
        yield batch


async def copy_stores(src: Any, dst: Any, batch_size: int = DEFAULT_BATCH) -> CopyReport:
    """Copy KV, doc status, vectors (after text_chunks, see above) and the graph."""
    report = CopyReport()
    chunk_fields: dict[str, tuple[Any, Any]] = {}
    for ns in KV_NAMESPACES:
        writer = await dst.kv.writer(ns)
        reader = src.kv.read(ns, batch_size)
        if ns == "text_chunks":
            reader = _remember_chunks(reader, chunk_fields)
        report.copied[ns] = await _pump(reader, writer)
        _note_dropped(report, ns, writer)
    writer = await dst.doc_status.writer()
    report.copied["doc_status"] = await _pump(src.doc_status.read(batch_size), writer)
    _note_dropped(report, "doc_status", writer)
    for ns in VECTOR_NAMESPACES:
        dim = await src.vectors.dimension(ns)
        if dim is None:
            report.copied[ns] = 0
            continue
        writer = await dst.vectors.writer(ns, dim=dim, expected_rows=await src.vectors.count(ns))
        reader = src.vectors.read(ns, batch_size)
        if ns == "chunks" and getattr(writer, "needs_chunk_fields", False):
            reader = _complete_chunks(reader, chunk_fields)
        report.copied[ns] = await _pump(reader, writer)
        _note_dropped(report, ns, writer)
    writer = await dst.graph.writer()
    try:
        nodes = edges = 0
        async for batch in src.graph.read_nodes(batch_size):
            await writer.write(batch)
            nodes += len(batch)
        async for batch in src.graph.read_edges(batch_size):
            await writer.write(batch)
            edges += len(batch)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    report.copied["graph_nodes"] = nodes
    report.copied["graph_edges"] = edges
    return report
