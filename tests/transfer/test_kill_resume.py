"""An import SIGKILLed at several points: the target is untouched, or `--resume` completes it with
nothing lost and nothing doubled. The kill points are the engine's named points (Observer.point), where the
child is stopped by tests/faults/faultwrap.py (FAULTWRAP_POINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.engine import Callbacks, ExportPlan, ImportPlan, export_workspace
from tests.transfer.conftest import SRC
from tests.transfer.helpers import assert_same, snapshot_records


FAULTS = Path(__file__).resolve().parents[1] / "faults"
REPO = FAULTS.parents[1]


def ragstore(args: list[str], env: dict[str, str], fault: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process; with `fault`, SIGKILLed at that named point of the engine's run."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "WORKING_DIR", "FAULTWRAP_"))}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(FAULTS), str(REPO)])
    if fault:
        full["FAULTWRAP_POINT"] = fault
    return subprocess.run([sys.executable, "-c", "import faultwrap; faultwrap.main()", *args], env=full,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
async def archive(built, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kill") / "src.ragstore"
    files = load_settings(environ={"WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": "fake-embed"})
    await export_workspace(files, ExportPlan(out, workspace=SRC, profile="files", batch_size=2))
    return out


@pytest.mark.parametrize("fault", ["batch:kv/text_chunks:1", "commit:doc_status", "swap:during"])
async def test_files_import_killed_then_resumed(built, archive: Path, tmp_path: Path, fault: str) -> None:
    env = {"WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    args = ["import", str(archive), "--to", "files", "--workspace", "w", "--batch-size", "2"]
    killed = ragstore([*args, "--if-exists", "replace"], env, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    target = tmp_path / "t" / "w"
    if not fault.startswith("swap:during"):
        assert not target.exists() or not any(target.iterdir()), "the target must be untouched"
    again = ragstore(args, env)  # without --resume: refused, naming the way out
    assert again.returncode == 2 and "--resume" in again.stderr
    done = ragstore([*args, "--resume"], env)
    assert done.returncode == 0, done.stderr
    assert not list((tmp_path / "t").glob(".ragstore-import*"))
    src = load_settings(environ={"WORKING_DIR": str(built.working_dir)})
    dst = load_settings(environ={"WORKING_DIR": str(tmp_path / "t")})
    assert_same(await snapshot_records(src, "files", SRC), await snapshot_records(dst, "files", "w"))


@pytest.mark.parametrize("fault", ["inside:vectors/chunks:1", "batch:graph/edges:1", "commit:kv/full_docs"])
async def test_postgres_import_killed_then_resumed(built, archive: Path, pg_database, fault: str) -> None:
    env = {**pg_database, "EMBEDDING_MODEL": "fake-embed"}
    args = ["import", str(archive), "--to", "postgres", "--workspace", "w", "--batch-size", "2", "--if-exists", "replace"]
    pg = load_settings(environ=env)
    killed = ragstore(args, env, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = await snapshot_records(pg, "postgres", "w")
    # every section shares the import's one transaction: nothing of the killed import is visible
    assert not any(partial.values()), {k: len(v) for k, v in partial.items() if v}
    done = ragstore([*args, "--resume"], env)
    assert done.returncode == 0, done.stderr
    clean = ragstore([*args[:5], "ref", *args[6:]], env)  # the same import, never interrupted
    assert clean.returncode == 0, clean.stderr
    reference = await snapshot_records(pg, "postgres", "ref")
    assert sum(len(v) for v in reference.values()) > 50
    assert await snapshot_records(pg, "postgres", "w") == reference
    again = ragstore([*args[:-2], "--if-exists", "merge"], env)  # re-import with merge: nothing doubles
    assert again.returncode == 0, again.stderr
    assert await snapshot_records(pg, "postgres", "w") == reference


async def test_postgres_target_goes_away_mid_import(built, archive: Path, pg_server, pg_database) -> None:
    """The server drops the importer's connections inside the chunk vectors: one-line error, nothing
    written (all sections share one transaction), resumable from the start."""
    from ragstore_cli.errors import RagstoreError
    from ragstore_cli.engine import ExportPlan, ImportPlan, import_archive

    env = {**pg_database, "EMBEDDING_MODEL": "fake-embed"}
    pg = load_settings(environ=env)
    database = pg_database["POSTGRES_DATABASE"]
    fired = []

    def cut(key: str, records: int, nbytes: int) -> None:
        if key == "vectors/chunks" and records and not fired:
            fired.append(key)
            pg_server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
                           "AND pid <> pg_backend_pid()")

    with pytest.raises(RagstoreError) as info:
        await import_archive(pg, ImportPlan(archive, workspace="w", profile="postgres", if_exists="replace",
                                            batch_size=2), Callbacks(progress=cut))
    assert fired and "\n" not in str(info.value)
    partial = await snapshot_records(pg, "postgres", "w")
    assert not any(partial.values())  # the import's one transaction died with the connection
    report = await import_archive(pg, ImportPlan(archive, workspace="w", profile="postgres", resume=True, batch_size=2))
    assert report.skipped == [] and report.counts["kv/full_docs"] > 0 and report.counts["vectors/chunks"] > 0
    await import_archive(pg, ImportPlan(archive, workspace="ref", profile="postgres", batch_size=2))
    assert await snapshot_records(pg, "postgres", "w") == await snapshot_records(pg, "postgres", "ref")


MIXED = "kv=postgres,vector=postgres,doc_status=postgres,graph=files"


@pytest.mark.parametrize("fault", ["commit:doc_status", "inside:vectors/chunks:1"])
async def test_mixed_postgres_files_import_killed_is_atomic_per_backend(built, archive: Path, pg_database, tmp_path: Path,
                                                                        fault: str) -> None:
    """PostgreSQL sections commit together at the end; the files graph commits on its own and the
    PostgreSQL ledger (own connection) lists it, so --resume redoes only the PostgreSQL part."""
    env = {**pg_database, "WORKING_DIR": str(tmp_path / "t"), "EMBEDDING_MODEL": "fake-embed"}
    args = ["import", str(archive), "--to", MIXED, "--workspace", "w", "--batch-size", "2", "--if-exists", "replace"]
    settings = load_settings(environ=env)
    killed = ragstore(args, env, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = await snapshot_records(settings, MIXED, "w")
    assert not any(v for k, v in partial.items() if not k.startswith("graph/")), "PostgreSQL must be untouched"
    if "vectors" in fault:  # sections run kv, doc_status, graph, vectors
        assert partial["graph/nodes"]  # the files graph committed before the kill
    done = ragstore([*args, "--resume", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["skipped"] == (["graph/edges", "graph/nodes"] if "vectors" in fault else [])
    clean = ragstore([*args[:5], "ref", *args[6:]], env)
    assert clean.returncode == 0, clean.stderr
    assert_same(await snapshot_records(settings, MIXED, "ref"), await snapshot_records(settings, MIXED, "w"))
