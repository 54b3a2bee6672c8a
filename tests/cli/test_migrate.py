"""`ragstore migrate …` through the CLI on the embedded PostgreSQL 18: outputs, exit codes, refusals."""

from __future__ import annotations

import asyncio

from ragstore_cli.schema.names import safe_index_name
from tests.schema.conftest import pg

MODEL_ENV = {"EMBEDDING_MODEL": "text-embedding-3-large", "EMBEDDING_DIM": "16"}


def scalar(env: dict[str, str], sql: str):
    async def go():
        conn = await pg(env)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()
    return asyncio.run(go())


def test_check_is_behind_then_upgrade_then_check_passes(cli, pg_database):
    env = {**pg_database, **MODEL_ENV}
    behind = cli("--json", "migrate", "check", env=env)
    assert behind.exit_code == 1
    assert behind.json()["revision"] is None and behind.json()["pending"][0] == "0001"
    up = cli("--json", "migrate", "upgrade", env=env)
    assert up.exit_code == 0, up.output
    doc = up.json()
    assert doc["to"] == "0012" and len(doc["applied"]) == 12
    assert [t["table"] for t in doc["vector_tables"]] == [
        "LIGHTRAG_VDB_CHUNKS_text_embedding_3_large_16d", "LIGHTRAG_VDB_ENTITY_text_embedding_3_large_16d",
        "LIGHTRAG_VDB_RELATION_text_embedding_3_large_16d"]
    assert cli("--json", "migrate", "check", env=env).json()["behind"] is False
    assert cli("migrate", "check", env=env).exit_code == 0
    current = cli("migrate", "current", env=env)
    assert current.exit_code == 0 and "0012" in current.stdout
    assert env["POSTGRES_PASSWORD"] not in up.output + current.output


def test_dry_run_prints_the_plan_and_changes_nothing(cli, pg_database):
    env = {**pg_database, **MODEL_ENV}
    result = cli("--json", "migrate", "upgrade", "--dry-run", env=env)
    assert result.exit_code == 0
    doc = result.json()
    assert doc["dry_run"] and doc["applied"][-1] == "0012"
    assert doc["vector_tables"][0]["index"] == "idx_lightrag_vdb_chunks_text_embedding_3_large_16d_hnsw_cosine"
    assert scalar(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_halfvec_index_type_and_over_2000_dims(cli, pg_database):
    env = {**pg_database, "EMBEDDING_MODEL": "text-embedding-3-large", "EMBEDDING_DIM": "3072"}
    refused = cli("migrate", "upgrade", env=env)
    assert refused.exit_code == 2
    assert "HNSW_HALFVEC" in refused.stderr and "Traceback" not in refused.output
    assert scalar(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    ok = cli("--json", "migrate", "upgrade", env={**env, "POSTGRES_VECTOR_INDEX_TYPE": "HNSW_HALFVEC"})
    assert ok.exit_code == 0, ok.output
    assert scalar(pg_database, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname = 'content_vector'"
                  " AND attrelid = 'lightrag_vdb_chunks_text_embedding_3_large_3072d'::regclass") == "halfvec(3072)"
    name = safe_index_name("LIGHTRAG_VDB_CHUNKS_text_embedding_3_large_3072d", "hnsw_halfvec_cosine")
    assert name.startswith("idx_") and len(name) <= 63 and "text_embedding" not in name  # LightRAG's md5 form
    assert "halfvec_cosine_ops" in scalar(pg_database, f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'")


def test_switching_index_type_replaces_the_vector_index(cli, pg_database):
    env = {**pg_database, **MODEL_ENV}
    assert cli("migrate", "upgrade", env=env).exit_code == 0
    again = cli("--json", "migrate", "upgrade", env={**env, "POSTGRES_VECTOR_INDEX_TYPE": "IVFFLAT",
                                                     "POSTGRES_IVFFLAT_LISTS": "7"})
    assert again.exit_code == 0, again.output
    names = scalar(pg_database, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                   "WHERE tablename = 'lightrag_vdb_entity_text_embedding_3_large_16d'")
    assert "ivfflat_cosine" in names and "hnsw_cosine" not in names


def test_too_long_model_name_is_a_usage_error(cli, pg_database):
    env = {**pg_database, "EMBEDDING_MODEL": "m" * 60, "EMBEDDING_DIM": "8"}
    result = cli("migrate", "upgrade", env=env)
    assert result.exit_code == 2 and "63" in result.stderr


def test_unknown_revision_is_a_usage_error(cli, pg_database):
    result = cli("migrate", "upgrade", "9999", env=pg_database)
    assert result.exit_code == 2 and "unknown revision '9999'" in result.stderr


def test_downgrade_refuses_to_drop_data_without_force(cli, pg_database):
    env = {**pg_database}
    assert cli("migrate", "upgrade", env=env).exit_code == 0
    scalar(pg_database, "INSERT INTO lightrag_full_entities (id, workspace, entity_names, count) "
                        "VALUES ('doc-1', 'default', '[\"A\"]', 1) RETURNING 1")
    refused = cli("migrate", "downgrade", "0009", env=env)
    assert refused.exit_code == 2 and "lightrag_full_entities" in refused.stderr and "--force" in refused.stderr
    assert scalar(pg_database, "SELECT version_num FROM ragstore_alembic_version") == "0012"  # refused before any step
    assert scalar(pg_database, "SELECT count(*) FROM lightrag_full_entities") == 1
    forced = cli("--json", "migrate", "downgrade", "0009", "--force", env=env)
    assert forced.exit_code == 0, forced.output
    assert scalar(pg_database, "SELECT to_regclass('lightrag_full_entities') IS NULL") is True


def test_downgrade_keeps_llm_cache_keys_and_restores_mode(cli, pg_database):
    assert cli("migrate", "upgrade", env=pg_database).exit_code == 0
    scalar(pg_database, "INSERT INTO lightrag_llm_cache (workspace, id, original_prompt, return_value, cache_type) "
                        "VALUES ('default', 'local:query:abc', 'p', 'r', 'query') RETURNING 1")
    result = cli("migrate", "downgrade", "0005", env=pg_database)
    assert result.exit_code == 0, result.output
    assert scalar(pg_database, "SELECT mode FROM lightrag_llm_cache WHERE id = 'local:query:abc'") == "local"
    assert cli("migrate", "upgrade", env=pg_database).exit_code == 0
    assert scalar(pg_database, "SELECT return_value FROM lightrag_llm_cache WHERE id = 'local:query:abc'") == "r"


def test_history_sql_and_stamp(cli, pg_database):
    history = cli("--json", "migrate", "history")
    assert history.exit_code == 0
    assert [r["revision"] for r in history.json()][:2] == ["0001", "0002"] and history.json()[-1]["is_head"]
    offline = cli("migrate", "sql", env={"POSTGRES_HOST": "203.0.113.1"})  # no connection is made
    assert offline.exit_code == 0
    assert "CREATE TABLE IF NOT EXISTS LIGHTRAG_LLM_CACHE" in offline.stdout
    assert "CREATE INDEX CONCURRENTLY" in offline.stdout and "ragstore_alembic_version" in offline.stdout
    part = cli("--json", "migrate", "sql", "0006", "--from", "0004")
    assert "Running upgrade 0005 -> 0006" in part.json()["sql"] and "0001" not in part.json()["sql"]
    stamped = cli("--json", "migrate", "stamp", "0012", env=pg_database)
    assert stamped.exit_code == 0 and stamped.json()["to"] == "0012"
    assert scalar(pg_database, "SELECT version_num FROM ragstore_alembic_version") == "0012"


def test_check_connections_reports_the_revision(cli, pg_database):
    assert cli("migrate", "upgrade", "0006", env=pg_database).exit_code == 0
    result = cli("--json", "check-connections", "--backend", "postgres", env=pg_database)
    details = result.json()[0]["details"]
    assert details["schema_revision"] == "0006" and details["schema_head"] == "0012" and details["schema_behind"] is True


def test_unreachable_server_is_one_line(cli):
    result = cli("migrate", "current", env={"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1",
                                            "POSTGRES_CONNECTION_RETRIES": "1"})
    assert result.exit_code == 1 and result.stderr.startswith("error: postgres:") and "Traceback" not in result.output


def test_a_revision_from_a_newer_ragstore_is_reported(cli, pg_database):
    assert cli("migrate", "upgrade", "0002", env=pg_database).exit_code == 0
    scalar(pg_database, "UPDATE ragstore_alembic_version SET version_num = '0099' RETURNING 1")
    result = cli("migrate", "check", env=pg_database)
    assert result.exit_code == 1 and "'0099'" in result.stderr and "newer ragstore" in result.stderr
    up = cli("migrate", "upgrade", env=pg_database)
    assert up.exit_code == 1 and "newer ragstore" in up.stderr
    assert scalar(pg_database, "SELECT version_num FROM ragstore_alembic_version") == "0099"
