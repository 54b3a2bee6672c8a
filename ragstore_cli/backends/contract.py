"""One small protocol per LightRAG storage role; every backend implements the roles it supports.

Records travel in LightRAG's own shapes (the JSON working-dir shapes of reference §2.3–2.6), so a
record read from any backend can be written to any other. Everything streams in batches: readers
are async iterators of batches, writers take batches and make them visible on `commit()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Protocol, runtime_checkable

from ragstore_cli.records import DEFAULT_BATCH, KVRecord, Role, VectorBatch

@runtime_checkable
class Writer(Protocol):
    """Takes batches for one namespace; nothing is visible to readers of the target before commit()."""

    async def write(self, batch: Any) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class KVStore(Protocol):
    async def count(self, namespace: str) -> int: ...
    def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]: ...
    async def writer(self, namespace: str, *, replace: bool = True) -> Writer: ...


class VectorStore(Protocol):
    async def count(self, namespace: str) -> int: ...
    async def dimension(self, namespace: str) -> int | None: ...
    def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]: ...
    # expected_rows: how many rows the caller will write, if known (PostgreSQL decides by it whether
    # to rebuild the table's ANN index after the load or to write into it)
    async def writer(self, namespace: str, *, dim: int, replace: bool = True,
                     expected_rows: int | None = None) -> Writer: ...


class GraphStore(Protocol):
    async def count(self) -> tuple[int, int]: ...  # (nodes, edges)
    def read_nodes(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphNode]]: ...
    def read_edges(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphEdge]]: ...
    async def writer(self, *, replace: bool = True) -> Writer: ...  # batches of GraphNode or GraphEdge


class DocStatusStore(Protocol):
    async def count(self) -> int: ...
    def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]: ...
    async def writer(self, *, replace: bool = True) -> Writer: ...


class Backend(Protocol):
    """A backend bound to one workspace; `roles` says which of the four it serves."""

    name: str
    workspace: str
    roles: frozenset[Role]

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def kv(self) -> KVStore: ...
    def vectors(self) -> VectorStore: ...
    def graph(self) -> GraphStore: ...
    def doc_status(self) -> DocStatusStore: ...
    async def list_workspaces(self) -> list[str]: ...
    async def drop_workspace(self) -> dict[str, int]: ...  # what was removed, per namespace


@dataclass
class NamespaceStats:
    """What `workspace show` reports for one namespace of one backend."""

    namespace: str
    role: Role
    count: int
    bytes: int | None = None  # on-disk / on-server size where the backend can tell
    last_update: float | None = None  # Unix seconds
    dimension: int | None = None  # vector namespaces
    model: str | None = None  # vector namespaces (PG table suffix)
    location: str = ""  # file or table


class WorkspaceAdmin(Protocol):
    """OPTIONAL extras a Backend may implement natively (added after part B started; all optional).

    The workspace commands use them when present (`hasattr`) and otherwise fall back to the
    streaming protocol above (copy) or report "not supported". Backends of part B need not change.
    """

    async def stats(self) -> list[NamespaceStats]: ...
    async def create_workspace(self, *, embedding_model: str | None, embedding_dim: int | None) -> list[str]: ...
    async def copy_workspace(self, target: str) -> dict[str, int]: ...  # server-side / file copies
    async def rename_workspace(self, target: str) -> dict[str, int]: ...
