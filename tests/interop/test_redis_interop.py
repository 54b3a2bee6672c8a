"""redis backend ↔ LightRAG 1.5.7's RedisKVStorage / RedisDocStatusStorage, both directions.

Records are compared through LightRAG's own classes; the doc-status scheduling sidecar ragstore
maintains is compared with the one LightRAG builds itself from the same rows.
"""

from __future__ import annotations

import json
import uuid

import pytest
import redis.asyncio as aioredis

from ragstore_cli.backends.redis import create as create_redis
from ragstore_cli.backends.redis import keys as K
from ragstore_cli.config import load_settings
from tests.transfer.helpers import copy_between
from tests.interop.lightrag_builder import (
    FILE_STORAGES, KV_NS, build_workspace, fresh_shared_state, global_config, make_embedding_func,
    read_with_lightrag, storage_class,
)

REDIS_PROFILE = "kv=redis,vector=files,graph=files,doc_status=redis"
REDIS_STORAGES = {**FILE_STORAGES, "kv_storage": "RedisKVStorage", "doc_status_storage": "RedisDocStatusStorage"}
RECORD_NS = (*KV_NS, "doc_status")


def folder_ids(folder) -> dict[str, list[str]]:
    return {ns: list(json.loads((folder / f"kv_store_{ns}.json").read_text(encoding="utf-8"))) for ns in RECORD_NS}


async def sidecar(client: aioredis.Redis, workspace: str) -> dict[str, list]:
    """Every `<prefix>__sched:*` key (prefix stripped) with its sorted members."""
    prefix = K.prefix(workspace, "doc_status")
    out = {}
    async for page in K.scan(client, K.redis_glob_escape(prefix) + "__sched*"):
        for key in page:
            name = key.decode()[len(prefix):]
            if await client.type(key) == b"zset":
                out[name] = sorted(await client.zrange(key, 0, -1, withscores=True))
            else:
                out[name] = sorted(await client.smembers(key))
    return out


@pytest.fixture
def lightrag_env(redis_env, monkeypatch):
    monkeypatch.setenv("REDIS_URI", redis_env["REDIS_URI"])
    return redis_env


@pytest.fixture
async def client(redis_env):
    client = aioredis.from_url(redis_env["REDIS_URI"])
    yield client
    await client.aclose()


@pytest.fixture
async def workspaces(redis_env, tmp_path):
    names: list[str] = []
    yield names
    for name in names:
        backend = create_redis(load_settings(environ=redis_env, cwd=tmp_path), name)
        await backend.open()
        try:
            await backend.drop_workspace()
        finally:
            await backend.close()


async def lightrag_rebuilt_sidecar(client: aioredis.Redis, working_dir, workspace: str) -> dict[str, list]:
    """Delete the sidecar and let LightRAG's RedisDocStatusStorage.initialize() rebuild it."""
    prefix = K.prefix(workspace, "doc_status")
    for pattern in K.sidecar_patterns(prefix):
        await K.delete_matching(client, pattern)
    fresh_shared_state()
    store = storage_class("RedisDocStatusStorage")(namespace="doc_status", workspace=workspace,
                                                   global_config=global_config(working_dir),
                                                   embedding_func=make_embedding_func())
    await store.initialize()
    try:
        return await sidecar(client, workspace)
    finally:
        await store.finalize()


async def test_ragstore_writes_lightrag_redis_storages_read_equal(tmp_path, redis_env, lightrag_env, client, workspaces):
    built = await build_workspace(tmp_path / "rag", "src")
    target = "t" + uuid.uuid4().hex[:10]
    workspaces.append(target)
    settings = load_settings(environ={**redis_env, "WORKING_DIR": str(built.working_dir)}, cwd=tmp_path)
    report = await copy_between(settings, "files", "src", REDIS_PROFILE, target, batch_size=2)
    ids = folder_ids(built.folder)
    assert all(report.copied[ns] == len(ids[ns]) > 0 for ns in RECORD_NS)
    original = await read_with_lightrag(built.working_dir, "src", ids)
    copied = await read_with_lightrag(built.working_dir, target, ids, storages=REDIS_STORAGES)
    for ns in RECORD_NS:
        assert copied[ns] == original[ns], ns
    ours = await sidecar(client, target)
    assert any(k.startswith("__sched:status:processed") for k in ours) and any("basename" in k for k in ours)
    assert await lightrag_rebuilt_sidecar(client, built.working_dir, target) == ours


async def test_lightrag_redis_storages_write_ragstore_reads_equal(tmp_path, redis_env, lightrag_env, client, workspaces):
    workspace, again = "t" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
    workspaces.extend([workspace, again])
    built = await build_workspace(tmp_path / "rag", workspace, storages=REDIS_STORAGES)
    settings = load_settings(environ={**redis_env, "WORKING_DIR": str(built.working_dir)}, cwd=tmp_path)
    await copy_between(settings, REDIS_PROFILE, workspace, "files", "copy", batch_size=3)
    await copy_between(settings, REDIS_PROFILE, workspace, REDIS_PROFILE, again, batch_size=3)
    ids = folder_ids(built.working_dir / "copy")
    assert all(ids[ns] for ns in RECORD_NS) and len(ids["doc_status"]) == 3
    by_lightrag = await read_with_lightrag(built.working_dir, workspace, ids, storages=REDIS_STORAGES)
    via_files = await read_with_lightrag(built.working_dir, "copy", ids)
    via_redis = await read_with_lightrag(built.working_dir, again, ids, storages=REDIS_STORAGES)
    for ns in RECORD_NS:
        assert via_files[ns] == by_lightrag[ns], ns
        assert via_redis[ns] == by_lightrag[ns], ns
    # the sidecar LightRAG's pipeline maintained == the one ragstore wrote for the copy
    assert await sidecar(client, again) == await sidecar(client, workspace) != {}
