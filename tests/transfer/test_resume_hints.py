"""An import suggests `--resume` only where resuming can get past the failure: a server lost (or
silent, or Ctrl-C). A deterministic failure -- the server refusing a statement, a permission -- would
stop a resumed import at the same place, and says nothing about resuming.

The failures are the real server's: a trigger on a table the import writes raises an error, or ends
its own session (pg_terminate_backend: the server drops the connection mid-import)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = {"EMBEDDING_MODEL": "demo-hash-embed", "EMBEDDING_DIM": "16"}  # the sample workspace's
TABLE = "lightrag_doc_status"


@pytest.fixture
def sample_archive(cli, tmp_path) -> Path:
    work = tmp_path / "rag_storage"
    shutil.copytree(REPO / "examples" / "sample_workspace", work / "ws1")
    out = tmp_path / "ws1.ragstore"
    done = cli("export", "--workspace", "ws1", "--profile", "files", "-o", str(out),
               env={"WORKING_DIR": str(work), **MODEL})
    assert done.exit_code == 0, done.output
    return out


def _trigger(pg_server, database: str, body: str) -> None:
    """Every row written for workspace 'w' into TABLE runs `body` (plpgsql) first."""
    pg_server.psql(f"""
        CREATE OR REPLACE FUNCTION ragstore_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.workspace = 'w' THEN {body} END IF; RETURN NEW; END $$;
        CREATE TRIGGER ragstore_test_fault BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION ragstore_test_fault();
    """, database=database)


def _import(cli, archive: Path, env: dict[str, str], *extra: str, workspace: str = "w"):
    return cli("import", str(archive), "--to", "postgres", "--workspace", workspace, *extra, env={**env, **MODEL})


@pytest.fixture
def target(cli, pg_database, sample_archive) -> dict[str, str]:
    """A database whose tables exist (an import into another workspace made them)."""
    done = _import(cli, sample_archive, pg_database, workspace="other")
    assert done.exit_code == 0, done.output
    return pg_database


@pytest.mark.parametrize("sqlstate, meaning", [("42501", "permission denied"), ("P0001", "a statement refused")])
def test_a_deterministic_failure_does_not_suggest_resuming(cli, pg_server, target, sample_archive, sqlstate, meaning):
    _trigger(pg_server, target["POSTGRES_DATABASE"],
             f"RAISE EXCEPTION 'refused by the test ({meaning})' USING ERRCODE = '{sqlstate}';")
    failed = _import(cli, sample_archive, target)
    assert failed.exit_code == 1, failed.output
    assert f"refused by the test ({meaning})" in failed.stderr
    assert "resume" not in failed.stderr and "Traceback" not in failed.stderr


def test_a_lost_connection_suggests_resuming_and_resuming_finishes(cli, pg_server, target, sample_archive):
    _trigger(pg_server, target["POSTGRES_DATABASE"], "PERFORM pg_terminate_backend(pg_backend_pid());")
    failed = _import(cli, sample_archive, target)
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.startswith("error: postgres: ")
    assert f"hint: finish it with: ragstore import {sample_archive} --profile postgres --workspace w --resume" in failed.stderr
    pg_server.psql(f"DROP TRIGGER ragstore_test_fault ON {TABLE}", database=target["POSTGRES_DATABASE"])
    resumed = _import(cli, sample_archive, target, "--resume")
    assert resumed.exit_code == 0, resumed.output


async def test_the_library_says_the_same_without_the_cli(pg_server, target, sample_archive):
    """import_archive outside a CLI command (no guard watching the servers) gives the same hints."""
    from ragstore_cli.config import load_settings
    from ragstore_cli.errors import RagstoreError
    from ragstore_cli.engine import ImportPlan, import_archive

    settings = load_settings(environ={**target, **MODEL})
    _trigger(pg_server, target["POSTGRES_DATABASE"], "PERFORM pg_terminate_backend(pg_backend_pid());")
    with pytest.raises(RagstoreError) as lost:
        await import_archive(settings, ImportPlan(sample_archive, workspace="w", profile="postgres"))
    assert "--resume" in (lost.value.hint or ""), lost.value
    pg_server.psql("CREATE OR REPLACE FUNCTION ragstore_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.workspace = 'w' THEN RAISE EXCEPTION 'no' USING ERRCODE = '42501'; END IF; RETURN NEW; END $$",
                   database=target["POSTGRES_DATABASE"])
    with pytest.raises(RagstoreError) as refused:
        await import_archive(settings, ImportPlan(sample_archive, workspace="w", profile="postgres", resume=True))
    assert "resume" not in (refused.value.hint or "") + str(refused.value)
