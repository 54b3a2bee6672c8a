"""What export and import share: resolving the target, locks, snapshots and per-backend facts."""

from __future__ import annotations

from typing import Any, Callable

from ragstore_cli.records import VECTOR_NAMESPACES, Role
from ragstore_cli.backends.registry import Profile, Stores
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.schema.names import model_suffix

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


async def embedding_model_of(stores: Stores, settings: Settings) -> tuple[str | None, list[str]]:
    """The embedding model the archive records, and warnings about it.

    EMBEDDING_MODEL when set; a vector backend that names its tables after the model (PostgreSQL)
    says which model its data is under (the sanitised, lower-cased name, without the `_<dim>d`), and
    wins when it disagrees with EMBEDDING_MODEL: the archive describes the data it holds."""
    configured = settings["EMBEDDING_MODEL"] if settings.is_set("EMBEDDING_MODEL") else None
    vectors: Any = stores.vectors
    holding = [ns for ns in VECTOR_NAMESPACES if await vectors.dimension(ns) is not None]  # cheap: no count
    named = callable(getattr(vectors, "model", None))
    stored = {await vectors.model(ns) for ns in holding} if named else set()
    if len(stored) > 1:
        raise UsageError(f"the workspace's vector tables are named after different models ({', '.join(map(repr, stored))})",
                         hint="set EMBEDDING_MODEL and EMBEDDING_DIM to choose one")
    found = stored.pop() if stored else None
    if found is None:  # no model in the data's names (files, LightRAG's unsuffixed tables)
        if configured or not holding:
            return (str(configured) if configured else None), []
        return None, ["the archive records no embedding model: EMBEDDING_MODEL is not set and the source keeps "
                      "none; an import into PostgreSQL then writes LightRAG's unsuffixed vector tables unless "
                      "--embedding-model names it"]
    if configured and model_suffix(configured, 1) == model_suffix(found, 1):
        return str(configured), []  # the same model: keep the name as the operator spells it
    if configured:
        return found, [f"EMBEDDING_MODEL={configured} but the vectors are in the tables of model {found}: "
                       f"the archive records {found!r}"]
    return found, []


def dimension_warning(settings: Settings, recorded: int | None) -> list[str]:
    """Export's check of EMBEDDING_DIM against the data: the archive records the data's dimension."""
    if not settings.is_set("EMBEDDING_DIM") or recorded is None or settings["EMBEDDING_DIM"] == recorded:
        return []
    return [f"EMBEDDING_DIM={settings['EMBEDDING_DIM']} but the vectors have dimension {recorded}: "
            f"the archive records {recorded} (the data's)"]
