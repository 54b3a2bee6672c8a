"""A tenant trying, in SQL, to read or change another workspace's rows: every attempt is refused.

Tenant A gets workspace A; workspace B's rows (one in every LightRAG table, graph tables included)
must stay invisible and unchanged whatever A sends: other workspace values, role switches, RESET,
settings, a shadow grants table, TRUNCATE, COPY, DDL on the tables or the policy.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from ragstore_cli.schema.coverage import GRANTS_TABLE
from tests.security.conftest import connect, populate, read_env, tables_of, unique

HOSTILE_WORKSPACES = ["B", "b", "B ", " B", "A' OR '1'='1", "A\\", "default", ""]


@pytest.fixture
def granted(cli, owner_db, tmp_path):
    """Rows for A and B everywhere; tenant A granted; yields (owner env, tenant env, B's rows before)."""
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    result = cli("workspace", "grant", "A", "--role", role, "--backend", "postgres", "--write-env", str(env_file),
                 env=owner_db)
    assert result.exit_code == 0, result.output
    values = read_env(env_file)
    tenant = {**owner_db, "POSTGRES_USER": values["POSTGRES_USER"], "POSTGRES_PASSWORD": values["POSTGRES_PASSWORD"]}
    return owner_db, tenant, asyncio.run(other_rows(owner_db))


async def other_rows(env: dict[str, str]) -> dict[str, list[str]]:
    """Every row that is not workspace A's, as JSON text, per table (read by the owner)."""
    conn = await connect(env)
    try:
        return {t: sorted(r[0] for r in await conn.fetch(
            f"SELECT row_to_json(x)::text FROM {t} x WHERE workspace <> 'A' ORDER BY 1")) for t in await tables_of(conn)}
    finally:
        await conn.close()


async def refused(conn: asyncpg.Connection, sql: str, *args) -> str:
    """Run `sql`; return 'refused' on a privilege/policy error, else the command status (e.g. 'UPDATE 0')."""
    try:
        return await conn.execute(sql, *args)
    except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectNotInPrerequisiteStateError,
            asyncpg.FeatureNotSupportedError, asyncpg.CheckViolationError) as exc:
        return f"refused: {type(exc).__name__}"


STATS = "SELECT tablename, attname FROM pg_stats WHERE tablename = ANY($1::text[])"


def test_reads_show_only_the_granted_workspace_in_every_table(granted):
    owner, tenant, _ = granted

    async def go() -> None:
        conn = await connect(owner)
        try:
            await conn.execute("ANALYZE")
            assert await conn.fetch(STATS, await tables_of(conn)) != []  # the owner sees the statistics
        finally:
            await conn.close()
        conn = await connect(tenant)
        try:
            tables = await tables_of(conn)
            assert {"lightrag_graph_nodes", "lightrag_graph_edges", "lightrag_doc_status"} <= set(tables)
            assert any(t.startswith("lightrag_vdb_chunks_") for t in tables)
            for table in tables:
                assert {r[0] for r in await conn.fetch(f"SELECT DISTINCT workspace FROM {table}")} == {"A"}, table
                assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE workspace = 'B'") == 0
            # statistics and row estimates the planner keeps must not show B's values either
            assert await conn.fetch(STATS, tables) == []
            assert await conn.fetch(f"SELECT * FROM {GRANTS_TABLE}") != []
            assert {r["workspace"] for r in await conn.fetch(f"SELECT * FROM {GRANTS_TABLE}")} == {"A"}
        finally:
            await conn.close()

    asyncio.run(go())


def test_writes_with_any_other_workspace_value_are_refused(granted):
    owner, tenant, before = granted

    async def go() -> None:
        conn = await connect(tenant)
        try:
            for table, workspace in [(t, w) for t in await tables_of(conn) for w in HOSTILE_WORKSPACES]:
                key = "id" if table != "lightrag_graph_edges" else "src_id"
                extra = ", tgt_id" if table == "lightrag_graph_edges" else ""
                vals = ", 'x'" if extra else ""
                outcome = await refused(conn, f"INSERT INTO {table} (workspace, {key}{extra}) VALUES ($1, 'evil'{vals})",
                                        workspace)
                assert outcome.startswith("refused"), (table, outcome)
                moved = await refused(conn, f"UPDATE {table} SET workspace = $1 WHERE workspace = 'A'", workspace)
                assert moved.startswith("refused"), (table, moved)
                touched = await refused(conn, f"UPDATE {table} SET workspace = workspace WHERE workspace = $1", workspace)
                assert touched == "UPDATE 0", (table, touched)
                deleted = await refused(conn, f"DELETE FROM {table} WHERE workspace = $1", workspace)
                assert deleted == "DELETE 0", (table, deleted)
        finally:
            await conn.close()

    asyncio.run(go())
    assert asyncio.run(other_rows(owner)) == before


def test_upserts_onto_another_workspace_key_are_refused(granted):
    owner, tenant, before = granted

    async def go() -> None:
        conn = await connect(tenant)
        try:
            outcome = await refused(conn, "INSERT INTO lightrag_doc_full (workspace, id, content) VALUES ('B', 'b1-id', 'x') "
                                          "ON CONFLICT (workspace, id) DO UPDATE SET content = 'pwned'")
            assert outcome.startswith("refused")
            outcome = await refused(conn, "INSERT INTO lightrag_doc_full (workspace, id, content) VALUES ('A', 'a1-id', 'x') "
                                          "ON CONFLICT (workspace, id) DO UPDATE SET workspace = 'B'")
            assert outcome.startswith("refused")
        finally:
            await conn.close()

    asyncio.run(go())
    assert asyncio.run(other_rows(owner)) == before


HOSTILE_STATEMENTS = [
    "SET ROLE {owner}",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION {owner}",
    "TRUNCATE lightrag_doc_full",
    "TRUNCATE lightrag_graph_nodes CASCADE",
    "ALTER TABLE lightrag_doc_full DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE lightrag_doc_full NO FORCE ROW LEVEL SECURITY",
    "DROP POLICY ragstore_workspace_access ON lightrag_doc_full",
    "ALTER POLICY ragstore_workspace_access ON lightrag_doc_full USING (true)",
    "CREATE POLICY mine ON lightrag_doc_full USING (true)",
    f"INSERT INTO {GRANTS_TABLE} (role_name, workspace, role_created) VALUES (current_user, 'B', true)",
    f"UPDATE {GRANTS_TABLE} SET workspace = 'B'",
    f"DELETE FROM {GRANTS_TABLE}",
    f"ALTER TABLE {GRANTS_TABLE} DISABLE ROW LEVEL SECURITY",
    "GRANT {role} TO {owner}",
    "CREATE FUNCTION public.leak(text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE TABLE public.stash (x text)",
    "COPY lightrag_doc_full FROM STDIN",
    "DROP TABLE lightrag_doc_full",
    "ALTER TABLE lightrag_doc_full OWNER TO {role}",
    "CREATE TRIGGER t BEFORE INSERT ON lightrag_doc_full FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
]


def test_role_switches_ddl_truncate_and_grant_table_edits_are_refused(granted):
    owner, tenant, before = granted

    async def go() -> None:
        for statement in HOSTILE_STATEMENTS:
            sql = statement.format(owner=owner["POSTGRES_USER"], role=tenant["POSTGRES_USER"])
            conn = await connect(tenant)  # a fresh session each: no statement builds on another
            try:
                with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.FeatureNotSupportedError,
                                    asyncpg.ObjectNotInPrerequisiteStateError)):
                    await conn.execute(sql)
            finally:
                await conn.close()

    asyncio.run(go())
    assert asyncio.run(other_rows(owner)) == before


def test_reset_settings_and_a_shadow_grants_table_change_nothing(granted):
    owner, tenant, before = granted

    async def go() -> None:
        conn = await connect(tenant)
        try:
            await conn.execute("RESET ROLE")
            await conn.execute("RESET ALL")
            await conn.execute("SET app.workspace = 'B'")
            await conn.execute("SELECT set_config('ragstore.workspace', 'B', false)")
            # a temporary table named like the grants table, first on the search path
            await conn.execute(f"CREATE TEMP TABLE {GRANTS_TABLE} (role_name text, workspace text)")
            await conn.execute(f"INSERT INTO pg_temp.{GRANTS_TABLE} VALUES (current_user, 'B')")
            await conn.execute("SET search_path = pg_temp, public")
            assert {r[0] for r in await conn.fetch("SELECT DISTINCT workspace FROM public.lightrag_doc_full")} == {"A"}
            outcome = await refused(conn, "INSERT INTO public.lightrag_doc_full (workspace, id) VALUES ('B', 'x')")
            assert outcome.startswith("refused")
            # with row security off, a statement that would be filtered fails instead of seeing everything
            await conn.execute("SET row_security = off")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM public.lightrag_doc_full")
            await conn.execute("SET row_security = on")
            # COPY TO goes through the policy as well
            rows: list[bytes] = []

            async def sink(chunk: bytes) -> None:
                rows.append(chunk)

            await conn.copy_from_query("SELECT workspace FROM public.lightrag_doc_status", output=sink)
            assert b"".join(rows) == b"A\n"
        finally:
            await conn.close()

    asyncio.run(go())
    assert asyncio.run(other_rows(owner)) == before


def test_a_transaction_that_mixes_own_and_foreign_writes_leaves_nothing(granted):
    owner, tenant, before = granted

    async def go() -> None:
        conn = await connect(tenant)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO lightrag_doc_full (workspace, id) VALUES ('A', 'mine')")
                    await conn.execute("INSERT INTO lightrag_doc_full (workspace, id) VALUES ('B', 'theirs')")
            assert await conn.fetchval("SELECT count(*) FROM lightrag_doc_full WHERE id = 'mine'") == 0
        finally:
            await conn.close()

    asyncio.run(go())
    assert asyncio.run(other_rows(owner)) == before
    assert json.dumps(before)  # B's rows were there to be protected
    assert all(rows for rows in before.values())
