"""PostgreSQL workspace grants: tenant logins, their grant rows, and the preflight that guards them.

`plan_grant` / `plan_revoke` only read the catalog and raise UsageError for anything that cannot
be done; `apply_grant` / `apply_revoke` then change it. The caller runs both in one transaction
under the grants advisory lock, so a refused command changes nothing and two grants never interleave.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ragstore_cli.schema import coverage
from ragstore_cli.schema.coverage import quote_ident
from ragstore_cli.errors import UsageError
from ragstore_cli.workspace import pg_workspace

#: Role attributes that would let a tenant step around row-level security or read everything.
_DANGEROUS = {"rolsuper": "SUPERUSER", "rolbypassrls": "BYPASSRLS", "rolreplication": "REPLICATION",
              "rolcreaterole": "CREATEROLE"}


async def lock(conn) -> None:  # noqa: ANN001 - asyncpg connection inside a transaction
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", coverage.LOCK_CLASS, coverage.LOCK_OBJECT)


async def _role(conn, name: str) -> dict[str, Any] | None:  # noqa: ANN001
    row = await conn.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", name)
    return dict(row) if row else None


async def _grant_rows(conn, grants: str | None, role: str) -> list[dict[str, Any]]:  # noqa: ANN001
    if grants is None:
        return []
    return [dict(r) for r in await conn.fetch(f"SELECT * FROM {grants} WHERE role_name = $1 ORDER BY workspace", role)]


async def workspace_exists(conn, tables: list[str], workspace: str) -> bool:  # noqa: ANN001
    schema = quote_ident(await coverage.current_schema(conn))
    for table in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {schema}.{quote_ident(table)} WHERE workspace = $1)",
                               workspace):
            return True
    return False


async def foreign_access(conn, tables: list[str], tenants: list[str]) -> list[str]:  # noqa: ANN001
    """Non-owner roles (and PUBLIC) that read or write `tables` today and would lose that under RLS."""
    rows = await conn.fetch(
        """SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END AS who
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
           WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])
             AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') AND a.grantee <> c.relowner
             AND (a.grantee = 0 OR NOT (r.rolsuper OR r.rolbypassrls OR pg_has_role(a.grantee, c.relowner, 'USAGE')))
             AND (r.rolname IS NULL OR NOT r.rolname = ANY($2::text[]))
           UNION
           SELECT r.rolname FROM pg_roles r
           WHERE NOT (r.rolsuper OR r.rolbypassrls) AND r.rolname NOT LIKE 'pg\\_%' AND NOT r.rolname = ANY($2::text[])
             AND (pg_has_role(r.oid, 'pg_read_all_data', 'USAGE') OR pg_has_role(r.oid, 'pg_write_all_data', 'USAGE'))
           ORDER BY 1""", tables, tenants)
    return [r["who"] for r in rows]


async def _admin_problems(conn, states: list[dict[str, Any]]) -> list[str]:  # noqa: ANN001
    me = await conn.fetchrow("SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
    problems = []
    if not (me["rolsuper"] or me["rolcreaterole"]):
        problems.append(f"role {me['rolname']} may not create roles (needs CREATEROLE or SUPERUSER)")
    not_owned = sorted({s["owner"] for s in states if not s["may_alter"]})
    if not_owned and not me["rolsuper"]:
        problems.append(f"role {me['rolname']} does not own LightRAG's tables (owned by {', '.join(not_owned)})")
    return problems


async def may_alter_role(conn, role: str) -> bool:  # noqa: ANN001
    """Whether the connected role may change `role`'s password and login (ALTER ROLE)."""
    return bool(await conn.fetchval(
        """SELECT me.rolsuper OR (me.rolcreaterole AND CASE WHEN current_setting('server_version_num')::int >= 160000
                 THEN pg_has_role(current_user, $1, 'MEMBER WITH ADMIN OPTION') ELSE true END)
           FROM pg_roles me WHERE me.rolname = current_user""", role))


async def public_may_create(conn) -> bool:  # noqa: ANN001
    """True when every role may create objects in the schema (PostgreSQL < 15's default for `public`)."""
    return bool(await conn.fetchval("SELECT has_schema_privilege('public', current_schema(), 'CREATE')"))


async def _check_restrictable(conn, existing: dict[str, Any], tables: list[str]) -> None:  # noqa: ANN001
    """UsageError when an existing role could step around row-level security or cannot be changed by us."""
    role = existing["rolname"]
    bad = [flag for attr, flag in _DANGEROUS.items() if existing[attr]]
    owner_member = await conn.fetch(
        """SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relname = ANY($2::text[])
             AND pg_has_role($1, c.relowner, 'MEMBER')""", role, tables)
    privileged = await conn.fetch(
        """SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
           JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1 AND (b.rolsuper OR b.rolbypassrls)""", role)
    bad += [f"member of table owner {r['owner']}" for r in owner_member]
    bad += [f"member of privileged role {r['rolname']}" for r in privileged]
    if bad:
        raise UsageError(f"postgres: role {role} cannot be restricted: {', '.join(bad)}")
    if not await may_alter_role(conn, role):
        raise UsageError(f"postgres: the connected role may not change role {role} (PostgreSQL 16+ needs ADMIN "
                         "OPTION on it, which its creator has)")


async def plan_grant(conn, role: str, workspace: str, *, adopt: bool, force: bool, allow_new: bool,
                     rotate: bool) -> dict[str, Any]:  # noqa: ANN001
    """What a grant would do, or UsageError naming the first reason it cannot (nothing is changed)."""
    ws = pg_workspace(workspace)
    tables = await coverage.workspace_tables(conn)
    if not tables:
        raise UsageError("postgres: no LightRAG tables in this schema; run `ragstore migrate upgrade head` first")
    states = await coverage.table_states(conn, tables)
    problems = await _admin_problems(conn, states)
    if problems:
        raise UsageError("postgres: " + "; ".join(problems))
    widened = [f"{s['table']} ({', '.join(s['other_policies'])})" for s in states if s["other_policies"]]
    if widened:
        raise UsageError("postgres: other permissive policies would widen what a tenant sees: " + "; ".join(widened),
                         hint="drop them or make them AS RESTRICTIVE")
    if await public_may_create(conn) and not force:
        raise UsageError("postgres: every role may create objects in this schema (PUBLIC has CREATE), so a tenant "
                         "could plant functions other sessions call; pass --force to grant anyway",
                         hint="REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    grants = await coverage.grants_table(conn)
    existing = await _role(conn, role)
    rows = await _grant_rows(conn, grants, role)
    managed = bool(rows)
    if existing is not None and not managed and not adopt:
        raise UsageError(f"postgres: role {role} already exists and is not managed by ragstore; pass --adopt to use it")
    if existing is not None:
        await _check_restrictable(conn, existing, tables)
    already = any(r["workspace"] == ws for r in rows)
    if not allow_new and not already and not await workspace_exists(conn, tables, ws):
        raise UsageError(f"postgres: workspace {workspace or '(default)'!r} holds no rows; pass --new to grant a "
                         "workspace that is not populated yet")
    newly = [s["table"] for s in states if not s["rls"]]
    tenants = await coverage.tenant_roles(conn, grants)
    foreign = await foreign_access(conn, newly, [*tenants, role]) if newly else []
    if foreign and not force:
        raise UsageError(f"postgres: enabling row-level security would hide every LightRAG row from {', '.join(foreign)} "
                         "(non-owner roles with privileges on the tables); pass --force to enable it anyway",
                         hint="see docs/access.md: give such roles BYPASSRLS, grants of their own, or ownership")
    return {"backend": "postgres", "role": role, "workspace": ws, "already_granted": already,
            "creates_login": existing is None, "adopts": existing is not None and not managed,
            "sets_password": existing is None or not managed or rotate,
            "role_created": rows[0]["role_created"] if rows else existing is None,
            "tables": tables, "enables_rls_on": newly, "loses_access": foreign}


async def apply_grant(conn, plan: dict[str, Any], verifier: str | None) -> dict[str, Any]:  # noqa: ANN001
    """Carry out `plan` (in the caller's transaction): login, grant row, schema/database privileges, RLS."""
    role = quote_ident(plan["role"])
    if plan["creates_login"]:
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                           f"NOBYPASSRLS PASSWORD '{verifier}'")
    elif verifier is not None:
        await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD '{verifier}'")
    grants = await coverage.ensure_grants_table(conn)
    await conn.execute(f"INSERT INTO {grants} (role_name, workspace, role_created) VALUES ($1, $2, $3) "
                       "ON CONFLICT (role_name, workspace) DO NOTHING", plan["role"], plan["workspace"], plan["role_created"])
    schema = quote_ident(await coverage.current_schema(conn))
    await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    if not await conn.fetchval("SELECT has_database_privilege($1, current_database(), 'CONNECT')", plan["role"]):
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {role}")
    covered = await coverage.cover(conn, grants, plan["tables"])
    return {"backend": "postgres", "role": plan["role"], "workspace": plan["workspace"],
            "login_created": plan["creates_login"], "password_set": verifier is not None,
            "already_granted": plan["already_granted"], "rls_enabled_on": covered}


async def plan_revoke(conn, role: str, workspace: str) -> dict[str, Any]:  # noqa: ANN001
    ws = pg_workspace(workspace)
    grants = await coverage.grants_table(conn)
    rows = await _grant_rows(conn, grants, role)
    if not any(r["workspace"] == ws for r in rows):
        raise UsageError(f"postgres: role {role} has no grant on workspace {workspace or '(default)'!r}")
    left = [r["workspace"] for r in rows if r["workspace"] != ws]
    return {"backend": "postgres", "role": role, "workspace": ws, "remaining": left,
            "removes_login": not left, "role_created": rows[0]["role_created"]}


async def apply_revoke(conn, plan: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    """Delete the grant row; with no grant left, take every privilege back and remove the login."""
    grants = await coverage.grants_table(conn)
    role = quote_ident(plan["role"])
    await conn.execute(f"DELETE FROM {grants} WHERE role_name = $1 AND workspace = $2", plan["role"], plan["workspace"])
    result: dict[str, Any] = {"backend": "postgres", "role": plan["role"], "workspace": plan["workspace"],
                              "remaining": plan["remaining"], "login": "kept"}
    if not plan["removes_login"]:
        return result
    if await _role(conn, plan["role"]) is None:  # dropped by hand meanwhile: only the grant row was left
        result["login"] = "already gone"
        return result
    schema = quote_ident(await coverage.current_schema(conn))
    for table in await coverage.workspace_tables(conn):
        await conn.execute(f"REVOKE ALL ON {schema}.{quote_ident(table)} FROM {role}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {role}")
    await conn.execute(f"REVOKE CONNECT ON DATABASE {quote_ident(await conn.fetchval('SELECT current_database()'))} FROM {role}")
    result["sessions"] = await _end_sessions(conn, plan["role"])
    if plan["role_created"]:
        try:
            async with conn.transaction():
                await conn.execute(f"DROP ROLE {role}")
            result["login"] = "dropped"
        except asyncpg.DependentObjectsStillExistError:  # privileges in another database keep the role alive
            await conn.execute(f"ALTER ROLE {role} NOLOGIN PASSWORD NULL")
            result["login"] = "disabled (the role still has privileges in another database)"
    else:
        await conn.execute(f"ALTER ROLE {role} NOLOGIN PASSWORD NULL")
        result["login"] = "disabled (adopted role kept)"
    return result


async def _end_sessions(conn, role: str) -> str:  # noqa: ANN001
    """End the role's open sessions (they would see no rows anyway); say so when not permitted."""
    try:
        async with conn.transaction():
            ended = await conn.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE usename = $1 AND pid <> pg_backend_pid()", role)
        return f"{ended} ended"
    except asyncpg.InsufficientPrivilegeError:
        left = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role)
        return f"{left} left open (ending them needs pg_signal_backend); they see no rows"


async def list_grants(conn, workspace: str | None) -> dict[str, Any]:  # noqa: ANN001
    """Grant rows (optionally one workspace's), with each login's state, and what is not covered."""
    grants = await coverage.grants_table(conn)
    rows = []
    if grants is not None:
        query = (f"SELECT g.role_name, g.workspace, g.role_created, g.granted_at, g.granted_by, r.rolcanlogin "
                 f"FROM {grants} g LEFT JOIN pg_roles r ON r.rolname = g.role_name")
        args: list[Any] = []
        if workspace is not None:
            query += " WHERE g.workspace = $1"
            args.append(pg_workspace(workspace))
        rows = [{"backend": "postgres", "role": r["role_name"], "workspace": r["workspace"],
                 "login": bool(r["rolcanlogin"]), "created_by_ragstore": r["role_created"],
                 "granted_at": r["granted_at"], "granted_by": r["granted_by"]}
                for r in await conn.fetch(query + " ORDER BY g.workspace, g.role_name", *args)]
    tables = await coverage.workspace_tables(conn)
    states = await coverage.table_states(conn, tables)
    return {"grants": rows, "enabled": grants is not None,
            "covered_tables": [s["table"] for s in states if s["rls"] and s["policy"]],
            "uncovered_tables": [s["table"] for s in states if not (s["rls"] and s["policy"])] if grants else [],
            "widening_policies": {s["table"]: s["other_policies"] for s in states if s["other_policies"]}}


async def access_status(conn) -> dict[str, Any]:  # noqa: ANN001
    """Whether the connected role is held to some workspaces by row-level security, and to which."""
    me = await conn.fetchrow("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    if me["rolsuper"] or me["rolbypassrls"]:
        return {"restricted": False, "reason": "the role bypasses row-level security"}
    tables = await coverage.workspace_tables(conn)
    states = await coverage.table_states(conn, tables)
    if any(s["may_alter"] for s in states):
        return {"restricted": False, "reason": "the role owns LightRAG's tables"}
    if not any(s["rls"] for s in states):
        return {"restricted": False, "reason": "no row-level security on LightRAG's tables"}
    grants = await coverage.grants_table(conn)
    workspaces = [r[0] for r in await conn.fetch(f"SELECT workspace FROM {grants} ORDER BY 1")] if grants else []
    return {"restricted": True, "workspaces": workspaces}
