"""files → archive → files, with a workspace built by LightRAG 1.5.7's own pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive
from tests.interop.lightrag_builder import KV_NS, VECTOR_NS, read_with_lightrag
from tests.transfer.conftest import SRC
from tests.transfer.helpers import assert_same, snapshot_records




def file_ids(folder: Path) -> dict[str, list[str]]:
    ids = {}
    for ns in (*KV_NS, "doc_status"):
        ids[ns] = list(json.loads((folder / f"kv_store_{ns}.json").read_text(encoding="utf-8")))
    for ns in VECTOR_NS:
        ids[ns] = [r["__id__"] for r in json.loads((folder / f"vdb_{ns}.json").read_text(encoding="utf-8"))["data"]]
    return ids


async def test_files_archive_files_equal_and_lightrag_reads_it(built, tmp_path: Path) -> None:
    src = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    out = tmp_path / "src.ragstore"
    report = await export_workspace(src, ExportPlan(out, workspace=SRC, profile="files", batch_size=3))
    ids = file_ids(built.folder)
    for ns in KV_NS:
        assert report.counts[f"kv/{ns}"] == len(ids[ns]) > 0, ns
    for ns in VECTOR_NS:
        assert report.counts[f"vectors/{ns}"] == len(ids[ns]) > 0, ns
    manifest = ArchiveReader(out).manifest
    assert manifest.embedding == {"model": "fake-embed", "dim": 16}
    assert manifest.source["workspace"] == SRC
    assert manifest.source["not_carried"]["vectors/entities"] == ["description", "entity_type"]

    dst = load_settings(environ={"WORKING_DIR": str(tmp_path / "restored")})
    imported = await import_archive(dst, ImportPlan(out, workspace="copy", profile="files", batch_size=4))
    assert imported.counts == {k: v for k, v in report.counts.items()}
    folder = tmp_path / "restored" / "copy"
    assert not list((tmp_path / "restored").glob(".ragstore-import*"))  # staging removed
    assert not (folder / ".ragstore-import-ledger.json").exists()
    for ns in (*KV_NS, "doc_status"):  # JSON KV and doc status: byte-identical to LightRAG's files
        name = f"kv_store_{ns}.json"
        assert (folder / name).read_bytes() == (built.folder / name).read_bytes(), name
    assert_same(await snapshot_records(src, "files", SRC), await snapshot_records(dst, "files", "copy"))
    original = await read_with_lightrag(built.working_dir, SRC, ids)
    restored = await read_with_lightrag(tmp_path / "restored", "copy", ids)
    for key in original:
        assert restored[key] == original[key], key
    assert len(restored["vectors:chunks"]) == len(ids["chunks"])


async def test_if_exists_fail_replace_merge_and_dry_run(built, tmp_path: Path) -> None:
    src = load_settings(environ={"WORKING_DIR": str(built.working_dir)})
    out = tmp_path / "src.ragstore"
    await export_workspace(src, ExportPlan(out, workspace=SRC, profile="files"))
    dst = load_settings(environ={"WORKING_DIR": str(tmp_path / "t")})
    first = await import_archive(dst, ImportPlan(out, profile="files"))  # default: the archive's workspace
    assert first.workspace == SRC
    before = await snapshot_records(dst, "files", SRC)
    with pytest.raises(UsageError, match="already holds"):
        await import_archive(dst, ImportPlan(out, profile="files"))
    dry = await import_archive(dst, ImportPlan(out, profile="files", if_exists="replace", dry_run=True))
    assert dry.dry_run and dry.existing_records > 0
    # replace drops what the archive does not hold: add a stray record first
    stray = tmp_path / "t" / SRC / "kv_store_full_docs.json"
    doc = json.loads(stray.read_text("utf-8"))
    doc["doc-stray"] = {"content": "x"}
    stray.write_text(json.dumps(doc), "utf-8")
    await import_archive(dst, ImportPlan(out, profile="files", if_exists="merge"))
    merged = await snapshot_records(dst, "files", SRC)
    assert "doc-stray" in merged["kv/full_docs"]
    await import_archive(dst, ImportPlan(out, profile="files", if_exists="merge"))  # idempotent
    assert await snapshot_records(dst, "files", SRC) == merged
    await import_archive(dst, ImportPlan(out, profile="files", if_exists="replace"))
    assert await snapshot_records(dst, "files", SRC) == before


async def test_model_and_dimension_mismatch(built, tmp_path: Path) -> None:
    src = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    out = tmp_path / "src.ragstore"
    await export_workspace(src, ExportPlan(out, workspace=SRC, profile="files"))
    wrong_model = load_settings(environ={"WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "bge-m3"})
    with pytest.raises(UsageError, match="made with model 'fake-embed'"):
        await import_archive(wrong_model, ImportPlan(out, profile="files"))
    relabeled = await import_archive(wrong_model, ImportPlan(out, profile="files", embedding_model="bge-m3"))
    assert relabeled.embedding == {"model": "bge-m3", "dim": 16}
    wrong_dim = load_settings(environ={"WORKING_DIR": str(tmp_path / "u"), "EMBEDDING_DIM": "32"})
    with pytest.raises(UsageError, match="dimension 16"):
        await import_archive(wrong_dim, ImportPlan(out, profile="files"))
    assert not (tmp_path / "u").exists()
