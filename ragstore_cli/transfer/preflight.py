"""Import checks that need the target and can refuse: run before the first write, and by `--dry-run`.

The importer's own checks (manifest, full verify, embedding model and dimension, pending ledger,
`--if-exists`) sit in importer.py; these are the ones a backend or a second look at the archive
contributes:

- every backend's `check_import(check)` (read-only; e.g. PostgreSQL: vector table names, the index
  pgvector can build, pgvector itself);
- chunk vectors going to PostgreSQL: every row must get `tokens`/`chunk_order_index`, from its own
  metadata, from the archive's text_chunks, or (a merge into PostgreSQL's text_chunks) from the rows
  already there. The archive is read once more for it, only its text_chunks and chunk vectors
  sections decoded; the map built then fills the rows during the load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.archive.manifest import KIND_VECTORS, Manifest
from ragstore_cli.records import Role
from ragstore_cli.backends.registry import Stores
from ragstore_cli.errors import UsageError


@dataclass
class ImportCheck:
    """What a backend's `check_import` is told: the archive, and what this import asks of that backend."""

    manifest: Manifest
    reader: ArchiveReader
    roles: frozenset[Role]  # the roles this backend serves in the import's profile
    replace: bool  # False for --if-exists merge
    model: str | None
    dims: tuple[int, ...]  # dimensions of the vector sections that will be written


def vector_dims(manifest: Manifest, dim: int | None) -> tuple[int, ...]:
    """Widths of the vector sections an import writes (empty sections of a dimension-less archive: none)."""
    return tuple(dict.fromkeys(
        width for s in manifest.sections
        if s.kind == KIND_VECTORS and not (s.records == 0 and dim is None) and (width := int(s.dim or dim or 0))))


async def check_backends(stores: Stores, reader: ArchiveReader, *, replace: bool, model: str | None,
                         dim: int | None) -> None:
    dims = vector_dims(reader.manifest, dim)
    for name, backend in stores.backends.items():
        check = getattr(backend, "check_import", None)
        if callable(check):
            roles = frozenset(role for role, served_by in stores.profile.items() if served_by == name)
            await check(ImportCheck(reader.manifest, reader, roles, replace, model, dims))


async def check_chunk_fields(stores: Stores, reader: ArchiveReader, *, merge: bool, batch_size: int) -> None:
    """Refuse an import whose chunk vectors would reach PostgreSQL without tokens/chunk_order_index."""
    counts = reader.manifest.counts()
    backend: Any = stores.backend(Role.VECTOR)
    make = getattr(backend, "chunk_field_check", None)
    if not callable(make) or not counts.get("vectors/chunks"):
        return
    check = make(text_chunks_here=stores.profile[Role.KV] == stores.profile[Role.VECTOR], merge=merge)
    missing, sample = 0, []
    for section in reader.sections(batch_size):
        if section.key == "kv/text_chunks":
            for batch in section.batches():
                check.learn(batch)
        elif section.key == "vectors/chunks":
            for batch in section.batches():
                ids = await check.uncovered(batch.ids, batch.meta)
                missing += len(ids)
                sample += ids[:3 - len(sample)]
            break
    if missing:
        shown = ", ".join(repr(i[:60]) for i in sample)
        raise UsageError(f"{missing} chunk vectors ({shown}{', …' if missing > len(sample) else ''}) have no "
                         "tokens/chunk_order_index and the archive's text_chunks do not hold them either: "
                         "PostgreSQL's chunk vectors need both; nothing was written")
    check.install()
