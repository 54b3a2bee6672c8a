"""`ragstore transfer`: a workspace moved between profiles with no archive on disk, with the guarantees of
export + import — the same records as an export imported, a dry run that writes nothing, --if-exists,
atomic per backend, --resume after a kill, the target read back and compared before it commits, and
a source that changes while it is read refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.engine import ExportPlan, ImportPlan, TransferPlan, export_workspace, import_archive, transfer_workspace
from ragstore_cli.errors import DataError, UsageError
from tests.transfer.conftest import SRC
from tests.transfer.helpers import PG_REWRITES, assert_same, snapshot_records

MODEL = "fake-embed"
FAULTS = Path(__file__).resolve().parents[1] / "faults"


def settings_for(pg_database: dict[str, str], working_dir: Path) -> object:
    return load_settings(environ={**pg_database, "WORKING_DIR": str(working_dir), "EMBEDDING_MODEL": MODEL})


async def reference(settings, tmp_path: Path, workspace: str) -> None:
    """The same workspace the long way: export from files, import into PostgreSQL."""
    archive = tmp_path / "ref.ragstore"
    await export_workspace(settings, ExportPlan(archive, workspace=SRC, profile="files"))
    await import_archive(settings, ImportPlan(archive, workspace=workspace, profile="postgres"))


async def test_files_to_postgres_holds_what_export_then_import_holds(built, pg_database, tmp_path):
    settings = settings_for(pg_database, built.working_dir)
    report = await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, target_workspace="t",
                                                             batch_size=3))
    assert report.verified == report.counts and report.counts["vectors/chunks"] > 0
    assert report.consistency == {"files": "fingerprint"}
    await reference(settings, tmp_path, "ref")
    assert await snapshot_records(settings, "postgres", "t") == await snapshot_records(settings, "postgres", "ref")
    # and back into files under another name: what LightRAG's file storages hold again
    back = await transfer_workspace(settings, TransferPlan("postgres", "files", "t", target_workspace="back"))
    assert back.consistency == {"postgres": "snapshot"}
    assert back.dropped_fields == {"vectors/chunks": ["chunk_order_index", "tokens"]}  # NanoVectorDB keeps neither
    assert_same(await snapshot_records(settings, "files", SRC), await snapshot_records(settings, "files", "back"),
                ignore=PG_REWRITES)


async def test_a_dry_run_checks_everything_and_writes_nothing(built, pg_database, pg_server, tmp_path):
    settings = settings_for(pg_database, built.working_dir)
    dry = await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, dry_run=True))
    assert dry.dry_run and dry.counts["kv/full_docs"] > 0 and not dry.verified
    tables = pg_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                            database=pg_database["POSTGRES_DATABASE"])
    assert tables.strip() == "0"  # no schema, no ledger, no lock table
    files_target = load_settings(environ={"WORKING_DIR": str(tmp_path / "empty"), "EMBEDDING_MODEL": MODEL})
    with pytest.raises(UsageError, match="holds no records"):
        await transfer_workspace(files_target, TransferPlan("files", "postgres", "nosuch", dry_run=True))
    assert not (tmp_path / "empty").exists()


async def test_if_exists_refuses_replaces_and_merges_without_doubling(built, pg_database):
    settings = settings_for(pg_database, built.working_dir)
    first = await transfer_workspace(settings, TransferPlan("files", "postgres", SRC))
    with pytest.raises(UsageError, match="already holds") as refused:
        await transfer_workspace(settings, TransferPlan("files", "postgres", SRC))
    assert "--if-exists" in (refused.value.hint or "")
    once = await snapshot_records(settings, "postgres", SRC)
    for mode in ("replace", "merge"):
        again = await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, if_exists=mode))
        assert again.existing_records == sum(first.counts.values()) and again.verified
        assert await snapshot_records(settings, "postgres", SRC) == once


async def test_the_same_place_twice_is_refused(built, pg_database):
    settings = settings_for(pg_database, built.working_dir)
    with pytest.raises(UsageError, match="same workspace"):
        await transfer_workspace(settings, TransferPlan("files", "files", SRC))


async def test_a_target_that_reads_back_other_records_is_never_committed(built, pg_database, monkeypatch):
    """The read-back compares record ids with the source's: a target that lost one is refused, and
    PostgreSQL's one transaction leaves nothing."""
    from ragstore_cli.engine.workspaces import WorkspaceSession

    settings = settings_for(pg_database, built.working_dir)
    original = WorkspaceSession.identities

    async def lossy(self, key, batch_size=1000):
        dropped = False
        async for ids in original(self, key, batch_size):  # the real ids, as PostgreSQL lists them
            if key == "vectors/chunks" and not dropped:
                ids, dropped = ids[1:], True
            yield ids

    monkeypatch.setattr(WorkspaceSession, "identities", lossy)
    with pytest.raises(DataError, match="vectors/chunks: the target holds"):
        await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, target_workspace="lossy"))
    assert not any((await snapshot_records(settings, "postgres", "lossy")).values())


def ragstore(args: list[str], env: dict[str, str], fault: str | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "WORKING_DIR", "FAULTWRAP_"))}
    full.update(env, PYTHONPATH=os.pathsep.join([str(FAULTS), str(FAULTS.parents[1])]))
    if fault:
        full["FAULTWRAP_POINT"] = fault
    return subprocess.run([sys.executable, "-c", "import faultwrap; faultwrap.main()", *args], env=full,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("fault", ["inside:vectors/chunks:1", "commit:graph/edges"])
async def test_killed_then_resumed_equals_an_uninterrupted_transfer(built, pg_database, tmp_path, fault):
    env = {**pg_database, "WORKING_DIR": str(built.working_dir), "EMBEDDING_MODEL": MODEL}
    args = ["transfer", "--from", "files", "--to", "postgres", "--workspace", SRC, "--target-workspace", "k",
            "--batch-size", "2"]
    killed = ragstore(args, env, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    settings = load_settings(environ=env)
    assert not any((await snapshot_records(settings, "postgres", "k")).values())  # one transaction: nothing
    refused = ragstore(args, env)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    done = ragstore([*args, "--resume", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verified"]["vectors/chunks"] > 0
    await reference(settings, tmp_path, "kref")
    assert await snapshot_records(settings, "postgres", "k") == await snapshot_records(settings, "postgres", "kref")


async def test_a_source_written_to_while_it_is_read_is_refused(built, redis_env, pg_database, tmp_path):
    """Redis has no snapshot: each section is read again at the end and its digest compared; a write
    in between refuses the transfer before PostgreSQL commits anything."""
    from ragstore_cli.engine import Callbacks
    from tests.transfer.helpers import copy_between

    redis_profile = "kv=redis,vector=files,graph=files,doc_status=redis"
    settings = load_settings(environ={**redis_env, **pg_database, "WORKING_DIR": str(built.working_dir),
                                      "EMBEDDING_MODEL": MODEL})
    ws = "moving" + os.urandom(3).hex()
    await copy_between(settings, "files", SRC, redis_profile, ws)
    import redis

    client = redis.Redis.from_url(redis_env["REDIS_URI"])
    wrote: list[str] = []

    def write(key: str, records: int, nbytes: int) -> None:
        if key == "kv/llm_response_cache" and not wrote:
            wrote.append(key)
            client.set(f"{ws}_full_docs:intruder", json.dumps({"content": "x", "create_time": 1, "update_time": 1}))

    try:
        with pytest.raises(DataError, match="source changed during the transfer"):
            await transfer_workspace(settings, TransferPlan(redis_profile, "postgres", ws), Callbacks(progress=write))
        assert wrote and not any((await snapshot_records(settings, "postgres", ws)).values())
    finally:
        for key in client.scan_iter(f"{ws}_*"):
            client.delete(key)
        client.close()
        await asyncio.sleep(0)


class _Sections:
    """The sections each phase of a move went through (an Observer)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def phase(self, name, total=None, unit="records"): ...
    def phase_done(self, name): ...
    def progress(self, key, records, nbytes): ...
    def point(self, name): ...

    def section(self, key, records=None, nbytes=None):
        self.seen.append(key)


async def _set_chunk_vector(pg_database: dict[str, str], workspace: str, values: dict[int, float]) -> None:
    """Set components of one chunk vector of `workspace` in PostgreSQL (the rest kept)."""
    import asyncpg

    conn = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                 user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                 database=pg_database["POSTGRES_DATABASE"])
    try:
        table = await conn.fetchval("SELECT relname FROM pg_class WHERE relname LIKE 'lightrag_vdb_chunks_%' "
                                    "AND relkind = 'r'")
        row = await conn.fetchrow(f"SELECT id, content_vector::text AS v FROM {table} WHERE workspace = $1 "
                                  "ORDER BY id LIMIT 1", workspace)
        vector = json.loads(row["v"])
        for index, value in values.items():
            vector[index] = value
        await conn.execute(f"UPDATE {table} SET content_vector = $1::text::vector WHERE workspace = $2 AND id = $3",
                           json.dumps(vector), workspace, row["id"])
    finally:
        await conn.close()


async def test_into_files_vectors_within_float16_by_their_norm_are_not_read_twice(built, pg_database, tmp_path):
    """PostgreSQL bounds every component by the largest vector norm, so the float16 preflight of a files
    target reads no vector; a norm beyond float16 with every component within is read and let through."""
    settings = settings_for(pg_database, built.working_dir)
    await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, target_workspace="pg"))
    seen = _Sections()
    await transfer_workspace(settings, TransferPlan("postgres", "files", "pg", target_workspace="f1"), seen)
    assert not [k for k in seen.seen if k.startswith("read vectors/")], seen.seen
    await _set_chunk_vector(pg_database, "pg", {0: 60000.0, 1: -60000.0})  # norm 84,853: the bound says nothing
    seen = _Sections()
    report = await transfer_workspace(settings, TransferPlan("postgres", "files", "pg", target_workspace="f2"), seen)
    assert "read vectors/chunks" in seen.seen and report.verified == report.counts


@pytest.mark.parametrize("dry_run", [False, True])
async def test_into_files_a_component_beyond_float16_is_refused_before_writing(built, pg_database, dry_run):
    settings = settings_for(pg_database, built.working_dir)
    await transfer_workspace(settings, TransferPlan("files", "postgres", SRC, target_workspace="pg"))
    await _set_chunk_vector(pg_database, "pg", {3: 1e5})
    with pytest.raises(DataError, match="vectors/chunks: vectors reach 1e\\+05, beyond float16"):
        await transfer_workspace(settings, TransferPlan("postgres", "files", "pg", target_workspace="f", dry_run=dry_run))
    assert not (built.working_dir / "f").exists()
    assert not any((await snapshot_records(settings, "files", "f")).values())
