"""`ragstore export` SIGKILLed at seeded points (files → archive, PostgreSQL → archive).

After each kill: the source is byte-for-byte unchanged (every file / every table row), the output
path holds either nothing or a complete archive that verifies, and a re-run writes an archive
whose records equal a clean export's, section by section.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import load_settings
from tests.faults import harness
from tests.faults.conftest import SRC
from tests.faults.harness import Fault, compare, fault_record, kill_points

K = int(os.environ.get("RAGSTORE_FAULT_POINTS", "20"))
ARCHIVE_HOOKS = (
    "ragstore_cli.archive.writer:SectionWriter.write", "ragstore_cli.archive.writer:_MemberFile.close",
    "ragstore_cli.archive.writer:ArchiveWriter._write_tar", "tarfile:TarFile.addfile", "os:replace", "os:fsync",
    "os:link",  # the final publish: link(2), which never replaces an archive already there
)
FILES_HOOKS = ARCHIVE_HOOKS + ("ragstore_cli.backends.files.jsonfile:iter_members",)
PG_HOOKS = ARCHIVE_HOOKS + ("asyncpg.cursor:Cursor.fetch",)


def archive_records(path: Path) -> dict[str, Any]:
    """Every record of an archive (after a full verify): {section: {id: value}}; vectors hashed."""
    reader = ArchiveReader(path)
    reader.verify()
    out: dict[str, Any] = {}
    for section in reader.sections(50):
        rows: dict[Any, Any] = {}
        for batch in section.batches():
            if hasattr(batch, "ids"):
                vectors = np.asarray(batch.vectors, dtype=np.float32)
                for i, rid in enumerate(batch.ids):
                    rows[rid] = (batch.meta[i] if batch.meta else {}, hashlib.sha256(vectors[i].tobytes()).hexdigest())
            else:
                for item in batch:
                    if isinstance(item, tuple):
                        rows[item[0]] = item[1]
                    elif hasattr(item, "source"):
                        rows[f"{item.source}\x00{item.target}"] = item.properties
                    else:
                        rows[item.id] = item.properties
        out[section.key] = rows
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".ragstore-spool-") or p.name.endswith(".partial"))


def check_export(runner: harness.Runner, args: list[str], env: dict[str, str], out: Path, killed: harness.Result,
                 reference: dict[str, Any], entry: dict[str, Any]) -> None:
    if killed.killed:
        if out.exists():  # only ever a complete archive at the output path
            diff = compare(reference, archive_records(out))
            assert diff.equal, diff.where
            entry["outcome"] = "complete archive at the output path"
        else:
            entry["outcome"] = "no output, then re-run"
    else:
        assert killed.code == 0, killed.describe()
        entry["outcome"] = "not reached"
    entry["leftovers"] = leftovers(out.parent)
    if out.exists():  # the same command again refuses to replace it (exit 2); --force does
        refused = runner.run(args, env)
        assert refused.code == 2, refused.describe()
        args = [*args, "--force"]
    again = runner.run(args, env)
    assert again.code == 0, again.describe()
    diff = compare(reference, archive_records(out))
    entry.update(lost=diff.lost, extra=diff.extra, changed=diff.changed)
    assert diff.equal, diff.where
    assert harness.total_records(reference) > 200


# --------------------------------------------------------------------------- files → archive
@pytest.fixture(scope="module")
def files_export(runner, source, source_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("files-export")
    out = root / "clean" / "a.ragstore"
    out.parent.mkdir()
    args = ["export", "--from", "files", "--workspace", SRC, "--batch-size", "5", "-o", str(out)]
    count = runner.run(args, source_env, fault=Fault(FILES_HOOKS))
    assert count.code == 0, count.describe()
    return {"root": root, "reference": archive_records(out), "points": kill_points("export-files", count.trace["calls"], K),
            "calls": count.trace["calls"]}


@pytest.mark.parametrize("i", range(K))
def test_export_from_files_killed(files_export, runner, source, source_env, i):
    s = files_export
    at, mode = s["points"][i]
    out = s["root"] / f"k{i}" / "a.ragstore"
    out.parent.mkdir()
    args = ["export", "--from", "files", "--workspace", SRC, "--batch-size", "5", "-o", str(out)]
    before = harness.tree_digest(source.working_dir)
    with fault_record("export files → archive", f"call {at}/{s['calls']} {mode}") as entry:
        killed = runner.run(args, source_env, fault=Fault(FILES_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert harness.tree_digest(source.working_dir) == before, "the export changed its source"
        check_export(runner, args, source_env, out, killed, s["reference"], entry)
        assert harness.tree_digest(source.working_dir) == before


# --------------------------------------------------------------------------- postgres → archive
@pytest.fixture(scope="module")
def pg_export(runner, archive, pg_server, tmp_path_factory):
    from ragstore_cli.engine import ImportPlan, import_archive

    name = "fe_" + uuid.uuid4().hex[:10]
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    pg_server.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
    env = {**pg_server.env(database=name), "EMBEDDING_MODEL": "fake-embed"}
    asyncio.run(import_archive(load_settings(environ=env), ImportPlan(archive, workspace="w", profile="postgres", batch_size=50)))
    root = tmp_path_factory.mktemp("pg-export")
    out = root / "clean" / "a.ragstore"
    out.parent.mkdir()
    args = ["export", "--from", "postgres", "--workspace", "w", "--batch-size", "5", "-o", str(out)]
    count = runner.run(args, env, fault=Fault(PG_HOOKS))
    assert count.code == 0, count.describe()
    yield {"root": root, "env": env, "reference": archive_records(out),
           "points": kill_points("export-postgres", count.trace["calls"], K), "calls": count.trace["calls"]}
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("i", range(K))
def test_export_from_postgres_killed(pg_export, runner, i):
    s = pg_export
    at, mode = s["points"][i]
    out = s["root"] / f"k{i}" / "a.ragstore"
    out.parent.mkdir()
    args = ["export", "--from", "postgres", "--workspace", "w", "--batch-size", "5", "-o", str(out)]
    before = harness.pg_digest(s["env"])
    with fault_record("export postgres → archive", f"call {at}/{s['calls']} {mode}") as entry:
        killed = runner.run(args, s["env"], fault=Fault(PG_HOOKS, at, mode))
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        assert harness.pg_digest(s["env"]) == before, "the export changed its source"
        check_export(runner, args, s["env"], out, killed, s["reference"], entry)
        assert harness.pg_digest(s["env"]) == before
