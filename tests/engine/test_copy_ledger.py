"""workspace copy/rename keep a ledger note: an interrupted one is finished by a re-run, never refused."""

from __future__ import annotations

import json
import uuid

import pytest

from ragstore_cli.engine import copy as copying
from ragstore_cli.engine import workspace_ops
from ragstore_cli.backends.neo4j import cypher
from ragstore_cli.backends.neo4j import create as create_neo4j
from ragstore_cli.backends.redis import create as create_redis
from ragstore_cli.backends.registry import describe, parse_profile
from ragstore_cli.engine.ledger import Note, journal
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError
from tests.backends.neo4j.graphdata import as_dicts, read_all, sample

GRAPH_PROFILE = "neo4j,files"
REDIS_PROFILE = "kv=redis,vector=files,graph=files,doc_status=redis"


def name() -> str:
    return "t" + uuid.uuid4().hex[:10]


def files_workspace(root, workspace: str) -> None:
    folder = root / workspace
    folder.mkdir(parents=True)
    (folder / "kv_store_full_docs.json").write_text(json.dumps({"d": {"content": "D"}}), encoding="utf-8")


async def pending(settings, target: str) -> Note | None:
    async with journal(settings, target) as ledger:
        return await ledger.pending()


async def begin(settings, op: str, source: str, target: str, profile: str) -> None:
    async with journal(settings, target) as ledger:
        await ledger.save(Note(op, source, target, describe(parse_profile(profile, settings))))


@pytest.fixture
def graph_settings(bolt_env, tmp_path):
    return load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path)}, cwd=tmp_path)


@pytest.fixture
async def graph_source(graph_settings, tmp_path):
    """A workspace with a graph on the Bolt server and a KV file; every label used is dropped after."""
    source, labels = name(), []
    files_workspace(tmp_path, source)
    backend = create_neo4j(graph_settings, source)
    await backend.open()
    nodes, edges = sample(9)
    writer = await backend.graph().writer()
    await writer.write([*nodes, *edges])
    await writer.commit()
    labels.append(source)
    yield source, backend, as_dicts(nodes, edges), labels
    for label in labels:
        other = create_neo4j(graph_settings, label)
        await other.open()
        try:
            await other.drop_workspace()
        finally:
            await other.close()
    await backend.close()


async def graph_of(settings, workspace: str):
    backend = create_neo4j(settings, workspace)
    await backend.open()
    try:
        return await read_all(backend.graph(), 4)
    finally:
        await backend.close()


async def test_an_interrupted_copy_is_restarted_from_an_empty_target(graph_settings, graph_source, tmp_path):
    source, backend, want, labels = graph_source
    target = name()
    labels.append(target)
    # what a copy killed after its node batches leaves: the journal, and nodes without edges
    await begin(graph_settings, "copy", source, target, GRAPH_PROFILE)
    await backend.bolt.scalar(cypher.copy_nodes_range(backend.label, target, backend.dialect), {"after": "", "upto": "\uffff"})
    assert (await graph_of(graph_settings, target))[1] == {}
    report = await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target)
    assert report["resumed"] is True
    assert await graph_of(graph_settings, target) == want
    assert await graph_of(graph_settings, source) == want
    assert (tmp_path / target / "kv_store_full_docs.json").read_bytes() == (tmp_path / source / "kv_store_full_docs.json").read_bytes()
    assert await pending(graph_settings, target) is None


async def test_an_interrupted_bolt_rename_moves_the_nodes_it_had_not_reached(graph_settings, graph_source, tmp_path):
    source, backend, want, labels = graph_source
    target = name()
    labels.append(target)
    await begin(graph_settings, "rename", source, target, GRAPH_PROFILE)
    (tmp_path / source).rename(tmp_path / target)  # the files part had finished
    moved = await backend.bolt.scalar(cypher.relabel_batch(backend.label, target), {"limit": 4})
    assert moved == 4  # the graph is split between the two labels
    report = await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target, move=True)
    assert report["resumed"] is True
    assert await graph_of(graph_settings, target) == want
    assert await graph_of(graph_settings, source) == ({}, {})
    assert (tmp_path / target / "kv_store_full_docs.json").exists() and not (tmp_path / source).exists()
    assert await pending(graph_settings, target) is None


async def test_an_unfinished_copy_is_finished_only_by_the_same_command_or_dropped(graph_settings, graph_source, tmp_path):
    source, _backend, want, labels = graph_source
    other, target = name(), name()
    labels.append(target)
    files_workspace(tmp_path, other)
    files_workspace(tmp_path, target)  # half-written by the copy the journal names
    await begin(graph_settings, "copy", source, target, GRAPH_PROFILE)
    with pytest.raises(UsageError, match="unfinished `workspace copy`") as refused:
        await copying.copy_workspace(graph_settings, GRAPH_PROFILE, other, target)
    assert "\n" not in str(refused.value)
    with pytest.raises(UsageError, match="unfinished"):
        await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target, move=True)
    await workspace_ops.drop_workspace(graph_settings, GRAPH_PROFILE, target, yes=True)
    assert await pending(graph_settings, target) is None
    report = await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target)
    assert report["resumed"] is False
    assert await graph_of(graph_settings, target) == want


async def test_a_finished_copy_clears_its_journal_and_a_second_one_is_refused(graph_settings, graph_source):
    source, _backend, want, labels = graph_source
    target = name()
    labels.append(target)
    report = await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target)
    assert report["resumed"] is False and await pending(graph_settings, target) is None
    with pytest.raises(UsageError, match="already exists"):
        await copying.copy_workspace(graph_settings, GRAPH_PROFILE, source, target)
    assert await graph_of(graph_settings, target) == want


async def test_an_interrupted_redis_rename_moves_the_keys_it_had_not_reached(redis_env, tmp_path):
    settings = load_settings(environ={**redis_env, "WORKING_DIR": str(tmp_path)}, cwd=tmp_path)
    source, target = name(), name()
    backend = create_redis(settings, source)
    await backend.open()
    try:
        records = {f"doc-{i}": {"content": f"text {i}", "create_time": 1, "update_time": 1} for i in range(30)}
        writer = await backend.kv().writer("full_docs")
        await writer.write(list(records.items()))
        await writer.commit()
        await begin(settings, "rename", source, target, REDIS_PROFILE)
        keys = [k async for k in backend.client.scan_iter(match=f"{source}_full_docs:*")]
        for key in keys[:10]:  # the first pipeline of RENAMENX got through
            await backend.client.rename(key, key.replace(source.encode(), target.encode(), 1))
        report = await copying.copy_workspace(settings, REDIS_PROFILE, source, target, move=True)
        assert report["resumed"] is True
        moved = create_redis(settings, target)
        await moved.open()
        try:
            got = {k: v async for batch in moved.kv().read("full_docs") for k, v in batch}
            assert {k: v["content"] for k, v in got.items()} == {k: v["content"] for k, v in records.items()}
            assert await backend.kv().count("full_docs") == 0
            await moved.drop_workspace()
        finally:
            await moved.close()
        assert await pending(settings, target) is None
    finally:
        await backend.drop_workspace()
        await backend.close()
