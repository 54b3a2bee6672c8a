"""Leftovers and no-ops that look like success.

`workspace drop` removes every trace ragstore keeps of a workspace — the import ledger and staging
a killed import left (files, PostgreSQL, Redis), Redis keys it staged, the transfer journal — so a
later import into that name goes through without flags. A workspace that exists nowhere is not
"dropped" and not "exported": one clear line, exit 2, nothing written (`--allow-empty` exports an
empty workspace on purpose).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import redis

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from tests.faults.conftest import SRC
from tests.faults.harness import Fault

MODEL = "fake-embed"


def one_line_error(result, code: int, text: str) -> None:
    assert result.code == code, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and text in errors[0], result.describe()
    assert "Traceback" not in result.stderr


def killed_import(runner, archive: Path, env: dict[str, str], profile: str, ws: str, point: str) -> None:
    args = ["import", str(archive), "--to", profile, "--workspace", ws, "--batch-size", "5"]
    killed = runner.run(args, env, extra_env={"FAULTWRAP_POINT": point})
    assert killed.killed, killed.describe()
    blocked = runner.run(args, env)
    one_line_error(blocked, 2, "was interrupted")  # the trace a drop must remove
    assert "--resume" in blocked.stderr  # here resuming helps, and the hint says so


def drop_then_import(runner, archive: Path, env: dict[str, str], profile: str, ws: str) -> None:
    dropped = runner.run(["workspace", "drop", ws, "--yes", "--profile", profile, "--json"], env)
    assert dropped.code == 0, dropped.describe()
    assert json.loads(dropped.stdout)["traces"], dropped.stdout
    again = runner.run(["import", str(archive), "--to", profile, "--workspace", ws, "--batch-size", "50"], env)
    assert again.code == 0, again.describe()  # no --resume, no --if-exists replace needed


def test_drop_removes_a_files_import_ledger_and_staging(runner, archive, tmp_path):
    env = {"WORKING_DIR": str(tmp_path / "wd"), "EMBEDDING_MODEL": MODEL}
    killed_import(runner, archive, env, "files", "w", "commit:kv/text_chunks")
    assert (tmp_path / "wd" / ".ragstore-import.w").is_dir()
    drop_then_import(runner, archive, env, "files", "w")
    assert not (tmp_path / "wd" / ".ragstore-import.w").exists()


def test_drop_removes_a_postgres_import_ledger(runner, archive, pg_database):
    env = {**pg_database, "EMBEDDING_MODEL": MODEL}
    killed_import(runner, archive, env, "postgres", "w", "inside:kv/text_chunks:0")
    drop_then_import(runner, archive, env, "postgres", "w")


def test_drop_removes_a_redis_import_ledger_and_staged_keys(runner, archive, redis_env, tmp_path):
    ws = "lo" + uuid.uuid4().hex[:8]
    profile = "kv=redis,doc_status=redis,vector=files,graph=files"
    env = {**redis_env, "WORKING_DIR": str(tmp_path / "wd"), "EMBEDDING_MODEL": MODEL}
    client = redis.Redis.from_url(redis_env["REDIS_URI"])
    try:
        killed_import(runner, archive, env, profile, ws, "batch:kv/text_chunks:2")  # full_docs in, text_chunks staged
        def indexes() -> list[bytes]:  # the SETs listing what each import staged
            return [k for k in client.scan_iter("__ragstore_import:*") if k.count(b":") == 1
                    and (client.srandmember(k) or b"").startswith(f"{ws}_".encode())]

        staged = [k for k in client.scan_iter("__ragstore_import:*") if f":{ws}_".encode() in k]
        assert staged and indexes() and client.exists(f"ragstore:import_ledger:{ws}")
        dropped = runner.run(["workspace", "drop", ws, "--yes", "--profile", profile], env)
        assert dropped.code == 0, dropped.describe()
        assert not [k for k in client.scan_iter("__ragstore_import:*") if f":{ws}_".encode() in k]
        assert not indexes()
        assert not client.exists(f"ragstore:import_ledger:{ws}") and not list(client.scan_iter(f"{ws}_*"))
        again = runner.run(["import", str(archive), "--to", profile, "--workspace", ws], env)
        assert again.code == 0, again.describe()
    finally:
        for key in list(client.scan_iter(f"{ws}_*")) + [f"ragstore:import_ledger:{ws}".encode()]:
            client.delete(key)
        client.close()


def test_drop_removes_the_journal_of_an_unfinished_copy(runner, source, tmp_path):
    from ragstore_cli.engine.ledger import JOURNAL_PREFIX as PREFIX
    from ragstore_cli.coordination import open_coordinator

    wd = tmp_path / "wd"
    shutil.copytree(source.working_dir / SRC, wd / SRC)
    env = {"WORKING_DIR": str(wd)}
    killed = runner.run(["workspace", "copy", SRC, "dst", "--profile", "files"], env,
                        fault=Fault(("shutil:copy2",), 2, "before"))
    assert killed.killed, killed.describe()

    def journal() -> int:
        async def read() -> int:
            coordinator = open_coordinator(load_settings(environ=env))
            try:
                return (await coordinator.backend.get_data(PREFIX + "dst"))[0]
            finally:
                await coordinator.close()
        return asyncio.run(read())

    assert journal() > 0
    dropped = runner.run(["workspace", "drop", "dst", "--yes", "--profile", "files"], env)
    assert dropped.code == 0, dropped.describe()
    assert journal() == 0  # not an emptied note: no record at all
    assert not list((wd / ".ragstore" / "namespaces").glob("*.json"))


def test_drop_and_export_of_a_workspace_that_does_not_exist(runner, archive, tmp_path):
    wd = tmp_path / "wd"
    env = {"WORKING_DIR": str(wd), "EMBEDDING_MODEL": MODEL}
    one_line_error(runner.run(["workspace", "drop", "nosuch", "--yes", "--profile", "files"], env), 2, "nosuch")
    assert not wd.exists()  # refused before anything, not even a lock folder
    out = tmp_path / "nosuch.ragstore"
    one_line_error(runner.run(["export", "--from", "files", "-w", "nosuch", "-o", str(out)], env), 2, "holds no records")
    assert not out.exists() and not (wd / "nosuch").exists()
    assert not list(tmp_path.glob(".ragstore-spool*")) and not list(tmp_path.glob("*.partial"))
    empty = runner.run(["export", "--from", "files", "-w", "nosuch", "-o", str(out), "--allow-empty", "--json"], env)
    assert empty.code == 0, empty.describe()
    assert sum(ArchiveReader(out).manifest.counts().values()) == 0


def test_drop_of_a_missing_postgres_workspace_is_refused(runner, pg_database, tmp_path):
    env = {**pg_database, "WORKING_DIR": str(tmp_path / "wd")}
    one_line_error(runner.run(["workspace", "drop", "nosuch", "--yes", "--profile", "postgres"], env), 2, "nosuch")
