"""`workspace grant | revoke | grants` on PostgreSQL: the login, the env file, row-level security, revoke.

The owner of LightRAG's tables is a non-superuser with CREATEROLE (tests/security/conftest.py), as
on a managed server; tenants are held to their workspaces by the server, whatever SQL they send.
"""

from __future__ import annotations

import asyncio
import stat

import asyncpg
import pytest

from ragstore_cli.schema.coverage import GRANTS_TABLE
from tests.security.conftest import connect, populate, read_env, tables_of, unique


def grant(cli, env, workspace, role, env_file, *extra):
    return cli("--json", "workspace", "grant", workspace, "--role", role, "--backend", "postgres",
               "--write-env", str(env_file), *extra, env=env)


def tenant_env(env: dict[str, str], env_file) -> dict[str, str]:
    values = read_env(env_file)
    return {**env, "POSTGRES_USER": values["POSTGRES_USER"], "POSTGRES_PASSWORD": values["POSTGRES_PASSWORD"]}


async def rows_by_workspace(env: dict[str, str]) -> dict[str, set[str]]:
    conn = await connect(env)
    try:
        return {t: {r[0] for r in await conn.fetch(f"SELECT DISTINCT workspace FROM {t}")}
                for t in await tables_of(conn)}
    finally:
        await conn.close()


def test_grant_writes_an_owner_only_env_file_and_is_idempotent(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "a.env"
    first = grant(cli, owner_db, "A", role, env_file)
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env(env_file)
    assert values["POSTGRES_USER"] == role and values["WORKSPACE"] == "A" and len(values["POSTGRES_PASSWORD"]) >= 40
    assert values["POSTGRES_PASSWORD"] not in first.output
    done = first.json()["backends"][0]
    assert done["login_created"] and done["password_set"] and not done["already_granted"]
    assert len(done["rls_enabled_on"]) == len(asyncio.run(rows_by_workspace(owner_db))) >= 13

    again = grant(cli, owner_db, "A", role, env_file)
    assert again.exit_code == 0, again.output
    assert again.json()["backends"][0]["already_granted"] and not again.json()["backends"][0]["password_set"]
    assert read_env(env_file) == values  # the password still works: nothing rotated
    listed = cli("--json", "workspace", "grants", "--backend", "postgres", env=owner_db).json()
    assert [(g["role"], g["workspace"], g["login"]) for g in listed["grants"]] == [(role, "A", True)]
    assert listed["backends"]["postgres"]["uncovered_tables"] == []
    assert asyncio.run(rows_by_workspace(tenant_env(owner_db, env_file))) == {
        t: {"A"} for t in asyncio.run(rows_by_workspace(owner_db))}


def test_the_env_file_keeps_other_lines_and_a_rotation_changes_the_password(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))
    role, env_file = unique("ta"), tmp_path / "lightrag.env"
    env_file.write_text("LLM_BINDING=openai\nWORKSPACE=mine\nPOSTGRES_PASSWORD=old\n")
    env_file.chmod(0o644)
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    values = read_env(env_file)
    assert values["LLM_BINDING"] == "openai" and values["WORKSPACE"] == "mine" and values["POSTGRES_PASSWORD"] != "old"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    rotated = grant(cli, owner_db, "A", role, env_file, "--rotate-password")
    assert rotated.exit_code == 0, rotated.output
    new = read_env(env_file)["POSTGRES_PASSWORD"]
    assert new != values["POSTGRES_PASSWORD"]
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(connect(owner_db, role, values["POSTGRES_PASSWORD"]))
    assert asyncio.run(rows_by_workspace(tenant_env(owner_db, env_file)))["lightrag_doc_full"] == {"A"}


def test_revoke_takes_rows_away_at_once_and_the_last_revoke_removes_the_login(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db, ("A", "B", "C")))
    role, env_file = unique("ta"), tmp_path / "a.env"
    assert grant(cli, owner_db, "A", role, env_file).exit_code == 0
    assert grant(cli, owner_db, "C", role, env_file).exit_code == 0
    tenant = tenant_env(owner_db, env_file)

    async def scenario() -> None:
        session = await connect(tenant)
        assert {r[0] for r in await session.fetch("SELECT workspace FROM lightrag_doc_full")} == {"A", "C"}
        out = await asyncio.to_thread(cli, "--json", "workspace", "revoke", "C", "--role", role, "--backend", "postgres",
                                      env=owner_db)
        assert out.exit_code == 0, out.output
        assert out.json()["backends"][0]["login"] == "kept"
        # the open session sees the change on its next statement: the policy reads the grants table
        assert {r[0] for r in await session.fetch("SELECT workspace FROM lightrag_doc_full")} == {"A"}
        last = await asyncio.to_thread(cli, "--json", "workspace", "revoke", "A", "--role", role, "--backend", "postgres",
                                       env=owner_db)
        assert last.exit_code == 0, last.output
        assert last.json()["backends"][0]["login"] == "dropped"
        assert last.json()["backends"][0]["sessions"].startswith("1 ")
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await connect(tenant)
        try:  # an open session left behind sees nothing at all
            assert await session.fetch("SELECT workspace FROM lightrag_doc_full") == []
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
            pass  # or it was ended
        finally:
            session.terminate()
        conn = await connect(owner_db)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 0
            assert await conn.fetchval(f"SELECT count(*) FROM {GRANTS_TABLE}") == 0
        finally:
            await conn.close()

    asyncio.run(scenario())
    again = cli("workspace", "revoke", "A", "--role", role, "--backend", "postgres", env=owner_db)
    assert again.exit_code == 2 and "has no grant" in again.stderr and "Traceback" not in again.output


def test_other_roles_with_privileges_are_named_and_refused_without_force(cli, owner_db, tmp_path, pg_server):
    counts = asyncio.run(populate(owner_db))
    reader = unique("reader")
    pg_server.psql(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw'; "
                   f"GRANT SELECT ON lightrag_doc_full TO {reader}", database=owner_db["POSTGRES_DATABASE"])
    role, env_file = unique("ta"), tmp_path / "a.env"
    refused = grant(cli, owner_db, "A", role, env_file)
    assert refused.exit_code == 2 and reader in refused.stderr and "--force" in refused.stderr
    assert not env_file.exists()

    async def untouched() -> None:
        conn = await connect(owner_db)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 0
            assert await conn.fetchval("SELECT to_regclass($1) IS NULL", GRANTS_TABLE)
            assert not await conn.fetchval("SELECT bool_or(relrowsecurity) FROM pg_class WHERE relname LIKE 'lightrag%'")
        finally:
            await conn.close()
        other = await connect(owner_db, reader, "reader-pw")
        try:
            assert await other.fetchval("SELECT count(*) FROM lightrag_doc_full") == sum(counts["lightrag_doc_full"].values())
        finally:
            await other.close()

    asyncio.run(untouched())
    forced = grant(cli, owner_db, "A", role, env_file, "--force")
    assert forced.exit_code == 0, forced.output

    async def reader_sees_nothing() -> None:
        other = await connect(owner_db, reader, "reader-pw")
        try:
            assert await other.fetchval("SELECT count(*) FROM lightrag_doc_full") == 0
        finally:
            await other.close()

    asyncio.run(reader_sees_nothing())


def test_a_schema_everyone_may_create_in_is_refused_without_force(cli, owner_db, tmp_path, pg_server):
    asyncio.run(populate(owner_db))
    pg_server.psql("GRANT CREATE ON SCHEMA public TO PUBLIC", database=owner_db["POSTGRES_DATABASE"])
    refused = cli("workspace", "grant", "A", "--role", unique("ta"), "--write-env", str(tmp_path / "a.env"), env=owner_db)
    assert refused.exit_code == 2 and "PUBLIC has CREATE" in refused.stderr
    assert "hint: REVOKE CREATE ON SCHEMA public FROM PUBLIC" in refused.stderr


def test_a_policy_that_would_widen_access_is_refused(cli, owner_db, tmp_path):
    asyncio.run(populate(owner_db))

    async def widen() -> None:
        conn = await connect(owner_db)
        try:
            await conn.execute("CREATE POLICY everyone ON lightrag_doc_chunks USING (true)")
        finally:
            await conn.close()

    asyncio.run(widen())
    refused = grant(cli, owner_db, "A", unique("ta"), tmp_path / "a.env")
    assert refused.exit_code == 2 and "lightrag_doc_chunks (everyone)" in refused.stderr


def test_adopt_replaces_the_password_and_revoke_disables_but_keeps_the_role(cli, owner_db, tmp_path, pg_server):
    asyncio.run(populate(owner_db))
    legacy, env_file = unique("legacy"), tmp_path / "a.env"

    async def make_legacy() -> None:  # made by the owner, who therefore may alter it
        conn = await connect(owner_db)
        try:
            await conn.execute(f"CREATE ROLE {legacy} LOGIN PASSWORD 'legacy-pw'")
        finally:
            await conn.close()

    asyncio.run(make_legacy())
    refused = grant(cli, owner_db, "A", legacy, env_file)
    assert refused.exit_code == 2 and "--adopt" in refused.stderr and not env_file.exists()
    adopted = grant(cli, owner_db, "A", legacy, env_file, "--adopt")
    assert adopted.exit_code == 0, adopted.output
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(connect(owner_db, legacy, "legacy-pw"))
    assert asyncio.run(rows_by_workspace(tenant_env(owner_db, env_file)))["lightrag_llm_cache"] == {"A"}
    out = cli("--json", "workspace", "revoke", "A", "--role", legacy, "--backend", "postgres", env=owner_db)
    assert out.exit_code == 0 and out.json()["backends"][0]["login"].startswith("disabled")
    assert pg_server.psql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{legacy}'").strip() == "f"


@pytest.mark.parametrize("attribute", ["BYPASSRLS", "SUPERUSER", "REPLICATION"])
def test_adopting_a_role_that_can_step_around_rls_is_refused(cli, owner_db, tmp_path, pg_server, attribute):
    asyncio.run(populate(owner_db))
    strong = unique("strong")
    pg_server.psql(f"CREATE ROLE {strong} LOGIN {attribute}")
    refused = grant(cli, owner_db, "A", strong, tmp_path / "a.env", "--adopt")
    assert refused.exit_code == 2 and attribute in refused.stderr


def test_adopting_the_table_owner_is_refused(cli, owner_db, tmp_path, pg_server):
    asyncio.run(populate(owner_db))
    member = unique("member")
    pg_server.psql(f"CREATE ROLE {member} LOGIN; GRANT {owner_db['POSTGRES_USER']} TO {member}")
    refused = grant(cli, owner_db, "A", member, tmp_path / "a.env", "--adopt")
    assert refused.exit_code == 2 and "member of table owner" in refused.stderr


def test_adopting_a_role_the_owner_may_not_alter_is_refused_in_the_preflight(cli, owner_db, tmp_path, pg_server):
    asyncio.run(populate(owner_db))
    foreign = unique("foreign")
    pg_server.psql(f"CREATE ROLE {foreign} LOGIN PASSWORD 'foreign-pw'")
    refused = grant(cli, owner_db, "A", foreign, tmp_path / "a.env", "--adopt")
    assert refused.exit_code == 2 and "ADMIN OPTION" in refused.stderr and not (tmp_path / "a.env").exists()


def test_concurrent_first_grants_serialise_and_both_hold(owner_db, tmp_path):
    """Both grants enable RLS on the same tables at once: the advisory lock makes one wait for the other."""
    from ragstore_cli.access import api
    from ragstore_cli.config import load_settings

    asyncio.run(populate(owner_db, ("A", "B")))
    settings = load_settings(environ=owner_db)
    roles = [unique("ta"), unique("tb")]

    async def both() -> list:
        return await asyncio.gather(*(api.grant(settings, ws, role, backends=["postgres"], write_env=tmp_path / f"{ws}.env")
                                      for ws, role in zip("AB", roles)))

    reports = asyncio.run(both())
    enabled = [len(r["backends"][0]["rls_enabled_on"]) for r in reports]
    assert sorted(enabled)[0] == 0 and sorted(enabled)[1] >= 13  # exactly one of them enabled it
    for ws, role in zip("AB", roles):
        tenant = tenant_env(owner_db, tmp_path / f"{ws}.env")
        assert all(seen == {ws} for seen in asyncio.run(rows_by_workspace(tenant)).values())
