"""Which embedding model and dimension a move records and loads under: never re-embedding.

A source says which model its vectors were made with (EMBEDDING_MODEL, or the model part of the
PostgreSQL tables holding them) and their dimension (always the data's); a target refuses a model or
dimension it is configured against, unless the operator relabels the model (`--embedding-model`).
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.backends.contract import Origin
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.records import VECTOR_NAMESPACES
from ragstore_cli.schema.names import model_suffix


async def model_of(vectors: Any, settings: Settings) -> tuple[str | None, list[str]]:
    """The embedding model a source's records are under, and warnings about it.

    EMBEDDING_MODEL when set; a vector store that names its tables after the model (PostgreSQL)
    says which model its data is under (the sanitised, lower-cased name, without the `_<dim>d`), and
    wins when it disagrees with EMBEDDING_MODEL: what is recorded describes the data."""
    configured = settings.embedding.model if settings.is_set("EMBEDDING_MODEL") else None
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
    """A source's check of EMBEDDING_DIM against the data: what is recorded is the data's dimension."""
    if not settings.is_set("EMBEDDING_DIM") or recorded is None or settings.embedding.dim == recorded:
        return []
    return [f"EMBEDDING_DIM={settings.embedding.dim} but the vectors have dimension {recorded}: "
            f"the archive records {recorded} (the data's)"]


def target_embedding(settings: Settings, origin: Origin, relabel: str | None) -> tuple[str | None, int | None]:
    """The model name and dimension a target will record; refuses what would need re-embedding."""
    model, dim = origin.model, origin.dim
    configured_dim = settings.embedding.dim if settings.is_set("EMBEDDING_DIM") else None
    if configured_dim is not None and dim is not None and configured_dim != dim:
        raise UsageError(f"the {origin.kind}'s vectors have dimension {dim} but the target is configured for "
                         f"EMBEDDING_DIM={configured_dim}; ragstore never re-embeds")
    if relabel:
        return relabel, dim
    configured = settings.embedding.model if settings.is_set("EMBEDDING_MODEL") else None
    if configured and model and configured != model:
        raise UsageError(f"the {origin.kind}'s vectors were made with model {model!r} but the target is configured "
                         f"for {configured!r} (EMBEDDING_MODEL)",
                         hint=f"pass --embedding-model {configured} to relabel them (ragstore never re-embeds), "
                              f"or set EMBEDDING_MODEL={model}")
    return configured or model, dim
