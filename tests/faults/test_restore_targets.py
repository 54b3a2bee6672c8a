"""Restores that land where LightRAG looks.

A PostgreSQL export restored into the same database (EMBEDDING_MODEL unset, as in the dev env
file) must replace the rows in the tables they came from — not create `…_fake_embed_16d_16d` ones —
and its dry run must count what the import writes and what the target holds. Exports record the
data's model and dimension, say so, and refuse to skip vectors a configured EMBEDDING_DIM hides.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive
from tests.faults.conftest import SRC

MODEL = "fake-embed"


async def vector_tables(env: dict[str, str], workspace: str) -> dict[str, int]:
    conn = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                                 password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DATABASE"])
    try:
        names = [r[0] for r in await conn.fetch("SELECT relname FROM pg_class WHERE relkind = 'r' "
                                                "AND relname LIKE 'lightrag\\_vdb\\_%' ORDER BY 1")]
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t} WHERE workspace = $1", workspace) for t in names}
    finally:
        await conn.close()


async def test_a_postgres_export_restores_into_the_tables_it_came_from(pg_database, archive, tmp_path):
    await import_archive(load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL}), ImportPlan(archive, workspace="w", profile="postgres", batch_size=50))
    before = await vector_tables(pg_database, "w")
    assert set(before) == {"lightrag_vdb_chunks_fake_embed_16d", "lightrag_vdb_entity_fake_embed_16d",
                           "lightrag_vdb_relation_fake_embed_16d"}
    plain = load_settings(environ=pg_database)  # no EMBEDDING_MODEL, no EMBEDDING_DIM
    backup = tmp_path / "backup.ragstore"
    exported = await export_workspace(plain, ExportPlan(backup, workspace="w", profile="postgres"))
    assert exported.embedding == {"model": "fake_embed", "dim": 16}  # the table's model, without `_16d`
    total = sum(exported.counts.values())

    dry = await import_archive(plain, ImportPlan(backup, workspace="w", profile="postgres", if_exists="replace",
                                                 dry_run=True))
    assert dry.existing_records == total  # the vectors are found where they are
    assert any("lightrag_vdb_chunks_fake_embed_16d" in w.lower() for w in dry.warnings), dry.warnings
    done = await import_archive(plain, ImportPlan(backup, workspace="w", profile="postgres", if_exists="replace"))
    assert done.counts == dry.counts and sum(done.counts.values()) == total
    assert await vector_tables(pg_database, "w") == before  # the same tables, the same rows: nothing new


async def test_export_checks_embedding_dim_against_the_data(pg_database, source, archive, tmp_path):
    await import_archive(load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL}), ImportPlan(archive, workspace="w", profile="postgres", batch_size=50))
    wrong = load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL, "EMBEDDING_DIM": "8"})
    with pytest.raises(UsageError, match="lightrag_vdb_chunks_fake_embed_16d \\(dimension 16\\)"):
        await export_workspace(wrong, ExportPlan(tmp_path / "pg.ragstore", workspace="w", profile="postgres"))
    assert not (tmp_path / "pg.ragstore").exists()

    files = load_settings(environ={"WORKING_DIR": str(source.working_dir), "EMBEDDING_MODEL": MODEL,
                                   "EMBEDDING_DIM": "8"})
    report = await export_workspace(files, ExportPlan(tmp_path / "f.ragstore", workspace=SRC, profile="files"))
    assert report.embedding["dim"] == 16 == ArchiveReader(tmp_path / "f.ragstore").manifest.embedding["dim"]
    assert any("EMBEDDING_DIM=8" in w and "records 16" in w for w in report.warnings), report.warnings


async def test_the_archive_records_the_model_of_the_data(pg_database, source, archive, tmp_path):
    await import_archive(load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL}), ImportPlan(archive, workspace="w", profile="postgres", batch_size=50))
    other = load_settings(environ={**pg_database, "EMBEDDING_MODEL": "another-model"})
    report = await export_workspace(other, ExportPlan(tmp_path / "o.ragstore", workspace="w", profile="postgres"))
    assert report.embedding["model"] == "fake_embed"
    assert any("another-model" in w and "'fake_embed'" in w for w in report.warnings), report.warnings

    named = load_settings(environ={"WORKING_DIR": str(source.working_dir), "EMBEDDING_MODEL": MODEL})
    assert (await export_workspace(named, ExportPlan(tmp_path / "n.ragstore", workspace=SRC, profile="files"))).embedding == \
        {"model": MODEL, "dim": 16}
    unnamed = load_settings(environ={"WORKING_DIR": str(source.working_dir)})
    report = await export_workspace(unnamed, ExportPlan(tmp_path / "u.ragstore", workspace=SRC, profile="files"))
    assert report.embedding == {"model": None, "dim": 16}
    assert any("records no embedding model" in w for w in report.warnings), report.warnings


def test_export_prints_the_embedding_it_records(cli, source, tmp_path: Path):
    env = {"WORKING_DIR": str(source.working_dir), "EMBEDDING_MODEL": MODEL}
    result = cli("export", "--from", "files", "-w", SRC, "-o", str(tmp_path / "p.ragstore"), env=env)
    assert result.exit_code == 0, result.output
    assert "embedding recorded: model 'fake-embed', dimension 16 (the data's)" in result.stdout
