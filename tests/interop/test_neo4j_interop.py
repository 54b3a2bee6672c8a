"""neo4j backend ↔ LightRAG 1.5.7's own Neo4JStorage, both directions, over the test Bolt server.

LightRAG's pipeline builds a workspace; ragstore copies its graph into a Bolt workspace label and
LightRAG's Neo4JStorage reads it back; and LightRAG's pipeline writes its graph through Neo4JStorage
while ragstore reads it. Equality is checked on what LightRAG's classes return.
"""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit

import neo4j
import pytest

from ragstore_cli.backends.neo4j import create as create_neo4j
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from tests.transfer.helpers import copy_between
from tests.interop.lightrag_builder import FILE_STORAGES, build_workspace, read_with_lightrag

NEO4J_PROFILE = "kv=files,vector=files,graph=neo4j,doc_status=files"
NEO4J_STORAGES = {**FILE_STORAGES, "graph_storage": "Neo4JStorage"}


BOLT_HANDSHAKE = bytes.fromhex("6060b017") + bytes.fromhex("00000805") + bytes.fromhex("00000404") + bytes(8)


def unstick_bolt(uri: str) -> None:
    """FalkorDB leaves one later handshake hanging per connection a client closed with GOODBYE (a
    pooled driver closes several); LightRAG's driver does not retry, so the test spends those
    stalls on raw handshakes until one is answered (the first is answered at once on Neo4j)."""
    parts = urlsplit(uri)
    for _ in range(40):
        with socket.create_connection((parts.hostname, parts.port or 7687), timeout=2) as sock:
            sock.settimeout(1.0)
            sock.sendall(BOLT_HANDSHAKE)
            try:
                if sock.recv(4):
                    return
            except socket.timeout:
                continue


def graph_view(read: dict) -> tuple[dict, dict]:
    """Nodes and edges as LightRAG returned them; an edge's source/target orientation is not data."""
    edges = {pair: {k: v for k, v in props.items() if k not in ("source", "target")}
             for pair, props in read["edges"].items()}
    return read["nodes"], edges


@pytest.fixture
def lightrag_env(bolt_env, monkeypatch, is_real_neo4j):
    """LightRAG reads its Neo4j settings from the process environment.

    On FalkorDB only: its Bolt endpoint runs explicit transactions (LightRAG's writes, all of
    ragstore's queries) on its default graph, but an auto-commit query on a graph NAMED AFTER THE
    FIRST KEY of the request's metadata — `db` when a database is named, `mode` for LightRAG's
    READ-mode sessions (measured: reads then see an empty graph called "mode"). Sessions are
    therefore opened without database/access mode there, so LightRAG's own Cypher and result
    handling run against the graph both sides wrote. Nothing changes on a real Neo4j.
    """
    for name, value in bolt_env.items():
        monkeypatch.setenv(name, value)
    if not is_real_neo4j:
        original = neo4j.AsyncDriver.session

        def session(self, **config):
            config.pop("database", None)
            config.pop("default_access_mode", None)
            return original(self, **config)

        monkeypatch.setattr(neo4j.AsyncDriver, "session", session)
    return bolt_env


@pytest.fixture
async def label_cleanup(bolt_env, tmp_path):
    workspaces: list[str] = []
    yield workspaces
    for workspace in workspaces:
        backend = create_neo4j(load_settings(environ=bolt_env, cwd=tmp_path), workspace)
        await backend.open()
        try:
            await backend.drop_workspace()
        finally:
            await backend.close()


async def test_ragstore_writes_lightrag_neo4jstorage_reads_equal(tmp_path, bolt_env, lightrag_env, label_cleanup):
    built = await build_workspace(tmp_path / "rag", "src")
    target = "t" + uuid.uuid4().hex[:10]
    label_cleanup.append(target)
    settings = load_settings(environ={**bolt_env, "WORKING_DIR": str(built.working_dir)}, cwd=tmp_path)
    report = await copy_between(settings, "files", "src", NEO4J_PROFILE, target, batch_size=3)
    async with await open_backends(settings, NEO4J_PROFILE, target) as dst:
        assert await dst.graph.count() == (report.copied["graph_nodes"], report.copied["graph_edges"])
    original = await read_with_lightrag(built.working_dir, "src", {})
    unstick_bolt(bolt_env["NEO4J_URI"])
    copied = await read_with_lightrag(built.working_dir, target, {}, storages=NEO4J_STORAGES)
    assert len(original["nodes"]) > 5 and len(original["edges"]) > 5
    assert graph_view(copied) == graph_view(original)


async def test_lightrag_neo4jstorage_writes_ragstore_reads_equal(tmp_path, bolt_env, lightrag_env, label_cleanup):
    workspace = "t" + uuid.uuid4().hex[:10]
    label_cleanup.append(workspace)
    unstick_bolt(bolt_env["NEO4J_URI"])
    built = await build_workspace(tmp_path / "rag", workspace, storages=NEO4J_STORAGES)
    unstick_bolt(bolt_env["NEO4J_URI"])
    by_lightrag = graph_view(await read_with_lightrag(built.working_dir, workspace, {}, storages=NEO4J_STORAGES))

    settings = load_settings(environ={**bolt_env, "WORKING_DIR": str(built.working_dir)}, cwd=tmp_path)
    async with await open_backends(settings, NEO4J_PROFILE, workspace) as src:
        nodes = {n.id: n.properties async for batch in src.graph.read_nodes(4) for n in batch}
        edges = {tuple(sorted((e.source, e.target))): e.properties async for batch in src.graph.read_edges(4) for e in batch}
    await copy_between(settings, NEO4J_PROFILE, workspace, "files", "copy", batch_size=4)
    assert {k: {p: v for p, v in props.items() if p != "id"} for k, props in by_lightrag[0].items()} == nodes
    assert by_lightrag[1] == edges
    # and LightRAG's file storage reads the same graph from ragstore's GraphML copy
    assert graph_view(await read_with_lightrag(built.working_dir, "copy", {})) == by_lightrag
