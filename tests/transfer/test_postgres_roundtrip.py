"""files → archive → PostgreSQL → archive → files, equal records, and LightRAG 1.5.7 reading the PG copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive
from tests.interop.lightrag_builder import KV_NS, PG_STORAGES, VECTOR_NS, read_with_lightrag
from tests.transfer.conftest import SRC
from tests.transfer.helpers import PG_REWRITES, assert_same, snapshot_records





def ids_of(folder: Path) -> dict[str, list[str]]:
    ids = {}
    for ns in (*KV_NS, "doc_status"):
        ids[ns] = list(json.loads((folder / f"kv_store_{ns}.json").read_text(encoding="utf-8")))
    for ns in VECTOR_NS:
        ids[ns] = [r["__id__"] for r in json.loads((folder / f"vdb_{ns}.json").read_text(encoding="utf-8"))["data"]]
    return ids


async def test_files_postgres_files(built, pg_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    first = tmp_path / "first.ragstore"
    await export_workspace(files, ExportPlan(first, workspace=SRC, profile="files"))

    pg = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "fake-embed"})
    report = await import_archive(pg, ImportPlan(first, workspace=SRC, profile="postgres", batch_size=5))
    assert report.counts["vectors/chunks"] == len(ids_of(built.folder)["chunks"])
    with pytest.raises(UsageError, match="already holds"):
        await import_archive(pg, ImportPlan(first, workspace=SRC, profile="postgres"))

    second = tmp_path / "second.ragstore"
    await export_workspace(pg, ExportPlan(second, workspace=SRC, profile="postgres"))
    m1, m2 = ArchiveReader(first).manifest, ArchiveReader(second).manifest
    assert m1.counts() == m2.counts()
    assert m2.embedding == {"model": "fake-embed", "dim": 16}

    back = load_settings(environ={"WORKING_DIR": str(tmp_path / "back")})
    await import_archive(back, ImportPlan(second, workspace=SRC, profile="files"))
    original = await snapshot_records(files, "files", SRC)
    restored = await snapshot_records(back, "files", SRC)
    assert_same(original, restored, ignore=PG_REWRITES)

    # LightRAG 1.5.7's own PG classes read what ragstore imported
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    ids = ids_of(built.folder)
    via_pg = await read_with_lightrag(tmp_path / "lr", SRC, ids, storages=PG_STORAGES, model="fake-embed")
    via_files = await read_with_lightrag(built.working_dir, SRC, ids)
    for ns in ("full_docs", "text_chunks", "full_entities", "entity_chunks"):
        assert set(via_pg[ns]) == set(via_files[ns]) and via_pg[ns], ns
        for rid in via_files[ns]:
            assert via_pg[ns][rid]["content" if ns in ("full_docs", "text_chunks") else "count"] == \
                via_files[ns][rid]["content" if ns in ("full_docs", "text_chunks") else "count"]
    assert set(via_pg["doc_status"]) == set(via_files["doc_status"])
    for ns in VECTOR_NS:
        assert set(via_pg["vectors:" + ns]) == set(ids[ns]), ns
    assert set(via_pg["nodes"]) == set(via_files["nodes"])
    assert set(via_pg["edges"]) == set(via_files["edges"])


async def test_merge_reimport_is_idempotent_and_dimension_checked(built, pg_database, tmp_path: Path) -> None:
    files = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    out = tmp_path / "a.ragstore"
    await export_workspace(files, ExportPlan(out, workspace=SRC, profile="files"))
    pg = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "fake-embed"})
    await import_archive(pg, ImportPlan(out, workspace="m", profile="postgres", if_exists="merge"))
    once = await snapshot_records(pg, "postgres", "m")
    await import_archive(pg, ImportPlan(out, workspace="m", profile="postgres", if_exists="merge"))
    assert await snapshot_records(pg, "postgres", "m") == once
    wrong = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "fake-embed", "EMBEDDING_DIM": "8"})
    with pytest.raises(UsageError, match="dimension 16"):
        await import_archive(wrong, ImportPlan(out, workspace="m", profile="postgres", if_exists="replace"))
