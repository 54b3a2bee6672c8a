"""Tables made after the first grant, bad input, and what check-connections says about a tenant."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ragstore_cli.schema.coverage import POLICY, workspace_tables
from ragstore_cli.schema import names
from tests.security.conftest import connect, insert_row, populate, read_env, unique


def grant(cli, env, workspace, role, env_file, *extra):
    return cli("--json", "workspace", "grant", workspace, "--role", role, "--backend", "postgres",
               "--write-env", str(env_file), *extra, env=env)


def tenant_env(env, env_file):
    values = read_env(env_file)
    return {**env, "POSTGRES_USER": values["POSTGRES_USER"], "POSTGRES_PASSWORD": values["POSTGRES_PASSWORD"]}


async def table_state(env, table: str) -> tuple[bool, bool]:
    conn = await connect(env)
    try:
        row = await conn.fetchrow("SELECT c.relrowsecurity, EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid "
                                  "AND p.polname = $2) AS policy FROM pg_class c WHERE c.relname = $1", table, POLICY)
        return row["relrowsecurity"], row["policy"]
    finally:
        await conn.close()


def test_the_table_list_comes_from_schema_names_and_includes_the_graph_tables():
    assert {"lightrag_graph_nodes", "lightrag_graph_edges", "lightrag_doc_status"} <= set(names.workspace_tables())
    assert names.workspace_table_prefixes() == ("lightrag_vdb_chunks", "lightrag_vdb_entity", "lightrag_vdb_relation")


def test_a_new_models_vector_tables_are_covered_by_migrate_upgrade(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    other_model = {**owner_db, "EMBEDDING_MODEL": "bge-m3", "EMBEDDING_DIM": "8"}
    up = cli("--json", "migrate", "upgrade", "head", env=other_model)
    assert up.exit_code == 0, up.output
    new_tables = {t["table"].lower() for t in up.json()["vector_tables"]}
    assert new_tables == {"lightrag_vdb_chunks_bge_m3_8d", "lightrag_vdb_entity_bge_m3_8d", "lightrag_vdb_relation_bge_m3_8d"}
    assert set(up.json()["access_covered"]) >= new_tables

    async def check() -> None:
        owner = await connect(owner_db)
        try:
            for table in new_tables:
                await owner.execute(f"INSERT INTO {table} (workspace, id) VALUES ('A', 'a'), ('B', 'b')")
        finally:
            await owner.close()
        conn = await connect(tenant_env(owner_db, env_file))
        try:
            for table in new_tables:
                assert [r[0] for r in await conn.fetch(f"SELECT workspace FROM {table}")] == ["A"]
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"INSERT INTO {table} (workspace, id) VALUES ('B', 'evil')")
        finally:
            await conn.close()

    asyncio.run(check())
    for table in new_tables:
        assert asyncio.run(table_state(owner_db, table)) == (True, True)


def test_tables_made_outside_ragstore_stay_closed_until_the_next_grant(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    table = "lightrag_vdb_chunks_made_by_hand_16d"

    async def make() -> None:  # as LightRAG running with the owner's credentials would
        conn = await connect(owner_db)
        try:
            await conn.execute(f"CREATE TABLE {table} (id VARCHAR(255), workspace VARCHAR(255), "
                               "content_vector VECTOR(16), PRIMARY KEY (workspace, id))")
            await insert_row(conn, table, "B", "b1")
        finally:
            await conn.close()

    asyncio.run(make())
    listed = cli("--json", "workspace", "grants", "--backend", "postgres", env=owner_db).json()
    assert listed["backends"]["postgres"]["uncovered_tables"] == [table]
    human = cli("workspace", "grants", "--backend", "postgres", env=owner_db)
    assert "uncovered" in human.stdout and table in " ".join(human.stdout.split())

    async def closed() -> None:
        conn = await connect(tenant_env(owner_db, env_file))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {table}")
        finally:
            await conn.close()

    asyncio.run(closed())
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0  # idempotent, and covers it

    async def covered() -> None:
        conn = await connect(tenant_env(owner_db, env_file))
        try:
            assert await conn.fetch(f"SELECT * FROM {table}") == []  # B's row stays hidden
        finally:
            await conn.close()

    asyncio.run(covered())


BAD_ROLES = ["Robert'); DROP TABLE x; --", "a b", "pg_monitor", "", "x" * 64, "Upper", "public", "1abc", "a\"b",
             "a*b", "a-b"]
BAD_WORKSPACES = ["a'b", 'a"b', "a*b", "a[b]", "a?b", "../x", "a/b", "a\\b", "x" * 65]


def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    env_file = tmp_path / "a.env"

    async def catalog() -> tuple:
        conn = await connect(owner_db)
        try:
            return (await conn.fetchval("SELECT count(*) FROM pg_roles"),
                    await conn.fetchval("SELECT count(*) FROM pg_class WHERE relrowsecurity"),
                    await conn.fetchval("SELECT to_regclass('ragstore_workspace_grants') IS NULL"))
        finally:
            await conn.close()

    before = asyncio.run(catalog())
    cases = [(ws, "ta_ok") for ws in BAD_WORKSPACES] + [("A", role) for role in BAD_ROLES]
    for workspace, role in cases:
        out = cli("workspace", "grant", workspace, "--role", role, "--backend", "postgres", "--write-env", str(env_file),
                  env=owner_db)
        assert out.exit_code == 2, (workspace, role, out.output)
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") <= 2 and "Traceback" not in out.output
    refusals = {
        "unknown workspace": (["grant", "nobody_has_this", "--role", unique("ta"), "--backend", "postgres"], "--new"),
        "redis not configured": (["grant", "A", "--role", unique("ta"), "--backend", "redis"], "not configured"),
        "neo4j": (["grant", "A", "--role", unique("ta"), "--backend", "neo4j"], "per-label access control"),
        "unknown backend": (["grant", "A", "--role", unique("ta"), "--backend", "mongo"], "unknown backend"),
        "no env file": (["grant", "A", "--role", unique("ta"), "--backend", "postgres"], "--write-env"),
        "env file folder": (["grant", "A", "--role", unique("ta"), "--backend", "postgres", "--write-env",
                             str(tmp_path / "missing" / "a.env")], "does not exist"),
        "existing role": (["grant", "A", "--role", owner_db["POSTGRES_USER"], "--backend", "postgres"], "--adopt"),
        "revoke nothing": (["revoke", "A", "--role", unique("ta"), "--backend", "postgres"], "has no grant"),
    }
    for what, (args, message) in refusals.items():
        if "--write-env" not in args and args[0] == "grant" and what != "no env file":
            args = [*args, "--write-env", str(env_file)]
        out = cli("workspace", *args, env=owner_db)
        assert out.exit_code == 2 and message in out.stderr, (what, out.output)
    assert not env_file.exists()
    assert asyncio.run(catalog()) == before


def test_dry_run_plans_without_changing_anything(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    out = cli("--json", "workspace", "grant", "A", "--role", unique("ta"), "--backend", "postgres", "--dry-run",
              "--write-env", str(tmp_path / "a.env"), env=owner_db)
    assert out.exit_code == 0, out.output
    plan = out.json()["plans"][0]
    assert plan["creates_login"] and len(plan["enables_rls_on"]) >= 13 and not (tmp_path / "a.env").exists()
    assert asyncio.run(table_state(owner_db, "lightrag_doc_full")) == (False, False)


def test_check_connections_says_whether_the_role_is_restricted(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    assert grant(cli, owner_db, "B", role, env_file).exit_code == 0
    as_tenant = cli("--json", "check-connections", "--backend", "postgres", env=tenant_env(owner_db, env_file))
    assert as_tenant.exit_code == 0, as_tenant.output
    assert as_tenant.json()[0]["details"]["access"] == {"restricted": True, "workspaces": ["A", "B"]}
    human = cli("check-connections", "--backend", "postgres", env=tenant_env(owner_db, env_file))
    assert "restricted to A, B" in " ".join(human.stdout.split())
    as_owner = cli("--json", "check-connections", "--backend", "postgres", env=owner_db).json()[0]["details"]["access"]
    assert as_owner["restricted"] is False and "owns" in as_owner["reason"]


def test_grants_lists_neo4j_as_not_enforced_and_prints_untested_cypher(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    env = {**owner_db, "NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_DATABASE": "lightrag"}
    out = cli("--json", "workspace", "grant", "A", "--role", unique("ta"), "--backend", "postgres", "--print-cypher",
              "--write-env", str(tmp_path / "a.env"), env=env)
    assert out.exit_code == 0, out.output
    doc = out.json()
    assert doc["not_enforced"][0]["backend"] == "neo4j"
    assert doc["cypher"][0].startswith("// NOT TESTED")
    assert "GRANT MATCH {*} ON GRAPH `lightrag` NODES `A`" in " ".join(doc["cypher"])
    listed = cli("workspace", "grants", "--backend", "postgres", env=env)
    assert "not enforced: neo4j" in " ".join(listed.stdout.split())


def test_workspace_tables_skips_tables_without_a_workspace_column(owner_db):
    async def go() -> list[str]:
        conn = await connect(owner_db)
        try:
            await conn.execute("CREATE TABLE lightrag_vdb_chunks_odd (id text)")
            return await workspace_tables(conn)
        finally:
            await conn.close()

    assert "lightrag_vdb_chunks_odd" not in asyncio.run(go())


def test_a_tenant_cannot_grant_itself_more(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    out = cli("workspace", "grant", "B", "--role", unique("tb"), "--backend", "postgres", "--write-env",
              str(tmp_path / "b.env"), env=tenant_env(owner_db, env_file))
    assert out.exit_code == 2 and "may not create roles" in out.stderr and "does not own" in out.stderr
    out = cli("workspace", "revoke", "A", "--role", role, "--backend", "postgres", env=tenant_env(owner_db, env_file))
    assert out.exit_code != 0 and "Traceback" not in out.output and out.stderr.startswith("error: postgres")


def test_revoke_after_the_role_was_dropped_by_hand(cli, owner_db, tmp_path, pg_server):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    pg_server.psql(f"DROP OWNED BY {role}", database=owner_db["POSTGRES_DATABASE"])
    pg_server.psql(f"DROP ROLE {role}")
    out = cli("--json", "workspace", "revoke", "A", "--role", role, "--backend", "postgres", env=owner_db)
    assert out.exit_code == 0 and out.json()["backends"][0]["login"] == "already gone"
    assert cli("--json", "workspace", "grants", "--backend", "postgres", env=owner_db).json()["grants"] == []
