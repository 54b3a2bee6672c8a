"""The proof with real LightRAG 1.5.7: two workspaces on one PostgreSQL and one Redis.

B is built by LightRAG running with the owner's credentials. A is granted (`workspace grant`), and
LightRAG running with only A's env file starts on the ragstore-migrated database, inserts, answers
queries and sees nothing of B; pointed at workspace B it can neither read nor write. Direct SQL and
Redis commands as A return none of B's rows or keys and every write to B is refused. After `revoke`
A's logins fail. B's data is byte-for-byte what it was.

The graph runs on NetworkXStorage (files): PGTableGraphStorage cannot start as a restricted role,
see `test_pgtable_graph_storage_needs_table_ownership` and docs/access.md.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from tests.interop.lightrag_builder import (
    PG_STORAGES, CharTokenizer, build_workspace, fake_llm, fresh_shared_state, make_embedding_func,
)
from tests.security.conftest import connect, read_env, tables_of, unique

B_DOCS = {"zeta.txt": "Xavier built Quorra in Oslo. Xavier trusts Yvonne with Quorra.",
          "eta.txt": "Yvonne sailed from Oslo to Bergen. Quorra stayed with Xavier."}
B_WORDS = ("Xavier", "Quorra", "Oslo", "Yvonne", "Bergen")
A_DOCS = {"alice.txt": "Alice met Bob in Paris. Alice works at Acme with Carol.",
          "bob.txt": "Bob founded Zenith in Berlin. Bob and Alice wrote Atlas together."}
CONFIGS = {
    "postgres": {**PG_STORAGES, "graph_storage": "NetworkXStorage"},
    "postgres+redis": {**PG_STORAGES, "graph_storage": "NetworkXStorage", "kv_storage": "RedisKVStorage",
                       "doc_status_storage": "RedisDocStatusStorage"},
}
LIGHTRAG_VARS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DATABASE", "REDIS_URI")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def use(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """LightRAG reads its connection settings from os.environ only."""
    for name in LIGHTRAG_VARS:
        if name in values:
            monkeypatch.setenv(name, values[name])
    monkeypatch.setenv("POSTGRES_CONNECTION_RETRIES", "1")


def lightrag(working_dir: Path, workspace: str, storages: dict[str, str]):
    from lightrag import LightRAG
    from lightrag.utils import Tokenizer

    fresh_shared_state()
    return LightRAG(working_dir=str(working_dir), workspace=workspace, llm_model_func=fake_llm,
                    embedding_func=make_embedding_func(), tokenizer=Tokenizer("chars", CharTokenizer()),
                    vector_db_storage_cls_kwargs={"cosine_better_than_threshold": -1.0}, **storages)


async def snapshot(owner: dict[str, str], redis_admin: str) -> dict[str, Any]:
    """Every non-A row (as JSON text) of every LightRAG table, and every key of Redis databases 0 and 2
    (database 1 is A's)."""
    conn = await connect(owner)
    try:
        rows = {t: sorted(r[0] for r in await conn.fetch(
            f"SELECT row_to_json(x)::text FROM {t} x WHERE workspace <> 'A' ORDER BY 1")) for t in await tables_of(conn)}
    finally:
        await conn.close()
    keys: dict[str, Any] = {}
    for db in (0, 2):
        client = aioredis.from_url(redis_admin.rsplit("/", 1)[0] + f"/{db}")
        try:
            keys[str(db)] = {k: await client.dump(k) for k in sorted(await client.keys("*"))}
        finally:
            await client.aclose()
    return {"rows": rows, "keys": keys}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_lightrag_with_a_credentials_sees_and_changes_nothing_of_b(cli, owner_db, redis_clean, tmp_path, monkeypatch,
                                                                    config):
    storages = CONFIGS[config]
    admin_b = {**owner_db, "REDIS_URI": redis_clean.admin_uri(2)}
    admin_a = {**owner_db, "REDIS_URI": redis_clean.admin_uri(1)}

    # B: built by LightRAG with the owner's credentials, its Redis keys in database 2
    use(monkeypatch, admin_b)
    built = asyncio.run(build_workspace(tmp_path / "rag_b", "B", docs=B_DOCS, storages=storages))
    assert len(built.doc_ids) == len(B_DOCS)
    before = asyncio.run(snapshot(owner_db, admin_b["REDIS_URI"]))
    assert before["rows"]["lightrag_vdb_chunks_fake_embed_16d"]
    assert bool(before["rows"]["lightrag_doc_chunks"]) == (config == "postgres")
    if "redis" in config:
        assert before["keys"]["2"] and not before["keys"]["0"]

    # A: granted on both servers; LightRAG gets nothing but A's env file
    role, env_file = unique("tenant"), tmp_path / "a.env"
    granted = cli("--json", "workspace", "grant", "A", "--role", role, "--backend", "postgres", "--backend", "redis",
                  "--new", "--write-env", str(env_file), env=admin_a)
    assert granted.exit_code == 0, granted.output
    tenant = read_env(env_file)
    assert tenant["POSTGRES_USER"] == role and f"{role}:" in tenant["REDIS_URI"]
    use(monkeypatch, tenant)

    from lightrag.utils import logger

    collect = Collect()
    logger.addHandler(collect)
    try:
        built_a = asyncio.run(build_workspace(tmp_path / "rag_a", "A", docs=A_DOCS, storages=storages))
        assert len(built_a.doc_ids) == len(A_DOCS)
        answers = asyncio.run(ask(tmp_path / "rag_a", "A", storages))
    finally:
        logger.removeHandler(collect)
    assert not [m for m in collect.messages if "permission denied" in m.lower() or "noperm" in m.lower()], collect.messages
    assert answers["answer"]
    retrieved = " ".join(answers["chunks"])
    assert "Alice" in retrieved and not any(word in retrieved for word in B_WORDS)
    assert answers["doc_status_counts"] == {"processed": len(A_DOCS)}

    # LightRAG with A's credentials pointed at workspace B: nothing to read, nothing it may write
    asyncio.run(lightrag_as_a_on_b(tmp_path / "rag_b", storages))

    # direct SQL and Redis as A
    asyncio.run(direct_sql_as_a(owner_db, tenant))
    asyncio.run(direct_redis_as_a(tenant, role))
    assert asyncio.run(snapshot(owner_db, admin_b["REDIS_URI"])) == before

    # revoke: every login of A fails, and LightRAG cannot start with them
    revoked = cli("--json", "workspace", "revoke", "A", "--role", role, env={**admin_a, "LIGHTRAG_KV_STORAGE": "PGKVStorage"})
    assert revoked.exit_code == 0, revoked.output
    assert {d["backend"] for d in revoked.json()["backends"]} == {"postgres", "redis"}
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        asyncio.run(connect(owner_db, tenant["POSTGRES_USER"], tenant["POSTGRES_PASSWORD"]))
    with pytest.raises(AuthenticationError):
        asyncio.run(ping(tenant["REDIS_URI"]))
    with pytest.raises(Exception):  # noqa: B017 - whichever storage connects first fails
        asyncio.run(ask(tmp_path / "rag_a", "A", storages))
    assert asyncio.run(snapshot(owner_db, admin_b["REDIS_URI"])) == before


async def ask(working_dir: Path, workspace: str, storages: dict[str, str]) -> dict[str, Any]:
    from lightrag import QueryParam

    rag = lightrag(working_dir, workspace, storages)
    await rag.initialize_storages()
    try:
        answer = await rag.aquery("Who is Alice?", param=QueryParam(mode="mix"))
        data = await rag.aquery_data("Who is Alice and who is Xavier?", param=QueryParam(mode="naive", chunk_top_k=20))
        chunks = [c.get("content", "") for c in (data.get("data") or {}).get("chunks", [])]
        counts = await rag.doc_status.get_status_counts()
    finally:
        await rag.finalize_storages()
    return {"answer": answer, "chunks": chunks, "doc_status_counts": {k: v for k, v in counts.items() if v}}


async def lightrag_as_a_on_b(working_dir: Path, storages: dict[str, str]) -> None:
    """A's credentials with WORKSPACE=B: B's documents are not there (PostgreSQL) or not readable
    (Redis), and the first write is refused by the server (the policy, or the key patterns)."""
    rag = lightrag(working_dir, "B", storages)
    await rag.initialize_storages()
    try:
        assert {k: v for k, v in (await rag.doc_status.get_status_counts()).items() if v} == {}
        try:
            assert await rag.full_docs.get_by_ids(built_ids(B_DOCS)) == [None] * len(B_DOCS)
        except Exception as exc:  # noqa: BLE001 - tenacity wraps Redis' refusal
            assert "NoPermissionError" in repr(exc) or "No permissions" in str(exc), exc
        with pytest.raises(Exception, match="row-level security|No permissions"):
            await rag.ainsert("Mallory rewrote Quorra.", file_paths="mallory.txt")
    finally:
        await rag.finalize_storages()


def built_ids(docs: dict[str, str]) -> list[str]:
    """LightRAG's document ids for files it was given by name (md5 of the basename: docs/lightrag-formats.md, Ids)."""
    from lightrag.utils import compute_mdhash_id

    return [compute_mdhash_id(name, prefix="doc-") for name in docs]


async def direct_sql_as_a(owner: dict[str, str], tenant: dict[str, str]) -> None:
    conn = await connect(owner, tenant["POSTGRES_USER"], tenant["POSTGRES_PASSWORD"])
    try:
        for table in await tables_of(conn):
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE workspace <> 'A'") == 0, table
            assert await conn.execute(f"DELETE FROM {table} WHERE workspace = 'B'") == "DELETE 0"
            assert await conn.execute(f"UPDATE {table} SET workspace = 'B' WHERE workspace = 'nobody'") == "UPDATE 0"
        assert await conn.fetchval("SELECT count(*) FROM lightrag_vdb_chunks_fake_embed_16d WHERE workspace = 'A'") > 0
        for sql in ("INSERT INTO lightrag_doc_status (workspace, id, status) VALUES ('B', 'evil', 'processed')",
                    "UPDATE lightrag_vdb_chunks_fake_embed_16d SET workspace = 'B' WHERE workspace = 'A'",
                    f"SET ROLE {owner['POSTGRES_USER']}", "TRUNCATE lightrag_doc_full",
                    "ALTER TABLE lightrag_doc_full DISABLE ROW LEVEL SECURITY"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        await conn.execute("RESET ROLE")
        await conn.execute("SET row_security = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM lightrag_doc_full")
    finally:
        await conn.close()


async def direct_redis_as_a(tenant: dict[str, str], role: str) -> None:
    client = aioredis.from_url(tenant["REDIS_URI"])
    try:
        names = [k.decode() for k in await client.keys("*")]
        assert names and all(n.startswith("A_") or n == f"__ragstore_access:{role}" for n in names), names
        assert not [k async for k in client.scan_iter("B_*")]
        for command in (("SELECT", "2"), ("GET", "B_full_docs:x"), ("SET", "B_full_docs:x", "1"),
                        ("DEL", "B_doc_status:x"), ("FLUSHALL",), ("CONFIG", "SET", "maxmemory", "1")):
            with pytest.raises(NoPermissionError):
                await client.execute_command(*command)
    finally:
        await client.aclose()


async def ping(uri: str) -> None:
    client = aioredis.from_url(uri)
    try:
        await client.ping()
    finally:
        await client.aclose()


def test_pgtable_graph_storage_needs_table_ownership(cli, owner_db, tmp_path, monkeypatch):
    """LightRAG's PGTableGraphStorage runs CREATE TABLE IF NOT EXISTS / ALTER TABLE at every start; no grant
    short of owning the graph tables lets a role do that, and an owner can switch row-level security off."""
    role, env_file = unique("tenant"), tmp_path / "a.env"
    out = cli("workspace", "grant", "A", "--role", role, "--backend", "postgres", "--new", "--write-env", str(env_file),
              env=owner_db)
    assert out.exit_code == 0, out.output
    use(monkeypatch, read_env(env_file))
    rag = lightrag(tmp_path / "rag", "A", {**CONFIGS["postgres"], "graph_storage": "PGTableGraphStorage"})

    async def start() -> None:
        try:
            await rag.initialize_storages()
        finally:
            await rag.finalize_storages()

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
        asyncio.run(start())
