"""The redis backend against a real Redis: LightRAG's key layout, staged writes, the doc-status sidecar."""

from __future__ import annotations

import json

import pytest

from ragstore_cli.backends.redis import keys as K
from ragstore_cli.errors import DataError, UsageError

CHUNK = {"tokens": 14, "content": "Alice met Bob.", "chunk_order_index": 0, "full_doc_id": "doc-1",
         "file_path": "notes.txt", "llm_cache_list": ["default:extract:1a2b"], "create_time": 1735689600,
         "update_time": 1735689601, "_id": "doc-1-chunk-000"}


def doc(status: str, created: str, file_path: str = "notes.txt", **extra) -> dict:
    return {"status": status, "content_summary": "Alice met Bob.", "content_length": 14, "created_at": created,
            "updated_at": created, "file_path": file_path, "track_id": "insert_1", "chunks_count": 1,
            "chunks_list": ["doc-1-chunk-000"], "metadata": {"kg_write_state": "pre_graph"}, **extra}


async def read_all(reader, batch_size=1000) -> dict:
    out = {}
    async for batch in reader:
        assert 0 < len(batch) <= batch_size
        for record_id, value in batch:
            assert record_id not in out
            out[record_id] = value
    return out


async def write(store, records, namespace=None, *, replace=True, commit=True):
    writer = await (store.writer(namespace, replace=replace) if namespace else store.writer(replace=replace))
    await writer.write(records)
    if commit:
        await writer.commit()
    return writer


async def test_kv_round_trip_in_lightrags_layout(open_redis, raw):
    backend = await open_redis()
    records = [(f"doc-1-chunk-{i:03d}", {**CHUNK, "chunk_order_index": i}) for i in range(25)]
    await write(backend.kv(), records, "text_chunks")
    assert await backend.kv().count("text_chunks") == 25
    got = await read_all(backend.kv().read("text_chunks", 7), 7)
    assert got == {rid: {**value, "_id": rid} for rid, value in records}
    stored = json.loads(await raw.get(f"{backend.workspace}_text_chunks:doc-1-chunk-003"))
    assert stored["chunk_order_index"] == 3 and stored["create_time"] == 1735689600


async def test_kv_stamping_rules(open_redis):
    backend = await open_redis()
    await write(backend.kv(), [("x", {"content": "c"})], "text_chunks")
    got = (await read_all(backend.kv().read("text_chunks")))["x"]
    assert got == {"content": "c", "_id": "x", "llm_cache_list": []}  # timestamps never invented
    await write(backend.kv(), [("k", {"_id": "wrong", "return": "r", "create_time": 5})], "llm_response_cache")
    got = (await read_all(backend.kv().read("llm_response_cache")))["k"]
    assert got["_id"] == "k" and got["create_time"] == 5 and "llm_cache_list" not in got


async def test_replace_is_staged_until_commit_and_abort_leaves_old_data(open_redis, raw):
    backend = await open_redis()
    await write(backend.kv(), [("old", {"v": 1})], "full_docs")
    writer = await write(backend.kv(), [("new", {"v": 2})], "full_docs", commit=False)
    assert set(await read_all(backend.kv().read("full_docs"))) == {"old"}
    await writer.abort()
    assert [k async for page in K.scan(raw, "__ragstore_import*") for k in page] == []
    assert set(await read_all(backend.kv().read("full_docs"))) == {"old"}
    writer = await write(backend.kv(), [("new", {"v": 2})], "full_docs", commit=False)
    await writer.commit()
    assert set(await read_all(backend.kv().read("full_docs"))) == {"new"}
    await write(backend.kv(), [("more", {"v": 3}), ("new", {"v": 4})], "full_docs", replace=False)
    got = await read_all(backend.kv().read("full_docs"))
    assert {k: v["v"] for k, v in got.items()} == {"new": 4, "more": 3}
    assert [k async for page in K.scan(raw, "__ragstore_import*") for k in page] == []  # nothing left behind


async def test_bad_records_fail_before_anything_is_written(open_redis):
    backend = await open_redis()
    writer = await backend.kv().writer("full_docs")
    with pytest.raises(DataError, match="not-json.*cannot be stored as JSON"):
        await writer.write([("fine", {"a": 1}), ("not-json", {"a": float("nan")})])
    with pytest.raises(DataError, match="must be an object"):
        await writer.write([("x", ["list"])])
    with pytest.raises(DataError, match="lone surrogate"):
        await writer.write([("bad\ud800", {})])
    with pytest.raises(DataError, match="non-empty text"):
        await writer.write([("", {})])
    await writer.commit()
    assert await backend.kv().count("full_docs") == 0
    with pytest.raises(UsageError):
        await writer.write([("late", {})])
    with pytest.raises(UsageError, match="unknown KV namespace"):
        backend.kv().read("chunks")
    status_writer = await backend.doc_status().writer()
    with pytest.raises(DataError, match="'status' must be"):
        await status_writer.write([("doc-1", {"content_summary": "no status"})])
    await status_writer.abort()


async def test_doc_status_and_its_sidecar(open_redis, raw):
    backend = await open_redis()
    prefix = f"{backend.workspace}_doc_status"
    rows = [("doc-a", doc("processed", "2025-01-01T00:00:00+00:00", "a.txt")),
            ("doc-b", doc("pending", "2025-01-02T00:00:00+00:00", "unknown_source")),
            ("dup-c", doc("failed", "2025-01-03T00:00:00+00:00", "a.txt", metadata={"is_duplicate": True}))]
    await write(backend.doc_status(), rows)
    got = await read_all(backend.doc_status().read())
    assert got == {k: v for k, v in rows} and "_id" not in got["doc-a"]  # no KV stamping
    assert await raw.zrange(f"{prefix}__sched:status:processed", 0, -1) == [b"2025-01-01T00:00:00+00:00|doc-a"]
    assert await raw.zscore(f"{prefix}__sched:status:processed", "2025-01-01T00:00:00+00:00|doc-a") == 0
    assert await raw.zrange(f"{prefix}__sched:status:pending", 0, -1) == [b"2025-01-02T00:00:00+00:00|doc-b"]
    assert await raw.smembers(f"{prefix}__sched:basename:a.txt") == {b"doc-a"}  # duplicate excluded
    assert not await raw.exists(f"{prefix}__sched:basename:unknown_source")

    # merge: doc-a moves from processed to failed; the old member goes, the new one comes
    await write(backend.doc_status(), [("doc-a", doc("failed", "2025-01-01T00:00:00+00:00", "b.txt"))], replace=False)
    assert not await raw.exists(f"{prefix}__sched:status:processed")
    assert set(await raw.zrange(f"{prefix}__sched:status:failed", 0, -1)) == {
        b"2025-01-01T00:00:00+00:00|doc-a", b"2025-01-03T00:00:00+00:00|dup-c"}
    assert not await raw.exists(f"{prefix}__sched:basename:a.txt")
    assert await raw.smembers(f"{prefix}__sched:basename:b.txt") == {b"doc-a"}

    # replace: the sidecar is rebuilt from the new rows only
    await write(backend.doc_status(), [("doc-z", doc("processed", "2025-02-01T00:00:00+00:00", "z.txt"))])
    sched = sorted([k async for page in K.scan(raw, K.redis_glob_escape(prefix) + "__sched*") for k in page])
    assert sched == [f"{prefix}__sched:basename:z.txt".encode(), f"{prefix}__sched:status:processed".encode()]


async def test_merge_into_rows_without_a_sidecar_leaves_it_for_lightrag_to_rebuild(open_redis, raw):
    backend = await open_redis()
    prefix = f"{backend.workspace}_doc_status"
    await raw.set(f"{prefix}:doc-legacy", json.dumps(doc("processed", "2024-01-01T00:00:00+00:00")))
    await write(backend.doc_status(), [("doc-new", doc("pending", "2025-01-01T00:00:00+00:00"))], replace=False)
    assert set(await read_all(backend.doc_status().read())) == {"doc-legacy", "doc-new"}
    assert [k async for page in K.scan(raw, K.redis_glob_escape(prefix) + "__sched*") for k in page] == []


async def test_glob_characters_in_a_prefix_never_match_other_workspaces(open_redis, raw):
    """`a*` is refused as a workspace name; even so, every pattern ragstore builds is escaped."""
    victim = await open_redis("ab")
    await write(victim.kv(), [("1", {"v": 1})], "full_docs")
    with pytest.raises(UsageError, match="not allowed"):
        await open_redis("a*")
    # a LightRAG-made workspace `a*` (LightRAG accepts it) seen through the escaped helpers
    await raw.set("a*_full_docs:own", json.dumps({"v": 2}))
    try:
        from ragstore_cli.backends.redis.store import Namespace
        hostile = Namespace(raw, "a*_full_docs", "full_docs")
        assert await hostile.count() == 1
        assert set(await read_all(hostile.read())) == {"own"}
        assert await K.delete_matching(raw, K.record_pattern("a*_full_docs")) == 1
        assert await victim.kv().count("full_docs") == 1  # `ab` untouched
        assert "a*" not in await victim.list_workspaces()
    finally:
        await raw.delete("a*_full_docs:own")


async def test_workspaces_isolated_listed_overridden_and_dropped(open_redis):
    one = await open_redis("t-rds-one")
    two = await open_redis("t_rds_one")
    default = await open_redis("")
    await write(one.kv(), [("1", {"v": 1}), ("2", {"v": 2})], "full_docs")
    await write(one.doc_status(), [("doc-1", doc("processed", "2025-01-01T00:00:00+00:00"))])
    await write(two.kv(), [("1", {"v": 9})], "full_docs")
    await write(default.kv(), [("1", {"v": 0})], "entity_chunks")
    listed = await one.list_workspaces()
    assert {"t-rds-one", "t_rds_one", ""} <= set(listed)
    assert {s.namespace: s.count for s in await one.stats()} == {"full_docs": 2, "doc_status": 1}
    assert await one.drop_workspace() == {"full_docs": 2, "doc_status": 1}
    assert "t-rds-one" not in await one.list_workspaces()
    assert await two.kv().count("full_docs") == 1 and await default.kv().count("entity_chunks") == 1
    forced = await open_redis("ignored", REDIS_WORKSPACE="t_rds_one")
    assert forced.workspace == "t_rds_one" and await forced.kv().count("full_docs") == 1


HOSTILE = ['quote \' " both', "back`tick", "star * glob ? [x]", "../../etc/passwd", "nul\x00byte",
           "é中😀<SEP>", "colon:in:id", "x" * 10_240]


async def test_hostile_ids_and_values_round_trip(open_redis):
    backend = await open_redis()
    records = [(text, {"content": text, "nested": {"k": text}}) for text in HOSTILE]
    await write(backend.kv(), records, "full_docs")
    got = await read_all(backend.kv().read("full_docs", 3), 3)
    assert set(got) == set(HOSTILE)
    assert all(got[t]["content"] == t and got[t]["nested"] == {"k": t} for t in HOSTILE)


async def test_lost_server_is_a_one_line_connection_error(redis_env, tmp_path):
    from ragstore_cli.backends.redis import create
    from ragstore_cli.config import load_settings
    from ragstore_cli.errors import ConnectionFailed
    from tests.servers import SilentListener

    listener = SilentListener()
    try:
        settings = load_settings(environ={"REDIS_URI": f"redis://127.0.0.1:{listener.port}/0",
                                          "REDIS_CONNECT_TIMEOUT": "0.5", "REDIS_SOCKET_TIMEOUT": "0.5"}, cwd=tmp_path)
        backend = create(settings, "t-silent")
        with pytest.raises(ConnectionFailed) as err:
            await backend.open()
        line = str(err.value)
        assert line.startswith("redis: no answer from redis://127.0.0.1:") and "REDIS_URI" in line and "\n" not in line
    finally:
        listener.close()


@pytest.mark.parametrize("name", ["a`b", "a'b", "../x", "a\x00b", "a:b", " lead"])
async def test_hostile_workspace_names_are_refused(open_redis, name):
    with pytest.raises(UsageError):
        await open_redis(name)


async def test_copy_and_rename_keep_records_and_sidecar(open_redis, raw):
    source = await open_redis()
    await write(source.kv(), [("1", {"v": 1}), ("2", {"v": 2})], "full_docs")
    await write(source.doc_status(), [("doc-1", doc("processed", "2025-01-01T00:00:00+00:00", "a.txt"))])
    copy_name, moved_name = source.workspace + "c", source.workspace + "m"
    copy, moved = await open_redis(copy_name), await open_redis(moved_name)
    assert await source.copy_workspace(copy_name) == {"full_docs": 2, "doc_status": 1}
    assert await read_all(copy.kv().read("full_docs")) == await read_all(source.kv().read("full_docs"))
    assert await raw.smembers(f"{copy_name}_doc_status__sched:basename:a.txt") == {b"doc-1"}
    with pytest.raises(UsageError, match="already holds"):
        await source.copy_workspace(copy_name)
    assert await copy.rename_workspace(moved_name) == {"full_docs": 2, "doc_status": 1}
    assert await copy.kv().count("full_docs") == 0 and await moved.doc_status().count() == 1
    assert not await raw.exists(f"{copy_name}_doc_status__sched:basename:a.txt")
    assert await raw.zrange(f"{moved_name}_doc_status__sched:status:processed", 0, -1) == [
        b"2025-01-01T00:00:00+00:00|doc-1"]
    assert await source.kv().count("full_docs") == 2
