"""What export and import share: resolving the target, locks, snapshots and per-backend facts."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable

from ragstore_cli.backends.base import Role
from ragstore_cli.backends.registry import Profile, Stores
from ragstore_cli.config import Settings

Progress = Callable[[str, int, int], None]  # (section key, records, bytes)

#: Backends whose data ragstore can only keep consistent with its own workspace lock.
LOCKED_BACKENDS = {"files", "neo4j", "redis"}

#: Fields LightRAG's NanoVectorDB keeps out of a vector record (only `meta_fields` survive, reference
#: §1): the archive's vector metadata from the files backend lacks them (KV and graph still hold them).
NANO_NOT_CARRIED = {
    "vectors/entities": ["description", "entity_type"],
    "vectors/relationships": ["description", "keywords", "weight"],
    "vectors/chunks": ["chunk_order_index", "tokens"],
}


def needs_lock(profile: Profile) -> bool:
    return any(name in LOCKED_BACKENDS for name in profile.values())


def not_carried(profile: Profile, stores: Stores) -> dict[str, list[str]]:
    """Fields the source could not carry, per section: a backend's own list, else the known ones."""
    backend = stores.backend(Role.VECTOR)
    own = getattr(backend, "not_carried", None)
    if isinstance(own, dict):
        return {k: sorted(v) for k, v in own.items()}
    return dict(NANO_NOT_CARRIED) if profile[Role.VECTOR] == "files" else {}


@contextlib.asynccontextmanager
async def snapshot(stores: Stores) -> AsyncIterator[None]:
    """One consistent read view per backend where it offers one (PostgreSQL: REPEATABLE READ).

    A backend exposing `snapshot()` (an async context manager) serves every read made inside it from
    one transaction snapshot; the others are held still by the workspace lock.
    """
    async with contextlib.AsyncExitStack() as stack:
        for backend in stores.backends.values():
            snap = getattr(backend, "snapshot", None)
            if callable(snap):
                await stack.enter_async_context(snap())
        yield


def lightrag_warning(settings: Settings, profile: Profile) -> str | None:
    """A warning when a LightRAG process on this host seems to use the profile's working dir, else None.

    Only the files backend can be probed (coordination/probe.py: processes and fresh temp files); a
    LightRAG server on another host, or one using PostgreSQL, Neo4j or Redis, is invisible to ragstore,
    and saying so on every run would read as a detection. docs/locks.md says it once instead.
    """
    if "files" not in profile.values():
        return None
    try:
        from ragstore_cli.coordination import probe_lightrag

        presence = probe_lightrag(settings.working_dir)
    except Exception:  # noqa: BLE001 - a probe failure must not stop the command
        return None
    if presence.verdict == "cannot-tell":
        return None
    evidence = "; ".join(presence.evidence)[:200]
    return (f"{presence.message} ({evidence}): ragstore's locks do not cover a running LightRAG, so stop it "
            "(or make sure it is idle) for a consistent result")


async def embedding_model_of(stores: Stores, settings: Settings) -> str | None:
    """The embedding model name: EMBEDDING_MODEL when set, else what the vector backend records (the PG
    table suffix, which is the lossy, lower-cased name)."""
    model = settings["EMBEDDING_MODEL"]
    if model:
        return str(model)
    backend: Any = stores.backend(Role.VECTOR)
    stats = getattr(backend, "stats", None)
    if callable(stats):
        try:
            for row in await stats():
                if getattr(row, "model", None):
                    return str(row.model)
        except Exception:  # noqa: BLE001 - stats are a nicety here
            pass
    return None
