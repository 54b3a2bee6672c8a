"""The library behind `ragstore workspace grant | revoke | grants`: one async function each, returning a dict.

Every backend is planned first (read-only; any refusal raises before anything changes), then the
env file is written (0600), then PostgreSQL's changes commit (the plan and the changes share one
transaction under the grants lock), then Redis and the files. A re-run finishes what an
interrupted run left: every step is idempotent.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ragstore_cli.access import envfile, files, neo4j
from ragstore_cli.access import postgres as pg
from ragstore_cli.access import redis_acl as rd
from ragstore_cli.access.credentials import new_password, redis_password_hash, scram_verifier, validate_role
from ragstore_cli.config import Settings
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.workspace import validate_workspace

GRANTABLE = ("postgres", "redis", "files")
T = TypeVar("T")


def _configured(settings: Settings) -> list[str]:
    from ragstore_cli.backends.registry import configured_backends

    return configured_backends(settings)


def choose_backends(settings: Settings, requested: list[str] | None) -> list[str]:
    """The backends a command acts on: those asked for (each must be configured), else every configured one."""
    configured = _configured(settings)
    if not requested:
        chosen = [b for b in GRANTABLE if b in configured]
        if not chosen:
            raise UsageError("no backend ragstore can restrict (postgres, redis, files) is configured")
        return chosen
    for backend in requested:
        if backend == "neo4j":
            raise UsageError("neo4j: " + neo4j.NOT_ENFORCED)
        if backend not in GRANTABLE:
            raise UsageError(f"unknown backend {backend!r}; choose from {', '.join(GRANTABLE)}")
        if backend not in configured:
            raise UsageError(f"backend {backend} is not configured (no settings and no storage class use it)")
    return list(dict.fromkeys(requested))


async def _pg_connect(settings: Settings) -> Any:
    from ragstore_cli.connect.postgres import connect

    return await connect(settings, retries=1, command_timeout=settings.ragstore.command_timeout or None)


def _pg_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A server-side refusal (a privilege the connected role lacks, a statement timeout) as one line, exit 1."""

    @functools.wraps(fn)
    async def wrapper(settings: Settings, *args: Any, **kwargs: Any) -> T:
        try:
            return await fn(settings, *args, **kwargs)
        except asyncpg.PostgresError as exc:
            from ragstore_cli.connect.postgres import describe_target

            text = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise OperationFailed(f"postgres: {describe_target(settings)}: {text}") from None

    return wrapper


def redis_uri_for(settings: Settings, user: str, password: str) -> str:
    """The admin's REDIS_URI with the tenant's credentials instead (same server, TLS and database)."""
    parts = urlsplit(settings.redis.uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, f"{user}:{password}@{where}", parts.path, parts.query, ""))


def _env_values(settings: Settings, role: str, workspace: str, passwords: dict[str, str], existing: set[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    if "postgres" in passwords:
        values.update(POSTGRES_HOST=str(settings.postgres.host), POSTGRES_PORT=str(settings.postgres.port),
                      POSTGRES_DATABASE=str(settings.postgres.database), POSTGRES_USER=role,
                      POSTGRES_PASSWORD=passwords["postgres"])
        for name, value in (("POSTGRES_SSL_MODE", settings.postgres.ssl_mode),
                            ("POSTGRES_SSL_ROOT_CERT", settings.postgres.ssl_root_cert)):
            if value:
                values[name] = str(value)
        if settings.postgres.server_settings:
            values["POSTGRES_SERVER_SETTINGS"] = "&".join(f"{k}={v}" for k, v in settings.postgres.server_settings.items())
    if "redis" in passwords:
        values["REDIS_URI"] = redis_uri_for(settings, role, passwords["redis"])
    if values and "WORKSPACE" not in existing:
        values["WORKSPACE"] = workspace
    return values


@_pg_errors
async def grant(settings: Settings, workspace: str, role: str, *, backends: list[str] | None = None,
                adopt: bool = False, force: bool = False, allow_new: bool = False, shared_db: bool = False,
                rotate: bool = False, group: str | None = None, write_env: Path | None = None,
                dry_run: bool = False, print_cypher: bool = False) -> dict[str, Any]:
    """Give `role` the workspace on each chosen backend; passwords go to `write_env` only."""
    workspace, role = validate_workspace(workspace), validate_role(role)
    if print_cypher and not backends and not any(b in _configured(settings) for b in GRANTABLE):
        return {"workspace": workspace, "role": role, "dry_run": dry_run, "backends": [],
                "not_enforced": [{"backend": "neo4j", "reason": neo4j.NOT_ENFORCED}],
                "cypher": neo4j.enterprise_cypher(role, workspace, settings.neo4j.database)}
    chosen = choose_backends(settings, backends)
    env_path = envfile.check_writable(write_env) if write_env is not None else None
    plans: dict[str, dict[str, Any]] = {}
    conn = tx = None
    try:
        if "postgres" in chosen:
            conn = await _pg_connect(settings)
            tx = conn.transaction()
            await tx.start()
            await pg.lock(conn)
            plans["postgres"] = await pg.plan_grant(conn, role, workspace, adopt=adopt, force=force,
                                                    allow_new=allow_new, rotate=rotate)
        if "redis" in chosen:
            plans["redis"] = await rd.plan_grant(settings, role, workspace, adopt=adopt, allow_new=allow_new,
                                                 shared_db=shared_db, rotate=rotate)
        if "files" in chosen:
            plans["files"] = files.plan_grant(settings, role, workspace, group=group, allow_new=allow_new, force=force)
        issuing = [b for b in ("postgres", "redis") if b in plans and plans[b]["sets_password"]]
        if issuing and env_path is None:
            raise UsageError(f"--write-env FILE is needed: a new password for {', '.join(issuing)} is written there "
                             "and nowhere else")
        report: dict[str, Any] = {"workspace": workspace, "role": role, "dry_run": dry_run}
        if dry_run:
            report["plans"] = [_public(p) for p in plans.values()]
        else:
            passwords = {b: new_password() for b in issuing}
            if env_path is not None:
                values = _env_values(settings, role, workspace, passwords, envfile.keys_in(env_path))
                if values:
                    envfile.write(env_path, values)
                report["env_file"] = str(env_path)
                report["env_keys_written"] = sorted(values)
            results = []
            if "postgres" in plans:
                pw = passwords.get("postgres")
                results.append(await pg.apply_grant(conn, plans["postgres"], scram_verifier(pw) if pw else None))
                await tx.commit()
                tx = None
            if "redis" in plans:
                pw = passwords.get("redis")
                results.append(await rd.apply_grant(settings, plans["redis"], redis_password_hash(pw) if pw else None))
            if "files" in plans:
                results.append(files.apply_grant(plans["files"]))
            report["backends"] = results
    finally:
        if tx is not None:
            await tx.rollback()
        if conn is not None:
            await conn.close()
    _not_enforced(settings, report)
    if print_cypher:
        report["cypher"] = neo4j.enterprise_cypher(role, workspace, settings.neo4j.database)
    return report


def _public(plan: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in plan.items() if k not in ("password_hashes", "uid", "gid", "tables")}


def _not_enforced(settings: Settings, report: dict[str, Any]) -> None:
    if "neo4j" in _configured(settings):
        report["not_enforced"] = [{"backend": "neo4j", "reason": neo4j.NOT_ENFORCED}]


@_pg_errors
async def revoke(settings: Settings, workspace: str, role: str, *, backends: list[str] | None = None,
                 dry_run: bool = False) -> dict[str, Any]:
    """Take the workspace back from `role`; with no grant left on a backend, its login goes too."""
    workspace, role = validate_workspace(workspace), validate_role(role)
    chosen = choose_backends(settings, backends)
    explicit = bool(backends)
    plans: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    conn = tx = None
    try:
        for backend in chosen:
            try:
                if backend == "postgres":
                    conn = await _pg_connect(settings)
                    tx = conn.transaction()
                    await tx.start()
                    await pg.lock(conn)
                    plans[backend] = await pg.plan_revoke(conn, role, workspace)
                elif backend == "redis":
                    plans[backend] = await rd.plan_revoke(settings, role, workspace)
                else:
                    plans[backend] = files.plan_revoke(settings, role, workspace)
            except UsageError as exc:
                if explicit:
                    raise
                skipped[backend] = str(exc)
        if not plans:
            raise UsageError(f"{role} has no grant on workspace {workspace or '(default)'!r} in "
                             f"{', '.join(chosen)}")
        report: dict[str, Any] = {"workspace": workspace, "role": role, "dry_run": dry_run, "skipped": skipped}
        if dry_run:
            report["plans"] = [_public(p) for p in plans.values()]
            return report
        results = []
        if "postgres" in plans:
            results.append(await pg.apply_revoke(conn, plans["postgres"]))
            await tx.commit()
            tx = None
        if "redis" in plans:
            results.append(await rd.apply_revoke(settings, plans["redis"]))
        if "files" in plans:
            results.append(files.apply_revoke(plans["files"]))
        report["backends"] = results
        return report
    finally:
        if tx is not None:
            await tx.rollback()
        if conn is not None:
            await conn.close()


@_pg_errors
async def grants(settings: Settings, workspace: str | None = None, *,
                 backends: list[str] | None = None) -> dict[str, Any]:
    """Every grant (or one workspace's) on each configured backend, and what is not enforced."""
    if workspace is not None:
        workspace = validate_workspace(workspace)
    chosen = choose_backends(settings, backends)
    report: dict[str, Any] = {"workspace": workspace, "grants": [], "backends": {}}
    for backend in chosen:
        if backend == "postgres":
            conn = await _pg_connect(settings)
            try:
                found = await pg.list_grants(conn, workspace)
            finally:
                await conn.close()
        elif backend == "redis":
            found = await rd.list_grants(settings, workspace)
        else:
            found = files.list_grants(settings, workspace)
        report["grants"] += found.pop("grants")
        report["backends"][backend] = found
    _not_enforced(settings, report)
    return report
