"""The library behind `ragstore migrate`: every command is one async function returning a dict.

Other parts of ragstore (the postgres backend preparing a target database) call `upgrade()` directly.
"""

from __future__ import annotations

from typing import Any

from alembic import command

from ragstore_cli.config import Settings
from ragstore_cli.connect.postgres import connect, describe_target
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.schema import catalog, migrator, names, vectors
from ragstore_cli.schema.ops import holds_data_sql
from ragstore_cli.schema.status import current_revision


def _chain() -> list[str]:
    """Revision ids, oldest first."""
    return [r.revision for r in reversed(list(migrator.script().walk_revisions()))]


def _between(start: str | None, end: str | None) -> list[str]:
    """Revisions strictly after `start` up to and including `end` (None = base), oldest first."""
    chain = _chain()
    for revision in (start, end):
        if revision is not None and revision not in chain:
            raise DataError(f"the database is stamped with revision {revision!r}, which this ragstore does not "
                            "know (made by a newer ragstore?)")
    lo = chain.index(start) + 1 if start else 0
    hi = chain.index(end) + 1 if end else 0
    return chain[lo:hi] if hi >= lo else list(reversed(chain[hi:lo]))


def _embedding(settings: Settings, model: str | None, dim: int | None) -> tuple[str | None, int | None]:
    model = model if model is not None else settings.embedding.model
    dim = dim if dim is not None else settings.embedding.dim
    if dim is not None:
        names.vector_table_names(model, dim)  # fail early on an impossible name
        vectors.index_spec(settings, dim)  # and on an impossible index
    return model, dim


def _lock_timeout(settings: Settings, lock_timeout: float | None) -> float:
    return settings.ragstore.lock_timeout if lock_timeout is None else lock_timeout


async def current(settings: Settings) -> dict[str, Any]:
    """The database's revision and head."""
    conn = await connect(settings, retries=1)
    try:
        revision = await current_revision(conn)
    finally:
        await conn.close()
    head = migrator.head()
    return {"target": describe_target(settings), "revision": revision, "head": head, "behind": revision != head}


async def check(settings: Settings) -> dict[str, Any]:
    """Like current(), plus the revisions still to apply (the CLI exits 1 when there are any)."""
    state = await current(settings)
    state["pending"] = _between(state["revision"], state["head"]) if state["behind"] else []
    return state


def history() -> list[dict[str, Any]]:
    """Every revision, oldest first, with its one-line description (no connection)."""
    head = migrator.head()
    return [{"revision": r.revision, "down_revision": r.down_revision, "message": (r.doc or "").splitlines()[0],
             "is_head": r.revision == head} for r in reversed(list(migrator.script().walk_revisions()))]


def sql(revision: str = "head", *, start: str | None = None) -> str:
    """Offline SQL from `start` (default base) to `revision`, for review or a DBA to run (no connection)."""
    end = migrator.resolve(revision)
    begin = migrator.resolve(start) if start else "base"
    chain = _chain()
    if end == "base" or (begin != "base" and end != "head" and chain.index(end) < chain.index(begin)):
        return migrator.offline_sql(f"{begin}:{end}", downgrade=True)
    return migrator.offline_sql(f"{begin}:{end}")


async def upgrade(
    settings: Settings,
    revision: str = "head",
    *,
    embedding_model: str | None = None,
    embedding_dim: int | None = None,
    dry_run: bool = False,
    lock_timeout: float | None = None,
) -> dict[str, Any]:
    """Bring the database to `revision` and, at head, create/upgrade the model's vector tables.

    Returns {"from", "to", "applied", "vector_tables", "notes", ...}. dry_run only reads the catalog.
    """
    target = migrator.resolve(revision)
    model, dim = _embedding(settings, embedding_model, embedding_dim)
    head = migrator.head()
    to = head if target in ("head", "heads") else target
    with_vectors = to == head and dim is not None
    notes: list[str] = []
    if to == head and dim is None:
        notes.append("EMBEDDING_DIM is not set: vector tables not created (set it or pass --embedding-dim)")
    if dry_run:
        before = (await current(settings))["revision"]
        _refuse_backwards(before, to)
        planned = vectors.plan(settings, model, dim) if with_vectors else []
        if planned:
            conn = await connect(settings, retries=1)
            try:
                state = await vectors.pgvector(conn)
            finally:
                await conn.close()
            if state["installed"] is None and state["available"] is None:
                planned = []
                notes.append("pgvector is not available on this server: vector tables would be skipped")
        return {"dry_run": True, "target": describe_target(settings), "from": before, "to": to,
                "applied": _between(before, to), "vector_tables": planned, "notes": notes}
    async with migrator.migrator_lock(settings, _lock_timeout(settings, lock_timeout)) as lock:
        before = (await current(settings))["revision"]
        _refuse_backwards(before, to)
        retries = await migrator.run_with_lock_retries(settings, lambda cfg: command.upgrade(cfg, to),
                                                       budget=_retry_budget(settings, lock_timeout))
        after = (await current(settings))["revision"]
        result: dict[str, Any] = {"dry_run": False, "target": describe_target(settings), "from": before, "to": after,
                                  "applied": _between(before, after), "ddl_lock_retries": retries, **lock}
        result["vector_tables"] = []
        covered: list[str] = []
        if with_vectors:
            conn = await connect(settings, retries=1)
            try:
                done = await vectors.ensure(conn, settings, model, dim)
            finally:
                await conn.close()
            if done["skipped"]:
                notes.append(done["note"])
            else:
                result["vector_tables"] = done["tables"]
                covered += done["access_covered"]
        result["access_covered"] = covered + await _cover_new_tables(settings)
    result["notes"] = notes
    return result


async def _cover_new_tables(settings: Settings) -> list[str]:
    """Row-level security for tables this run created, when workspace grants exist (docs/access.md)."""
    from ragstore_cli.schema.coverage import cover_new_tables

    conn = await connect(settings, retries=1)
    try:
        return await cover_new_tables(conn)
    finally:
        await conn.close()


def _retry_budget(settings: Settings, lock_timeout: float | None) -> float:
    """How long DDL may keep retrying for its table lock: at least a minute."""
    return max(_lock_timeout(settings, lock_timeout), 60.0)


def _refuse_backwards(before: str | None, to: str) -> None:
    chain = _chain()
    if before is not None and before not in chain:
        _between(before, None)  # raises the "unknown revision" DataError
    if before and before in chain and to in chain and chain.index(to) < chain.index(before):
        raise UsageError(f"the database is at {before}, past {to}: use `ragstore migrate downgrade {to}`")


async def downgrade(
    settings: Settings,
    revision: str,
    *,
    force: bool = False,
    embedding_model: str | None = None,
    embedding_dim: int | None = None,
    lock_timeout: float | None = None,
) -> dict[str, Any]:
    """Step the database down to `revision`; refuses data-dropping steps unless `force`.

    Down to base also drops this model's vector tables (same refusal rule), leaving an empty catalog.
    """
    target = migrator.resolve(revision)
    if target == "head":
        raise UsageError("downgrade needs a revision below the current one (or base)")
    model, dim = _embedding(settings, embedding_model, embedding_dim)
    async with migrator.migrator_lock(settings, _lock_timeout(settings, lock_timeout)) as lock:
        before = (await current(settings))["revision"]
        chain = _chain()
        if target != "base" and before is not None and chain.index(target) > chain.index(before):
            raise UsageError(f"the database is at {before}, below {target}: use `ragstore migrate upgrade {target}`")
        reverting = _between(target if target != "base" else None, before)[::-1] if before else []
        if not force:
            await _preflight(settings, reverting)
        dropped: list[str] = []
        if target == "base" and dim is not None:
            conn = await connect(settings, retries=1)
            try:
                dropped = await vectors.drop(conn, settings, model, dim, force=force)
            finally:
                await conn.close()
        await migrator.run_with_lock_retries(settings, lambda cfg: command.downgrade(cfg, target),
                                             budget=_retry_budget(settings, lock_timeout), force=force)
        after = (await current(settings))["revision"]
    return {"target": describe_target(settings), "from": before, "to": after, "reverted": _between(after, before)[::-1]
            if before else [], "vector_tables_dropped": dropped, **lock}


async def _preflight(settings: Settings, revisions: list[str]) -> None:
    """Refuse a downgrade before it starts when any step on the way would drop data (no partial run)."""
    conn = await connect(settings, retries=1)
    try:
        for revision in revisions:
            module = migrator.script().get_revision(revision).module
            for table, column, default in getattr(module, "AT_RISK", []):
                if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table.lower()):
                    continue
                if column is not None and not await conn.fetchval(
                        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
                        table.lower(), column):
                    continue
                if await conn.fetchval(holds_data_sql(table, column, default)):
                    what = f"column {table.lower()}.{column}" if column else f"table {table.lower()}"
                    raise UsageError(f"downgrade to below {revision} would drop {what}, which holds data; "
                                     "pass --force to drop it anyway (nothing was changed)")
    finally:
        await conn.close()


async def stamp(settings: Settings, revision: str, *, lock_timeout: float | None = None) -> dict[str, Any]:
    """Record `revision` as current without running anything (after a manual or verified change)."""
    target = migrator.resolve(revision)
    async with migrator.migrator_lock(settings, _lock_timeout(settings, lock_timeout)):
        before = (await current(settings))["revision"]
        await migrator.run_command(settings, lambda cfg: command.stamp(cfg, target, purge=True))
        after = (await current(settings))["revision"]
    return {"target": describe_target(settings), "from": before, "to": after}


async def move_vectors(settings: Settings, *, embedding_model: str | None = None,
                       embedding_dim: int | None = None, lock_timeout: float | None = None) -> dict[str, Any]:
    """Copy legacy unsuffixed vector rows into the model's tables, verified by counts (explicit only)."""
    model, dim = _embedding(settings, embedding_model, embedding_dim)
    if dim is None:
        raise UsageError("vectors-move needs EMBEDDING_DIM (or --embedding-dim)")
    async with migrator.migrator_lock(settings, _lock_timeout(settings, lock_timeout)):
        conn = await connect(settings, retries=1)
        try:
            moved = await vectors.move_legacy(conn, model, dim)
        finally:
            await conn.close()
    return {"target": describe_target(settings), "moved": moved}


async def adopt(settings: Settings, *, dry_run: bool = False, lock_timeout: float | None = None) -> dict[str, Any]:
    """Match an existing LightRAG-created database to a revision, with evidence, and stamp it.

    Unmatched databases are reported with their differences from the closest revision and not stamped.
    """
    conn = await connect(settings, retries=1)
    try:
        stamped = await current_revision(conn)
        found = await catalog.fingerprint(conn)
        legacy_rows = 0
        if names.LLM_CACHE in found:
            legacy_rows = await conn.fetchval(f"SELECT count(*) FROM {names.LLM_CACHE} WHERE id NOT LIKE '%:%'")
    finally:
        await conn.close()
    if stamped is not None:
        raise UsageError(f"the database is already managed by ragstore (revision {stamped}); "
                         "use `ragstore migrate check` or `migrate upgrade`")
    evidence = [f"{t.lower()}: {len(s['columns'])} columns, primary key ({', '.join(s['pk'])}), "
                f"{len(s['indexes'])} indexes" for t, s in sorted(found.items())]
    result: dict[str, Any] = {"target": describe_target(settings), "dry_run": dry_run, "evidence": evidence,
                              "legacy_cache_rows": legacy_rows, "notes": [], "stamped": None}
    if not found:
        result.update(matched=False, revision=None, closest=None,
                      differences=["no LightRAG tables in this schema: nothing to adopt (run `migrate upgrade`)"])
        return result
    result.update(catalog.match(found))
    if legacy_rows and "mode" not in found.get(names.LLM_CACHE, {}).get("columns", {}):
        result["notes"].append(
            f"{legacy_rows} LLM cache rows still have legacy keys but `mode` is gone (LightRAG dropped it before "
            "flattening): they cannot be re-keyed by mode and stay unreachable to LightRAG")
    cache = found.get(names.LLM_CACHE)
    if cache and not cache["pk"] and "mode" not in cache["columns"]:
        result["notes"].append("the LLM cache has no primary key: LightRAG dropped `mode` and could not re-key it "
                               "because some ids repeat within a workspace; remove the duplicates, then adopt again")
    if len(result.get("same_catalog", [])) > 1:
        result["notes"].append(f"revisions {', '.join(result['same_catalog'])} share this catalog; stamping the "
                               "earliest, so the next upgrade re-runs the data-only step (it is idempotent)")
    if result["matched"] and not dry_run:
        stamp_result = await stamp(settings, result["revision"], lock_timeout=lock_timeout)
        result["stamped"] = stamp_result["to"]
    return result
