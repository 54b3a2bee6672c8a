"""Adopt databases in older LightRAG layouts, then upgrade: every legacy cache row under its right key."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from ragstore_cli.errors import UsageError
from ragstore_cli.schema import api
from tests.schema.conftest import pg, settings_for, snapshot

FIXTURES = Path(__file__).with_name("fixtures")


async def load(env: dict[str, str], name: str) -> None:
    conn = await pg(env)
    try:
        await conn.execute((FIXTURES / name).read_text())
    finally:
        await conn.close()


def key(mode: str, prompt: str) -> str:
    kind = "extract" if mode == "default" else "unknown"
    return f"{mode}:{kind}:{hashlib.md5(prompt.encode()).hexdigest()}"


async def cache_rows(env: dict[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    conn = await pg(env)
    try:
        rows = await conn.fetch("SELECT workspace, id, return_value, cache_type FROM lightrag_llm_cache")
    finally:
        await conn.close()
    return {(r["workspace"], r["id"]): (r["return_value"], r["cache_type"]) for r in rows}


async def test_mode_keyed_layout_is_adopted_as_0001_and_every_legacy_row_is_flattened(pg_database):
    await load(pg_database, "mode_keyed.sql")
    settings = settings_for(pg_database)
    dry = await api.adopt(settings, dry_run=True)
    assert dry["matched"] and dry["revision"] == "0001" and dry["stamped"] is None
    assert dry["legacy_cache_rows"] == 7
    assert (await api.current(settings))["revision"] is None  # dry run stamped nothing
    adopted = await api.adopt(settings)
    assert adopted["stamped"] == "0001"
    await api.upgrade(settings)
    rows = await cache_rows(pg_database)
    assert rows == {
        ("default", key("default", "extract entities from chunk one")): ("E1", "extract"),
        ("default", key("local", "what is local?")): ("L1", "unknown"),
        ("default", key("global", "what is global?")): ("G1", "unknown"),
        ("default", key("hybrid", "what is hybrid?")): ("H1", "unknown"),
        ("default", key("naive", "what is naive?")): ("N1", "unknown"),
        ("default", key("mix", "what is mix?")): ("M1", "unknown"),
        ("other_ws", key("default", "extract entities from chunk one")): ("E2", "extract"),
    }
    conn = await pg(pg_database)
    try:
        # the doc-status instants survived the time-zone change (stored as UTC)
        created = await conn.fetchval("SELECT created_at::text FROM lightrag_doc_status WHERE id = 'doc-1'")
        assert created == "2024-05-01 10:00:00"
        pk = await conn.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'lightrag_llm_cache_pk'")
        assert pk == "PRIMARY KEY (workspace, id)"
    finally:
        await conn.close()


async def test_cache_type_layout_relabels_legacy_query_rows_and_keeps_flat_rows(pg_database):
    await load(pg_database, "cache_type_with_mode.sql")
    settings = settings_for(pg_database)
    adopted = await api.adopt(settings)
    assert adopted["revision"] == "0004" and adopted["same_catalog"] == ["0004", "0005"]
    await api.upgrade(settings)
    rows = await cache_rows(pg_database)
    assert rows == {
        ("default", key("default", "summarise entity X")): ("S1", "extract"),
        ("default", key("local", "who is X?")): ("L2", "unknown"),
        ("default", key("global", "how are X and Y related?")): ("G2", "unknown"),
        ("default", "mix:query:0123456789abcdef0123456789abcdef"): ("F1", "query"),
        ("default", "default:extract:fedcba9876543210fedcba9876543210"): ("F2", "extract"),
    }


def test_unknown_layout_is_reported_and_not_stamped(pg_database, cli):
    asyncio.run(load(pg_database, "unknown_layout.sql"))
    result = cli("--json", "migrate", "adopt", env=pg_database)
    assert result.exit_code == 1
    doc = result.json()
    assert doc["matched"] is False and "stamped" in doc and doc["stamped"] is None, doc
    assert any("unexpected column tenant" in d for d in doc["differences"])
    assert any("missing table lightrag_doc_full" in d for d in doc["differences"])
    assert "ragstore_alembic_version" not in {row[0] for row in asyncio.run(snapshot(pg_database))["columns"]}
    human = cli("migrate", "adopt", "--dry-run", env=pg_database)
    assert human.exit_code == 1 and "matches no revision" in human.stdout and "tenant" in human.stdout


async def test_adopt_refuses_a_database_already_managed(pg_database):
    settings = settings_for(pg_database)
    await api.upgrade(settings, "0003")
    with pytest.raises(UsageError, match="already managed"):
        await api.adopt(settings)


async def test_many_legacy_rows_flattened_across_many_small_batches(pg_database, monkeypatch):
    from ragstore_cli.schema import ops

    monkeypatch.setattr(ops, "BATCH_ROWS", 7)  # 1000+ rows → well over a hundred batches per backfill
    await load(pg_database, "mode_keyed.sql")
    conn = await pg(pg_database)
    try:
        await conn.execute("""INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt, return_value)
            SELECT CASE WHEN g % 3 = 0 THEN 'default' ELSE 'ws' || (g % 3) END, md5(g::text),
                   (ARRAY['default','local','global','hybrid','naive','mix'])[1 + g % 6], 'p' || g, 'r' || g
            FROM generate_series(1, 1000) g""")
    finally:
        await conn.close()
    settings = settings_for(pg_database)
    await api.adopt(settings)
    await api.upgrade(settings)
    rows = await cache_rows(pg_database)
    assert len(rows) == 1007
    modes = ["default", "local", "global", "hybrid", "naive", "mix"]
    for g in range(1, 1001):
        ws = "default" if g % 3 == 0 else f"ws{g % 3}"
        mode = modes[g % 6]
        assert rows[(ws, key(mode, f"p{g}"))] == (f"r{g}", "extract" if mode == "default" else "unknown")


async def test_ids_repeated_across_modes_stop_the_rekey_with_a_clear_error(pg_database):
    from ragstore_cli.errors import DataError

    await load(pg_database, "cache_type_with_mode.sql")
    conn = await pg(pg_database)
    try:
        await conn.execute("INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt, return_value) VALUES "
                           "('default', 'local:query:dup', 'local', 'a', '1'), ('default', 'local:query:dup', 'global', 'b', '2')")
    finally:
        await conn.close()
    settings = settings_for(pg_database)
    await api.adopt(settings)
    with pytest.raises(DataError, match="repeated across modes .*default/local:query:dup"):
        await api.upgrade(settings)
    assert (await api.current(settings))["revision"] == "0005"  # stopped before 0006, nothing half-done
    conn = await pg(pg_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM lightrag_llm_cache WHERE id = 'local:query:dup'") == 2
    finally:
        await conn.close()


@pytest.mark.parametrize("revision", ["0002", "0003", "0006", "0007", "0008", "0009", "0010"])
async def test_every_intermediate_layout_is_recognised(pg_database, revision):
    """A database left at each layout (version table removed, as LightRAG would have left it) is recognised."""
    settings = settings_for(pg_database)
    await api.upgrade(settings, revision)
    conn = await pg(pg_database)
    try:
        await conn.execute("DROP TABLE ragstore_alembic_version")
    finally:
        await conn.close()
    adopted = await api.adopt(settings)
    assert adopted["matched"] and adopted["revision"] == revision and adopted["stamped"] == revision
    assert (await api.upgrade(settings))["applied"][0] == f"{int(revision) + 1:04d}"


async def test_a_database_lightrag_already_migrated_is_adopted_with_its_lost_rows_reported(pg_database, tmp_path):
    """LightRAG 1.5.7 starting on an older layout drops `mode` and strands the legacy rows (its bug)."""
    from tests.schema.lightrag_pg import lightrag_storages

    await load(pg_database, "cache_type_with_mode.sql")
    async with lightrag_storages(pg_database, tmp_path, "m", 4):
        pass
    adopted = await api.adopt(settings_for(pg_database), dry_run=True)
    assert adopted["matched"], adopted["differences"]
    assert adopted["revision"] == "0012" and adopted["legacy_cache_rows"] == 3
    assert any("cannot be re-keyed by mode" in note for note in adopted["notes"])


async def test_lightrag_leaves_the_cache_without_a_primary_key_when_legacy_ids_repeat_across_modes(pg_database,
                                                                                                  tmp_path):
    """mode_keyed.sql has hash 'a1b2' in two modes: after LightRAG drops `mode` its PK cannot come back."""
    from tests.schema.lightrag_pg import lightrag_storages

    await load(pg_database, "mode_keyed.sql")
    async with lightrag_storages(pg_database, tmp_path, "m", 4):
        pass
    result = await api.adopt(settings_for(pg_database))
    assert not result["matched"] and result["stamped"] is None
    assert result["differences"] == ["lightrag_llm_cache: primary key (none), expected (workspace, id)"]
    assert result["legacy_cache_rows"] == 7
    assert any("no primary key" in note for note in result["notes"])
