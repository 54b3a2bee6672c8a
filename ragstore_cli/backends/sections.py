"""Sections over a backend's role stores: which store method reads or writes which section, once.

Every backend serves its roles through the stores of contract.py; a section key (records.SECTIONS)
names one stream of them. The engine reads sources and every load session writes through these two
functions, and `StoreSession` is the plain load session of a backend whose writers commit on their
own (Redis, the Bolt server); files and PostgreSQL extend it.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ragstore_cli.backends.contract import LedgerStore, LoadPlan, NoteKeeper, Writer
from ragstore_cli.records import DEFAULT_BATCH, SECTION, Batch, Role, identities


def read_section(backend: Any, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
    """The batches of section `key` of the workspace `backend` is bound to."""
    section = SECTION[key]
    if section.role is Role.KV:
        return backend.kv().read(section.namespace, batch_size)
    if section.role is Role.DOC_STATUS:
        return backend.doc_status().read(batch_size)
    if section.role is Role.GRAPH:
        graph = backend.graph()
        return graph.read_nodes(batch_size) if section.kind == "graph_nodes" else graph.read_edges(batch_size)
    return backend.vectors().read(section.namespace, batch_size)


async def count_section(backend: Any, key: str) -> int:
    section = SECTION[key]
    if section.role is Role.KV:
        return await backend.kv().count(section.namespace)
    if section.role is Role.DOC_STATUS:
        return await backend.doc_status().count()
    if section.role is Role.GRAPH:
        return (await backend.graph().count())[0 if section.kind == "graph_nodes" else 1]
    return await backend.vectors().count(section.namespace)


class StoreSession:
    """A load session whose writers commit section by section (`deferred` False).

    Graph nodes and edges go through one writer, committed after the edges (a graph store checks
    edges against the nodes it was given)."""

    deferred = False
    durable = True

    def __init__(self, backend: Any, plan: LoadPlan) -> None:
        self.backend, self.plan = backend, plan
        self.graph: Writer | None = None

    async def writer(self, key: str, *, dim: int | None, rows: int | None) -> Writer:
        section, replace = SECTION[key], self.plan.replace
        if section.role is Role.KV:
            return await self.backend.kv().writer(section.namespace, replace=replace)
        if section.role is Role.DOC_STATUS:
            return await self.backend.doc_status().writer(replace=replace)
        if section.role is Role.GRAPH:
            if self.graph is None or section.kind == "graph_nodes":
                self.graph = await self.backend.graph().writer(replace=replace)
            return self.graph
        return await self.vector_writer(section.namespace, int(dim or 0), rows)

    async def vector_writer(self, namespace: str, dim: int, rows: int | None) -> Writer:
        return await self.backend.vectors().writer(namespace, dim=dim, replace=self.plan.replace, expected_rows=rows)

    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        """The section as this session wrote it."""
        return read_section(self.backend, key, batch_size)

    async def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        """What identifies each record of the section as this session wrote it (records.identity): a
        transfer's read-back compares these with the source's. A backend that can list ids without
        reading the records overrides this."""
        async for batch in self.read(key, batch_size):
            yield identities(batch)

    async def commit(self, note: NoteKeeper) -> None:
        return None

    async def discard(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def ledger_traces(store: LedgerStore, what: str, *, remove: bool) -> list[str]:
    """`[what]` when `store` holds the note of a killed or refused load (removed when `remove`), else []."""
    try:
        if await store.load() is None:
            return []
        if remove:
            await store.clear()
        return [what]
    finally:
        await store.close()
