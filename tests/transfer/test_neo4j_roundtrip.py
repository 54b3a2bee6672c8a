"""files → archive → Bolt graph (FalkorDB and real Neo4j) → archive → files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.engine.workspace_ops import drop_workspace
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive
from tests.backends.neo4j.graphdata import edge, node
from tests.transfer.conftest import SRC
from tests.transfer.helpers import assert_same, snapshot_records


async def test_files_neo4j_files(built, bolt_env, tmp_path: Path) -> None:
    files = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    first = tmp_path / "first.ragstore"
    await export_workspace(files, ExportPlan(first, workspace=SRC, profile="files"))
    mixed = load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path / "mid"), "EMBEDDING_MODEL": "fake-embed"})
    ws = "bolt_rt"
    report = await import_archive(mixed, ImportPlan(first, workspace=ws, profile="neo4j,files", if_exists="replace", batch_size=4))
    assert report.counts["graph/nodes"] > 5 and report.counts["graph/edges"] > 5
    in_bolt = await snapshot_records(mixed, "neo4j,files", ws)
    assert not (tmp_path / "mid" / ws / "graph_chunk_entity_relation.graphml").exists()  # the graph went to Bolt
    second = tmp_path / "second.ragstore"
    await export_workspace(mixed, ExportPlan(second, workspace=ws, profile="neo4j,files"))
    assert ArchiveReader(second).manifest.counts() == ArchiveReader(first).manifest.counts()
    back = load_settings(environ={"WORKING_DIR": str(tmp_path / "back")})
    await import_archive(back, ImportPlan(second, workspace=SRC, profile="files"))
    original = await snapshot_records(files, "files", SRC)
    assert_same(original, await snapshot_records(back, "files", SRC))
    assert_same(original, in_bolt)
    # merge re-import into Bolt changes nothing
    await import_archive(mixed, ImportPlan(first, workspace=ws, profile="neo4j,files", if_exists="merge"))
    assert_same(in_bolt, await snapshot_records(mixed, "neo4j,files", ws))


async def graph_archive(tmp_path: Path, nodes, edges) -> Path:
    """A files workspace holding one document and this graph, exported to an archive."""
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path / "src")})
    async with await open_backends(settings, "files", "hostile") as stores:
        kv = await stores.kv.writer("full_docs")
        await kv.write([("doc-1", {"content": "Alice's friend wrote C:\\temp\\new"})])
        await kv.commit()
        graph = await stores.graph.writer()
        await graph.write(nodes)
        await graph.write(edges)
        await graph.commit()
    archive = tmp_path / "hostile.ragstore"
    await export_workspace(settings, ExportPlan(archive, workspace="hostile", profile="files"))
    return archive


async def test_quotes_backslashes_and_large_records_import_exactly(bolt_env, tmp_path: Path) -> None:
    """Issue 15: on FalkorDB, `\\n` and `\\\\` came back rewritten, an apostrophe aborted the import after the
    files were committed, and a 9 KB node was refused half-way."""
    names = ["Alice's friend", "C:\\temp\\new", "two \\\\ slashes", "end\\", 'say "hi"', "back`tick", "é中😀"]
    big = "Alice's description \\n is long. " * 300  # ~9.6 KB
    nodes = [node(n, description=f"{n}: {big if i % 2 else 'short'}") for i, n in enumerate(names)]
    edges = [edge(names[i], names[i + 1], description=big[: 1000 * i]) for i in range(len(names) - 1)]
    archive = await graph_archive(tmp_path, nodes, edges)
    settings = load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path / "dst")})
    try:
        await import_archive(settings, ImportPlan(archive, workspace="hostile_rt", profile="neo4j,files", if_exists="replace", batch_size=3))
        got = await snapshot_records(settings, "neo4j,files", "hostile_rt")
        assert got["graph/nodes"] == {n.id: n.properties for n in nodes}
        assert got["graph/edges"] == {tuple(sorted((e.source, e.target))): e.properties for e in edges}
    finally:
        await drop_workspace(settings, "neo4j,files", "hostile_rt", yes=True)


async def test_a_node_id_the_server_cannot_index_is_refused_before_any_write(bolt_env, tmp_path: Path) -> None:
    too_long = "N" * 9000  # over Neo4j's 8,164-byte index key and FalkorDB's 1 KB
    archive = await graph_archive(tmp_path, [node("fine"), node(too_long)], [edge("fine", too_long)])
    settings = load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path / "dst")})
    for dry_run in (True, False):
        with pytest.raises(DataError, match="node id 'NNN.*is 9000 bytes"):
            await import_archive(settings, ImportPlan(archive, workspace="refused_rt", profile="neo4j,files", dry_run=dry_run))
    assert not (tmp_path / "dst" / "refused_rt").exists()  # the files part was not written either
    got = await snapshot_records(settings, "neo4j,files", "refused_rt")
    assert got["graph/nodes"] == {} and got["kv/full_docs"] == {}
