"""files → archive → Bolt graph (FalkorDB, or Neo4j when RAGSTORE_TEST_NEO4J_URI is set) → archive → files."""

from __future__ import annotations

from pathlib import Path

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from ragstore_cli.transfer import export_workspace, import_archive
from tests.transfer.conftest import SRC
from tests.transfer.helpers import assert_same, snapshot_records


async def test_files_neo4j_files(built, bolt_env, tmp_path: Path) -> None:
    files = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    first = tmp_path / "first.ragstore"
    await export_workspace(files, first, workspace=SRC, profile="files")
    mixed = load_settings(environ={**bolt_env, "WORKING_DIR": str(tmp_path / "mid"), "EMBEDDING_MODEL": "fake-embed"})
    ws = "bolt_rt"
    report = await import_archive(mixed, first, workspace=ws, profile="neo4j,files", if_exists="replace", batch_size=4)
    assert report.counts["graph/nodes"] > 5 and report.counts["graph/edges"] > 5
    in_bolt = await snapshot_records(mixed, "neo4j,files", ws)
    assert not (tmp_path / "mid" / ws / "graph_chunk_entity_relation.graphml").exists()  # the graph went to Bolt
    second = tmp_path / "second.ragstore"
    await export_workspace(mixed, second, workspace=ws, profile="neo4j,files")
    assert ArchiveReader(second).manifest.counts() == ArchiveReader(first).manifest.counts()
    back = load_settings(environ={"WORKING_DIR": str(tmp_path / "back")})
    await import_archive(back, second, workspace=SRC, profile="files")
    original = await snapshot_records(files, "files", SRC)
    assert_same(original, await snapshot_records(back, "files", SRC))
    assert_same(original, in_bolt)
    # merge re-import into Bolt changes nothing
    await import_archive(mixed, first, workspace=ws, profile="neo4j,files", if_exists="merge")
    assert_same(in_bolt, await snapshot_records(mixed, "neo4j,files", ws))
