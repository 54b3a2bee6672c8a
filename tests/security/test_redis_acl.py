"""`workspace grant | revoke | grants` on Redis: ACL users, exact key patterns, the database rule.

Runs on a Redis of its own whose default user is off (tests/security/conftest.py). A tenant's
commands on anything outside its workspaces' keys are refused by the server.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from ragstore_cli.access import redis_acl
from ragstore_cli.backends.redis import keys as K
from tests.security.conftest import REDIS_ADMIN_PASSWORD, read_env, unique

NAMESPACES = K.NAMESPACES


def keys_of(workspace: str) -> dict[str, str]:
    """One key per LightRAG namespace of `workspace`, plus its doc-status sidecar keys."""
    out = {f"{K.prefix(workspace, ns)}:doc-1": json.dumps({"ws": workspace, "ns": ns}) for ns in NAMESPACES}
    out[f"{K.prefix(workspace, 'doc_status')}__sched:basename:x.txt"] = "doc-1"
    return out


async def fill(server, db: int, *workspaces: str) -> None:
    client = server.client(db)
    try:
        for ws in workspaces:
            await client.mset(keys_of(ws))
    finally:
        await client.aclose()


async def dump(server, db: int) -> dict[bytes, bytes]:
    client = server.client(db)
    try:
        names = await client.keys("*")
        return {k: await client.dump(k) for k in sorted(names)}
    finally:
        await client.aclose()


def grant(cli, server, db, workspace, role, env_file, *extra):
    result = cli("--json", "workspace", "grant", workspace, "--role", role, "--backend", "redis", "--write-env",
                 str(env_file), *extra, env={"REDIS_URI": server.admin_uri(db)})
    assert REDIS_ADMIN_PASSWORD not in result.output
    if env_file.exists():
        assert read_env(env_file)["REDIS_URI"].split("@")[0].split(":")[-1] not in result.output  # the tenant's
    return result


def tenant(env_file) -> aioredis.Redis:
    return aioredis.from_url(read_env(env_file)["REDIS_URI"])


def test_patterns_are_escaped_literal_prefixes():
    assert redis_acl.prefix_patterns("we*rd?[x]_full_docs", sidecar=False) == ["we\\*rd\\?\\[x\\]_full_docs:*"]
    assert redis_acl.workspace_patterns("a")[:2] == ["a_full_docs:*", "a_text_chunks:*"]
    assert "a_doc_status__sched_rebuild:*" in redis_acl.workspace_patterns("a")
    assert redis_acl.workspace_patterns("")[0] == "full_docs:*"  # the default workspace: bare namespaces


def test_a_user_reaches_its_workspace_and_not_a_prefix_sibling(cli, redis_clean, tmp_path):
    server = redis_clean
    asyncio.run(fill(server, 1, "a", "a_b", "", "ab"))
    role, env_file = unique("ra"), tmp_path / "a.env"
    # the database holds other workspaces: refused unless the operator accepts listable names
    refused = grant(cli, server, 1, "a", role, env_file)
    assert refused.exit_code == 2 and "--shared-db" in refused.stderr and "SCAN and KEYS" in refused.stderr
    assert not env_file.exists()
    assert asyncio.run(users(server)) == {"admin", "default"}
    done = grant(cli, server, 1, "a", role, env_file, "--shared-db")
    assert done.exit_code == 0, done.output
    assert done.json()["backends"][0]["names_visible_in"] == [1]

    async def probe() -> None:
        client = tenant(env_file)
        try:
            for key in keys_of("a"):
                assert await client.get(key) is not None
                await client.set(key, "mine")
            for other in ("a_b", "", "ab"):
                for key in keys_of(other):
                    with pytest.raises(NoPermissionError):
                        await client.get(key)
                    with pytest.raises(NoPermissionError):
                        await client.set(key, "pwned")
        finally:
            await client.aclose()

    before = {k: v for k, v in asyncio.run(dump(server, 1)).items() if not k.startswith(b"a_full")}
    asyncio.run(probe())
    after = asyncio.run(dump(server, 1))
    assert {k: after[k] for k in before if not k.decode().startswith(tuple(f"a_{ns}" for ns in NAMESPACES))} == \
        {k: v for k, v in before.items() if not k.decode().startswith(tuple(f"a_{ns}" for ns in NAMESPACES))}


async def users(server) -> set[str]:
    client = server.client()
    try:
        return {u.decode() if isinstance(u, bytes) else u for u in await client.acl_users()}
    finally:
        await client.aclose()


HOSTILE = [
    ("SELECT", "2"), ("SELECT", "0"), ("SELECT", "01"), ("FLUSHDB",), ("FLUSHALL",), ("SWAPDB", "1", "2"),
    ("MOVE", "a_full_docs:doc-1", "2"), ("COPY", "a_full_docs:doc-1", "b_full_docs:doc-1", "DB", "2"),
    ("CONFIG", "SET", "maxmemory", "1"), ("CONFIG", "GET", "*"), ("ACL", "LIST"), ("ACL", "SETUSER", "x", "on"),
    ("EVAL", "return redis.call('get', KEYS[1])", "1", "b_full_docs:doc-1"), ("MONITOR",), ("DEBUG", "SLEEP", "0"),
    ("CLIENT", "LIST"), ("CLIENT", "KILL", "USER", "admin"), ("INFO",), ("DBSIZE",), ("RANDOMKEY",),
    ("RENAME", "a_full_docs:doc-1", "b_full_docs:doc-9"), ("GET", "b_full_docs:doc-1"), ("DEL", "b_text_chunks:doc-1"),
    ("SUBSCRIBE", "x"), ("SHUTDOWN",), ("SAVE",), ("MIGRATE", "127.0.0.1", "1", "b_full_docs:doc-1", "0", "10"),
]


def test_separate_databases_hide_names_too_and_foreign_commands_are_refused(cli, redis_clean, tmp_path):
    server = redis_clean
    asyncio.run(fill(server, 1, "a"))
    asyncio.run(fill(server, 2, "b"))
    a, b = unique("ra"), unique("rb")
    assert grant(cli, server, 1, "a", a, tmp_path / "a.env").exit_code == 0
    result = grant(cli, server, 2, "b", b, tmp_path / "b.env")
    assert result.exit_code == 0, result.output
    assert result.json()["backends"][0]["names_visible_in"] == []
    b_before = asyncio.run(dump(server, 2))

    async def probe() -> None:
        client = tenant(tmp_path / "a.env")
        try:
            own = {k.encode() for k in keys_of("a")} | {redis_acl.info_key(a).encode()}
            assert set(await client.keys("*")) == own
            assert {k async for k in client.scan_iter("*")} == own
            for command in HOSTILE:
                with pytest.raises(ResponseError):  # NOPERM is a ResponseError
                    await client.execute_command(*command)
        finally:
            await client.aclose()
        # without SELECT a connection sits in database 0, which holds nothing
        raw = aioredis.from_url(read_env(tmp_path / "a.env")["REDIS_URI"].rsplit("/", 1)[0] + "/0")
        try:
            assert await raw.keys("*") == []
        finally:
            await raw.aclose()

    asyncio.run(probe())
    assert asyncio.run(dump(server, 2)) == b_before


def test_revoke_narrows_then_deletes_the_user(cli, redis_clean, tmp_path):
    server = redis_clean
    asyncio.run(fill(server, 3, "a", "c"))
    role, env_file = unique("ra"), tmp_path / "a.env"
    assert grant(cli, server, 3, "a", role, env_file, "--shared-db").exit_code == 0  # c's keys are still foreign
    again = grant(cli, server, 3, "c", role, env_file)
    assert again.exit_code == 0 and not again.json()["backends"][0]["password_set"]
    listed = cli("--json", "workspace", "grants", "--backend", "redis", env={"REDIS_URI": server.admin_uri(3)}).json()
    assert sorted((g["role"], g["workspace"], g["db"]) for g in listed["grants"]) == [(role, "a", 3), (role, "c", 3)]
    admin_env = {"REDIS_URI": server.admin_uri(3)}
    assert cli("workspace", "revoke", "c", "--role", role, "--backend", "redis", env=admin_env).exit_code == 0

    async def after_first() -> None:
        client = tenant(env_file)
        try:
            assert await client.get("a_full_docs:doc-1") is not None
            with pytest.raises(NoPermissionError):
                await client.get("c_full_docs:doc-1")
            assert json.loads(await client.get(redis_acl.info_key(role)))["workspaces"] == ["a"]
        finally:
            await client.aclose()

    asyncio.run(after_first())
    last = cli("--json", "workspace", "revoke", "a", "--role", role, "--backend", "redis", env=admin_env)
    assert last.exit_code == 0 and last.json()["backends"][0]["login"] == "deleted"

    async def after_last() -> None:
        client = tenant(env_file)
        try:
            with pytest.raises(AuthenticationError):
                await client.ping()
        finally:
            await client.aclose()
        admin = server.client(3)
        try:
            assert await admin.exists(redis_acl.info_key(role)) == 0
        finally:
            await admin.aclose()

    asyncio.run(after_last())
    assert asyncio.run(users(server)) == {"admin", "default"}


def test_refusals_change_nothing(cli, redis_clean, tmp_path, redis_env):
    server = redis_clean
    asyncio.run(fill(server, 1, "a"))
    env_file = tmp_path / "a.env"
    # a user ragstore did not make
    asyncio.run(_setuser(server, "legacy", "on", ">legacy-pw", "~*", "+@all"))
    out = grant(cli, server, 1, "a", "legacy", env_file)
    assert out.exit_code == 2 and "--adopt" in out.stderr
    # a workspace without keys
    out = grant(cli, server, 1, "nothing_here", unique("ra"), env_file)
    assert out.exit_code == 2 and "--new" in out.stderr
    # a Redis whose default user takes anyone: the suite's plain server
    out = cli("workspace", "grant", "a", "--role", unique("ra"), "--backend", "redis", "--write-env", str(env_file),
              env=redis_env)
    assert out.exit_code == 2 and "default user" in out.stderr
    assert not env_file.exists()
    assert asyncio.run(users(server)) == {"admin", "default", "legacy"}
    adopted = grant(cli, server, 1, "a", "legacy", env_file, "--adopt")
    assert adopted.exit_code == 0, adopted.output
    with pytest.raises(AuthenticationError):
        asyncio.run(_auth(server, "legacy", "legacy-pw"))
    # the user is held to database 1: a grant from database 2 is refused
    asyncio.run(fill(server, 2, "b"))
    out = grant(cli, server, 2, "b", "legacy", tmp_path / "b.env")
    assert out.exit_code == 2 and "held to database 1" in out.stderr


async def _setuser(server, name: str, *rules: str) -> None:
    client = server.client()
    try:
        await client.execute_command("ACL", "SETUSER", name, *rules)
    finally:
        await client.aclose()


async def _auth(server, user: str, password: str) -> None:
    client = aioredis.from_url(f"redis://{user}:{password}@127.0.0.1:{server.port}/1")
    try:
        await client.ping()
    finally:
        await client.aclose()


def test_check_connections_says_the_user_is_restricted(cli, redis_clean, tmp_path):
    server = redis_clean
    asyncio.run(fill(server, 1, "a"))
    env_file = tmp_path / "a.env"
    assert grant(cli, server, 1, "a", unique("ra"), env_file).exit_code == 0
    as_tenant = cli("--json", "check-connections", "--backend", "redis", env={"REDIS_URI": read_env(env_file)["REDIS_URI"]})
    assert as_tenant.exit_code == 0, as_tenant.output
    access = as_tenant.json()[0]["details"]["access"]
    assert access["restricted"] is True and access["workspaces"] == ["a"] and access["db"] == 1
    human = cli("check-connections", "--backend", "redis", env={"REDIS_URI": read_env(env_file)["REDIS_URI"]})
    assert "restricted to a" in " ".join(human.stdout.split())
    as_admin = cli("--json", "check-connections", "--backend", "redis", env={"REDIS_URI": server.admin_uri(1)})
    assert as_admin.json()[0]["details"]["access"]["restricted"] is False


def test_grants_on_an_open_redis_warns_instead_of_failing(cli, redis_env):
    out = cli("workspace", "grants", "--backend", "redis", env=redis_env)
    assert out.exit_code == 0, out.output
    assert "default user accepts connections without a password" in " ".join(out.stdout.split())
