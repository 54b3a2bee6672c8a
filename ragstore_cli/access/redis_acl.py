"""Redis workspace grants: one ACL user per tenant, its key patterns, commands and database.

Key patterns cover exactly the granted workspaces' LightRAG keys (`<ws>_<ns>:*` plus the doc-status
sidecar, docs/lightrag-formats.md), built from glob-escaped prefixes: workspace `a` never matches `a_b`'s keys.
Commands are the ones LightRAG 1.5.7's Redis storages send. Redis ACLs do not filter SCAN and KEYS
(they take no key argument), so a user can list every key name of each database it can reach:
the database of its REDIS_URI (pinned with `+select|<db>`) and database 0, where every connection
starts. A grant therefore refuses, unless `--shared-db`, when one of those databases holds keys
that are not the user's. The user's grant is also kept, readable by that user only, in
`__ragstore_access:<user>`, so `check-connections` can say to which workspaces it is held.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import NoPermissionError, RedisError, ResponseError

from ragstore_cli.backends.redis import keys as K
from ragstore_cli.config import Settings
from ragstore_cli.connect.redis import create_client, explain
from ragstore_cli.errors import UsageError
from ragstore_cli.workspace import redis_glob_escape

#: Every command LightRAG 1.5.7's RedisKVStorage / RedisDocStatusStorage send (measured with
#: INFO commandstats over insert, every query mode and delete; see tests/security). CONFIG GET,
#: used only to warn about eviction, is left out: LightRAG logs that it cannot read the policy.
TENANT_COMMANDS = ("ping", "get", "set", "del", "exists", "keys", "scan", "watch", "unwatch", "multi", "exec",
                   "discard", "rename", "sadd", "srem", "scard", "sscan", "zadd", "zrem", "zcard", "zrangebylex")
INFO_PREFIX = "__ragstore_access:"
SCAN_COUNT = 1000
FOREIGN_SAMPLE = 3


def prefix_patterns(key_prefix: str, *, sidecar: bool) -> list[str]:
    """Glob patterns (escaped) for one LightRAG key prefix, and its doc-status sidecar when asked."""
    patterns = [K.record_pattern(key_prefix)]
    if sidecar:
        patterns += K.sidecar_patterns(key_prefix)
    return patterns


def workspace_patterns(workspace: str) -> list[str]:
    """The key patterns of one workspace: each LightRAG Redis namespace, nothing more."""
    out: list[str] = []
    for namespace in K.NAMESPACES:
        out += prefix_patterns(K.prefix(workspace, namespace), sidecar=namespace == "doc_status")
    return out


def info_key(user: str) -> str:
    return INFO_PREFIX + user


def rules(user: str, workspaces: list[str], db: int, password_hashes: list[str]) -> list[str]:
    """The complete `ACL SETUSER` rule list (starting with `reset`, so the result never depends on the past)."""
    keys = [f"~{p}" for ws in sorted(set(workspaces)) for p in workspace_patterns(ws)]
    return ["reset", "on", *(f"#{h}" for h in password_hashes), *keys, f"%R~{redis_glob_escape(info_key(user))}",
            "resetchannels", "-@all", *(f"+{c}" for c in TENANT_COMMANDS), f"+select|{db}"]


def _unescape(text: str) -> str:
    out, skip = [], False
    for ch in text:
        if ch == "\\" and not skip:
            skip = True
            continue
        out.append(ch)
        skip = False
    return "".join(out)


def parse_managed(user: str, acl: dict[str, Any]) -> dict[str, Any] | None:
    """{"workspaces", "db", "password_hashes"} when the ACL user is exactly what `rules` makes, else None."""
    keys = set(acl.get("keys") or [])
    commands = list(acl.get("commands") or [])
    selects = [c for c in commands if c.startswith("+select|")]
    if len(selects) != 1 or acl.get("selectors") or acl.get("channels") or acl.get("categories") != ["-@all"]:
        return None
    try:
        db = int(selects[0].split("|", 1)[1])
    except ValueError:
        return None
    marker = "full_docs:*"
    workspaces = []
    for pattern in keys:
        if pattern.startswith("~") and pattern.endswith(marker):
            head = pattern[1:-len(marker)]
            if head == "":
                workspaces.append("")
            elif head.endswith("_"):
                workspaces.append(_unescape(head[:-1]))
    try:
        expected = set(rules(user, workspaces, db, [])[2:])
    except UsageError:
        return None
    if keys | set(commands) | {"resetchannels", "-@all"} != expected:
        return None
    return {"workspaces": sorted(workspaces), "db": db, "password_hashes": list(acl.get("passwords") or [])}


def database_of(settings: Settings) -> int:
    client = create_client(settings)
    return int(client.connection_pool.connection_kwargs.get("db") or 0)


def _settings_for_db(settings: Settings, db: int) -> Settings:
    parts = urlsplit(settings.redis.uri)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("db="))
    return settings.with_overrides({"REDIS_URI": urlunsplit((parts.scheme, parts.netloc, f"/{db}", query, ""))})


async def _foreign_keys(settings: Settings, db: int, own: list[str], exact: bytes) -> tuple[int, list[str]]:
    """(count, sample) of keys in database `db` that are neither `exact` nor matched by an `own` pattern."""
    prefixes = tuple(_unescape(p[:-1]).encode("utf-8") for p in own)  # every own pattern is `<escaped literal>*`
    client = create_client(_settings_for_db(settings, db))
    count, sample = 0, []
    try:
        cursor = 0
        while True:
            cursor, page = await client.scan(cursor, count=SCAN_COUNT)
            for key in page:
                if key != exact and not key.startswith(prefixes):
                    count += 1
                    if len(sample) < FOREIGN_SAMPLE:
                        sample.append(key.decode("utf-8", "replace")[:80])
            if int(cursor) == 0:
                return count, sample
    finally:
        await client.aclose()


async def _has_keys(client: Any, patterns: list[str]) -> bool:
    for pattern in patterns:
        async for _ in K.scan(client, pattern, SCAN_COUNT):
            return True
    return False


async def _admin_checks(client: Any, *, closed_default: bool = True) -> str:
    """The admin's user name; UsageError when ACLs are unusable or (for a grant) the default user is open."""
    try:
        me = await client.acl_whoami()
        default = await client.acl_getuser("default")
    except NoPermissionError:
        raise UsageError("redis: the configured user may not manage ACL users (needs +@admin)") from None
    except ResponseError as exc:
        raise UsageError(f"redis: the server does not support ACL users ({str(exc).splitlines()[0]})") from None
    me = me.decode() if isinstance(me, bytes) else me
    if closed_default and default_user_open(default):
        raise UsageError("redis: the default user accepts connections without a password, so any client can bypass "
                         "a tenant's ACL", hint="ACL SETUSER default off (after creating an admin user)")
    return me


def default_user_open(acl: dict[str, Any] | None) -> bool:
    return bool(acl) and bool(acl.get("enabled")) and "nopass" in (acl.get("flags") or [])


async def plan_grant(settings: Settings, role: str, workspace: str, *, adopt: bool, allow_new: bool,
                     shared_db: bool, rotate: bool) -> dict[str, Any]:
    """What a Redis grant would do, or UsageError (nothing changed)."""
    db = database_of(settings)
    client = create_client(settings)
    try:
        try:
            me = await _admin_checks(client)
            if role == me:
                raise UsageError(f"redis: {role} is the user ragstore is connected as")
            current = await client.acl_getuser(role)
            managed = parse_managed(role, current) if current else None
            if current and managed is None and not adopt:
                raise UsageError(f"redis: ACL user {role} already exists and was not made by ragstore; pass --adopt to use it")
            if managed and managed["db"] != db:
                raise UsageError(f"redis: user {role} is held to database {managed['db']}; grant it from a REDIS_URI "
                                 f"ending in /{managed['db']} or use another role")
            workspaces = sorted({*(managed["workspaces"] if managed else []), workspace})
            already = bool(managed) and workspace in managed["workspaces"]
            if not allow_new and not already and not await _has_keys(client, workspace_patterns(workspace)):
                raise UsageError(f"redis: workspace {workspace or '(default)'!r} has no keys in database {db}; pass --new "
                                 "to grant a workspace that is not populated yet")
        except RedisError as exc:
            raise explain(exc, settings) from None
    finally:
        await client.aclose()
    own = [p for ws in workspaces for p in workspace_patterns(ws)]
    exposed = {}
    for reachable in sorted({0, db}):
        count, sample = await _foreign_keys(settings, reachable, own, info_key(role).encode())
        if count:
            exposed[reachable] = (count, sample)
    if exposed and not shared_db:
        where = "; ".join(f"database {d}: {n} keys such as {', '.join(s)}" for d, (n, s) in exposed.items())
        raise UsageError(f"redis: {where} are not {role}'s; SCAN and KEYS would list their names to it (Redis ACLs do "
                         "not filter them); pass --shared-db to grant anyway",
                         hint="give each tenant its own Redis database (REDIS_URI …/<n>) and keep database 0 free")
    return {"backend": "redis", "role": role, "workspace": workspace, "db": db, "workspaces": workspaces,
            "already_granted": already, "creates_login": current is None, "adopts": bool(current) and managed is None,
            "sets_password": current is None or managed is None or rotate,
            "password_hashes": [] if managed is None or rotate else managed["password_hashes"],
            "names_visible_in": sorted(exposed)}


async def _persist(client: Any) -> bool:
    """ACL SAVE when the server has an aclfile; False when the rules live in memory only."""
    try:
        aclfile = (await client.config_get("aclfile")).get("aclfile")
        if aclfile:
            await client.execute_command("ACL", "SAVE")
            return True
    except RedisError:
        pass
    return False


async def _set_user(client: Any, role: str, workspaces: list[str], db: int, hashes: list[str]) -> bool:
    await client.execute_command("ACL", "SETUSER", role, *rules(role, workspaces, db, hashes))
    await client.set(info_key(role), json.dumps({"user": role, "workspaces": workspaces, "db": db}))
    return await _persist(client)


async def apply_grant(settings: Settings, plan: dict[str, Any], password_hash: str | None) -> dict[str, Any]:
    hashes = [password_hash] if password_hash else plan["password_hashes"]
    client = create_client(settings)
    try:
        persisted = await _set_user(client, plan["role"], plan["workspaces"], plan["db"], hashes)
    except RedisError as exc:
        raise explain(exc, settings) from None
    finally:
        await client.aclose()
    return {"backend": "redis", "role": plan["role"], "workspace": plan["workspace"], "db": plan["db"],
            "login_created": plan["creates_login"], "password_set": password_hash is not None,
            "already_granted": plan["already_granted"], "acl_persisted": persisted,
            "names_visible_in": plan["names_visible_in"]}


async def plan_revoke(settings: Settings, role: str, workspace: str) -> dict[str, Any]:
    client = create_client(settings)
    try:
        await _admin_checks(client, closed_default=False)
        current = await client.acl_getuser(role)
    except RedisError as exc:
        raise explain(exc, settings) from None
    finally:
        await client.aclose()
    managed = parse_managed(role, current) if current else None
    if not managed or workspace not in managed["workspaces"]:
        raise UsageError(f"redis: user {role} has no grant on workspace {workspace or '(default)'!r}")
    if managed["db"] != database_of(settings):
        raise UsageError(f"redis: user {role} is held to database {managed['db']}; revoke from a REDIS_URI ending in "
                         f"/{managed['db']}")
    left = [w for w in managed["workspaces"] if w != workspace]
    return {"backend": "redis", "role": role, "workspace": workspace, "db": managed["db"], "remaining": left,
            "removes_login": not left, "password_hashes": managed["password_hashes"]}


async def apply_revoke(settings: Settings, plan: dict[str, Any]) -> dict[str, Any]:
    """Narrow the user's patterns; with none left, delete the user (Redis closes its connections)."""
    client = create_client(settings)
    try:
        if plan["removes_login"]:
            await client.execute_command("ACL", "DELUSER", plan["role"])
            await client.delete(info_key(plan["role"]))
            persisted = await _persist(client)
        else:
            persisted = await _set_user(client, plan["role"], plan["remaining"], plan["db"], plan["password_hashes"])
    except RedisError as exc:
        raise explain(exc, settings) from None
    finally:
        await client.aclose()
    return {"backend": "redis", "role": plan["role"], "workspace": plan["workspace"], "remaining": plan["remaining"],
            "login": "deleted" if plan["removes_login"] else "kept", "acl_persisted": persisted}


async def list_grants(settings: Settings, workspace: str | None) -> dict[str, Any]:
    client = create_client(settings)
    try:
        try:
            await _admin_checks(client, closed_default=False)
        except UsageError as exc:
            return {"grants": [], "error": str(exc)}
        rows = []
        for user in sorted(u.decode() if isinstance(u, bytes) else u for u in await client.acl_users()):
            managed = parse_managed(user, await client.acl_getuser(user) or {})
            for ws in (managed or {}).get("workspaces", []):
                if workspace is None or ws == workspace:
                    rows.append({"backend": "redis", "role": user, "workspace": ws, "db": managed["db"],
                                 "login": True})
        open_default = default_user_open(await client.acl_getuser("default"))
    except RedisError as exc:
        raise explain(exc, settings) from None
    finally:
        await client.aclose()
    return {"grants": rows, "db": database_of(settings), "default_user_open": open_default}


async def access_status(client: Any, settings: Settings) -> dict[str, Any]:
    """Whether the connected user is a ragstore tenant (and to which workspaces), from its own view."""
    user = client.connection_pool.connection_kwargs.get("username")
    if user:
        try:
            raw = await client.get(info_key(user))
        except NoPermissionError:
            raw = None
        if raw:
            info = json.loads(raw)
            return {"restricted": True, "user": user, "workspaces": info.get("workspaces", []), "db": info.get("db")}
    try:
        await client.acl_getuser("default")
    except NoPermissionError:
        return {"restricted": True, "user": user or "default", "workspaces": None,
                "reason": "the user may not read ACLs; its grants are not ragstore's"}
    except ResponseError as exc:  # a server without ACLs (Redis < 6, some Redis-compatible servers)
        return {"restricted": False, "user": user or "default", "reason": f"no ACLs: {str(exc).splitlines()[0]}"}
    return {"restricted": False, "user": user or "default", "reason": "the user may manage ACL users"}
