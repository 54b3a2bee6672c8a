"""Row-level security over LightRAG's PostgreSQL tables: which tables, the policy, and who may use them.

Every LightRAG table with a `workspace` column in the connection's current schema (the names come
from `schema.names.workspace_tables()` and the vector-table prefixes) gets row-level security and
one permissive policy, for reading (USING) and writing (WITH CHECK) alike: a row is visible and
writable when its workspace is granted to `current_user` in the grants table. That table belongs
to the owning role; tenants can read their own rows of it (its own policy) and nothing else.

Tables created later (a new embedding model's vector tables, a revision's new table) are covered
by `cover_new_tables`, which ragstore's migrator calls after it creates tables. A table created any
other way gives tenants no privilege at all until it is covered: access fails closed.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.errors import OperationFailed
from ragstore_cli.schema import names

GRANTS_TABLE = "ragstore_workspace_grants"
POLICY = "ragstore_workspace_access"
GRANTS_POLICY = "ragstore_own_grants"
TENANT_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"  # never TRUNCATE: it ignores row-level security
#: pg_advisory_xact_lock(LOCK_CLASS, LOCK_OBJECT): "RGST" and 2 = workspace grants (1 is the migrator).
LOCK_CLASS = 0x52475354
LOCK_OBJECT = 2


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def current_schema(conn) -> str:  # noqa: ANN001 - asyncpg connection
    schema = await conn.fetchval("SELECT current_schema()")
    if schema is None:
        raise OperationFailed("postgres: no schema of the search_path exists (current_schema() is NULL)")
    return schema


async def grants_table(conn) -> str | None:  # noqa: ANN001
    """The schema-qualified grants table, or None when no grant was ever made in this schema."""
    schema = await current_schema(conn)
    qualified = f"{quote_ident(schema)}.{quote_ident(GRANTS_TABLE)}"
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified)
    return qualified if exists else None


def policy_predicate(grants: str) -> str:
    """The row test of the policy: the row's workspace is granted to the role running the statement."""
    return f"workspace IN (SELECT g.workspace FROM {grants} g WHERE g.role_name = current_user)"


async def workspace_tables(conn) -> list[str]:  # noqa: ANN001
    """LightRAG's tables with a `workspace` column in the current schema, by name."""
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
             AND (c.relname = ANY($1::text[]) OR EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE starts_with(c.relname, p)))
             AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace'
                         AND a.attnum > 0 AND NOT a.attisdropped)
           ORDER BY c.relname""",
        list(names.workspace_tables()), list(names.workspace_table_prefixes()))
    return [r["relname"] for r in rows]


async def table_states(conn, tables: list[str]) -> list[dict[str, Any]]:  # noqa: ANN001
    """Per table: owner, RLS on, our policy present, other permissive policies (which would widen access)."""
    rows = await conn.fetch(
        """SELECT c.relname AS table, pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity AS rls,
                  c.relforcerowsecurity AS forced,
                  EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = $2) AS policy,
                  ARRAY(SELECT p.polname FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname <> $2
                        AND p.polpermissive ORDER BY 1) AS other_policies,
                  pg_has_role(current_user, c.relowner, 'USAGE') AS may_alter
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[]) ORDER BY c.relname""",
        tables, POLICY)
    return [dict(r) for r in rows]


async def tenant_roles(conn, grants: str | None) -> list[str]:  # noqa: ANN001
    if grants is None:
        return []
    return [r[0] for r in await conn.fetch(f"SELECT DISTINCT role_name FROM {grants} ORDER BY 1")]


async def ensure_grants_table(conn) -> str:  # noqa: ANN001
    """Create the grants table (owned by the connecting role) with its own row-level security."""
    schema = await current_schema(conn)
    qualified = f"{quote_ident(schema)}.{quote_ident(GRANTS_TABLE)}"
    await conn.execute(f"""CREATE TABLE IF NOT EXISTS {qualified} (
        role_name TEXT NOT NULL, workspace TEXT NOT NULL, role_created BOOLEAN NOT NULL,
        granted_at TIMESTAMPTZ NOT NULL DEFAULT now(), granted_by TEXT NOT NULL DEFAULT current_user,
        PRIMARY KEY (role_name, workspace))""")
    await conn.execute(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY")
    if not await conn.fetchval("SELECT 1 FROM pg_policy WHERE polrelid = $1::regclass AND polname = $2",
                               qualified, GRANTS_POLICY):
        await conn.execute(f"CREATE POLICY {GRANTS_POLICY} ON {qualified} FOR SELECT USING (role_name = current_user)")
    # Every role may evaluate the data policies' sub-select; its own policy shows each role only its rows.
    await conn.execute(f"GRANT SELECT ON {qualified} TO PUBLIC")
    return qualified


async def cover(conn, grants: str, tables: list[str]) -> list[str]:  # noqa: ANN001
    """Row-level security, the policy and tenant privileges on `tables`; returns those that changed.

    Runs in the caller's transaction: privileges are granted only together with the policy.
    """
    schema = await current_schema(conn)
    roles = await tenant_roles(conn, grants)
    changed = []
    for state in await table_states(conn, tables):
        table = f"{quote_ident(schema)}.{quote_ident(state['table'])}"
        if not state["rls"]:
            await conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if not state["policy"]:
            predicate = policy_predicate(grants)
            await conn.execute(f"CREATE POLICY {POLICY} ON {table} AS PERMISSIVE FOR ALL TO PUBLIC "
                               f"USING ({predicate}) WITH CHECK ({predicate})")
        if not state["rls"] or not state["policy"]:
            changed.append(state["table"])
        for role in roles:
            await conn.execute(f"GRANT {TENANT_PRIVILEGES} ON {table} TO {quote_ident(role)}")
    return changed


async def uncovered(conn) -> list[str]:  # noqa: ANN001
    """LightRAG tables that lack row-level security or the policy (tenants have no privilege on them)."""
    return [s["table"] for s in await table_states(conn, await workspace_tables(conn)) if not (s["rls"] and s["policy"])]


async def cover_new_tables(conn) -> list[str]:  # noqa: ANN001
    """After ragstore created tables: cover them when grants exist in this schema (else nothing to do).

    Called by `ragstore migrate upgrade` and by vector-table creation, on the creating (owning) role's
    connection; returns the tables that were newly covered.
    """
    grants = await grants_table(conn)
    if grants is None:
        return []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, LOCK_OBJECT)
        return await cover(conn, grants, await workspace_tables(conn))
