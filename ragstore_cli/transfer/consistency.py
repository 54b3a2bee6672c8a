"""What an export guarantees about its source, per backend: one snapshot, or a change detected.

- PostgreSQL: every read, table discovery included, runs in one REPEATABLE READ snapshot (the
  backend's `snapshot()`): the archive is the database as of one moment, whatever is written
  meanwhile (a `workspace drop`, LightRAG upserts). A TRUNCATE, table rewrite or DROP (not
  MVCC-safe: a snapshot could see such a table empty) waits until the export ends.
- files: ragstore's workspace lock keeps other ragstore commands out; LightRAG writes each file by
  rename, so each file is read whole from one version. Every file's identity (inode, size, mtime) is
  taken before the first read and compared before the archive is finished (`fingerprint()`).
- Redis and the Bolt server: no snapshot exists. Each section's records are hashed as they are
  archived, and once everything is written the section is read again and its hash compared.

A difference means the source changed during the export: the export fails (DataError, exit 1) and
leaves no archive. A matching re-read means the archive equals the source as that second read saw
it; a write undone between the two reads goes unnoticed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import numpy as np

from ragstore_cli.records import (DOC_STATUS_NAMESPACE, GRAPH_NAMESPACE, KV_NAMESPACES, VECTOR_NAMESPACES,
                                  GraphEdge, GraphNode, Role, VectorBatch)
from ragstore_cli.backends.registry import Stores
from ragstore_cli.errors import DataError

_MASK = (1 << 64) - 1


def _record_bytes(record: Any) -> bytes:
    if isinstance(record, GraphNode):
        data: Any = ["node", record.id, record.properties]
    elif isinstance(record, GraphEdge):
        data = ["edge", record.source, record.target, record.properties]
    else:
        data = list(record)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr).encode("utf-8", "surrogatepass")


@dataclass
class Digest:
    """Order-independent digest of a section's records: their count and the sum of their 64-bit hashes."""

    count: int = 0
    total: int = 0

    def add(self, batch: Any) -> None:
        if isinstance(batch, VectorBatch):
            vectors = np.asarray(batch.vectors, dtype=np.float32)
            rows = [(i, vectors[n].tobytes(), json.dumps(batch.meta[n] if batch.meta else None, sort_keys=True,
                                                          default=repr).encode("utf-8", "surrogatepass"))
                    for n, i in enumerate(batch.ids)]
            parts = [i.encode("utf-8", "surrogatepass") + b"\0" + v + m for i, v, m in rows]
        else:
            parts = [_record_bytes(record) for record in batch]
        for part in parts:
            self.total = (self.total + int.from_bytes(hashlib.blake2b(part, digest_size=8).digest(), "little")) & _MASK
        self.count += len(parts)


@dataclass
class Reader:
    """How to read one section again: its key, the role serving it and a fresh reader."""

    key: str
    role: Role
    read: Callable[[], AsyncIterator[Any]]


@dataclass
class ExportView:
    """The consistency the export's sources offer; `confirm()` before the archive is finished."""

    stores: Stores
    fingerprints: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, Digest] = field(default_factory=dict)
    readers: dict[str, Reader] = field(default_factory=dict)

    def watch(self, key: str, role: Role, read: Callable[[], AsyncIterator[Any]]) -> Digest | None:
        """The digest to feed with section `key`'s records, when its backend has no snapshot or fingerprint."""
        if _mechanism(self.stores.backend(role)) != "reread":
            return None
        self.readers[key] = Reader(key, role, read)
        return self.digests.setdefault(key, Digest())

    async def confirm(self) -> None:
        """DataError when any source changed while it was read (see the module docstring)."""
        for name, before in self.fingerprints.items():
            now = await self.stores.backends[name].fingerprint(_served(self.stores, name))
            if now != before:
                changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                raise _changed(f"{name}: {', '.join(changed[:4])} changed while it was read")
        for key, reader in self.readers.items():
            again = Digest()
            async for batch in reader.read():
                again.add(batch)
            first = self.digests[key]
            if (again.count, again.total) != (first.count, first.total):
                what = f"{first.count} records then, {again.count} now" if again.count != first.count else \
                    "records were rewritten"
                raise _changed(f"{self.stores.profile[reader.role]}: {key} was written to while it was read ({what})")


def _changed(detail: str) -> DataError:
    return DataError(f"the source changed during the export ({detail}); no archive was written",
                     hint="stop LightRAG (or wait until it is idle) and export again")


def _mechanism(backend: Any) -> str:
    if callable(getattr(backend, "snapshot", None)):
        return "snapshot"
    if callable(getattr(backend, "fingerprint", None)):
        return "fingerprint"
    return "reread"


def _served(stores: Stores, name: str) -> list[str]:
    """The namespaces backend `name` serves in this profile."""
    per_role = {Role.KV: list(KV_NAMESPACES), Role.VECTOR: list(VECTOR_NAMESPACES), Role.GRAPH: [GRAPH_NAMESPACE],
                Role.DOC_STATUS: [DOC_STATUS_NAMESPACE]}
    return [ns for role, backend in stores.profile.items() if backend == name for ns in per_role[role]]


def mechanisms(stores: Stores) -> dict[str, str]:
    """backend name → snapshot | fingerprint | reread (what docs/transfer.md describes)."""
    return {name: _mechanism(backend) for name, backend in stores.backends.items()}


@contextlib.asynccontextmanager
async def consistent_view(stores: Stores) -> AsyncIterator[ExportView]:
    """Open every backend's snapshot, take the fingerprints, and yield the view the export reads through."""
    view = ExportView(stores)
    async with contextlib.AsyncExitStack() as stack:
        for name, backend in stores.backends.items():
            how = _mechanism(backend)
            if how == "snapshot":
                await stack.enter_async_context(backend.snapshot())
            elif how == "fingerprint":
                view.fingerprints[name] = await backend.fingerprint(_served(stores, name))
        yield view
