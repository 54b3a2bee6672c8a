"""Export's snapshot promise, attacked: a `workspace drop` and LightRAG-style writes during an export.

PostgreSQL: the archive is the workspace as of one moment (table discovery included), whatever is
dropped or written meanwhile. Files, Redis and the Bolt server: ragstore's own drop waits for the
export's workspace lock, and a write that bypasses it (LightRAG's) makes the export fail loudly,
with no archive left. Each race is made deterministic by running the competing writer from the
export's progress callback, i.e. while the export is under way.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import asyncpg
import pytest
import redis

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.engine.workspace_ops import drop_workspace
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError, LockConflict
from ragstore_cli.engine import Callbacks, ExportPlan, ImportPlan, export_workspace, import_archive
from tests.faults.conftest import SRC

MODEL = "fake-embed"


def in_thread(work: Callable[[], Any]) -> Any:
    """Run `work` on its own thread (its own event loop) and wait: the export is held where it is."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the competing writer did not finish within 60 s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def once_at(section: str, action: Callable[[], Any]) -> Callable[[str, int, int], None]:
    """A progress callback that runs `action` the first time `section` reports progress."""
    fired: list[Any] = []

    def progress(key: str, records: int, nbytes: int) -> None:
        if key == section and not fired:
            fired.append(in_thread(action))

    progress.fired = fired  # type: ignore[attr-defined]
    return progress


def counts(path: Path) -> dict[str, int]:
    reader = ArchiveReader(path)
    reader.verify()
    return reader.manifest.counts()


async def _pg_workspace(pg_database: dict[str, str], archive: Path, workspace: str) -> None:
    await import_archive(load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL}), ImportPlan(archive, workspace=workspace, profile="postgres", if_exists="replace", batch_size=50))


# --------------------------------------------------------------------------- PostgreSQL: one snapshot
async def test_postgres_export_racing_a_workspace_drop_is_the_whole_workspace(pg_database, archive, tmp_path):
    await _pg_workspace(pg_database, archive, "w")
    plain = load_settings(environ={**pg_database, "WORKING_DIR": str(tmp_path / "locks")})  # EMBEDDING_* unset
    drop = once_at("kv/full_docs", lambda: asyncio.run(drop_workspace(plain, "postgres", "w", yes=True)))
    out = tmp_path / "during-drop.ragstore"
    await export_workspace(plain, ExportPlan(out, workspace="w", profile="postgres", batch_size=5), Callbacks(progress=drop))
    assert drop.fired and drop.fired[0]["removed"]["postgres"]  # the drop committed mid-export
    assert counts(out) == counts(archive)  # vectors included: their tables were found in the snapshot
    with pytest.raises(Exception, match="holds no records"):
        await export_workspace(plain, ExportPlan(tmp_path / "after.ragstore", workspace="w", profile="postgres"))


async def test_a_truncate_during_a_postgres_export_waits_for_it(pg_database, archive, tmp_path):
    """TRUNCATE is not MVCC-safe (a snapshot taken before it sees the table empty): it waits until the
    export ends, and the archive holds the rows."""
    await _pg_workspace(pg_database, archive, "w")
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL})
    done: list[float] = []

    async def truncate() -> None:
        conn = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                     user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                     database=pg_database["POSTGRES_DATABASE"])
        try:
            await conn.execute("SET lock_timeout = '60s'")
            await conn.execute("TRUNCATE lightrag_full_entities, lightrag_vdb_entity_fake_embed_16d")
            done.append(time.monotonic())
        finally:
            await conn.close()

    started: list[threading.Thread] = []
    last_read: list[float] = [0.0]

    def start_truncate(key: str, records: int, nbytes: int) -> None:
        last_read[0] = time.monotonic()
        if key == "kv/full_docs" and not started:  # before either table is read; not waited for
            started.append(threading.Thread(target=lambda: asyncio.run(truncate())))
            started[0].start()
            time.sleep(0.5)  # let it reach the server and queue for its lock

    out = tmp_path / "t.ragstore"
    await export_workspace(settings, ExportPlan(out, workspace="w", profile="postgres", batch_size=5), Callbacks(progress=start_truncate))
    started[0].join(60)
    assert done and done[0] > last_read[0]  # the TRUNCATE ran only once the export had read everything
    assert counts(out) == counts(archive)


async def test_postgres_export_racing_lightrag_style_writes_is_one_moment(pg_database, archive, tmp_path):
    """A writer adds documents (full_docs + doc_status + text_chunks + chunk vector, one transaction
    each) as fast as it can while three exports run: every archive holds the same documents in all four."""
    await _pg_workspace(pg_database, archive, "w")
    settings = load_settings(environ={**pg_database, "EMBEDDING_MODEL": MODEL})
    stop = threading.Event()
    written: list[int] = []

    async def writer() -> None:
        conn = await asyncpg.connect(host=pg_database["POSTGRES_HOST"], port=int(pg_database["POSTGRES_PORT"]),
                                     user=pg_database["POSTGRES_USER"], password=pg_database["POSTGRES_PASSWORD"],
                                     database=pg_database["POSTGRES_DATABASE"])
        vector = "[" + ",".join(["0.5"] * 16) + "]"
        try:
            for n in range(100_000):
                if stop.is_set():
                    break
                doc = f"race-{n:06d}"
                async with conn.transaction():
                    await conn.execute("INSERT INTO lightrag_doc_full (workspace, id, content) VALUES ('w', $1, 'x')", doc)
                    await conn.execute("INSERT INTO lightrag_doc_status (workspace, id, status, created_at, updated_at) "
                                       "VALUES ('w', $1, 'processed', now(), now())", doc)
                    await conn.execute("INSERT INTO lightrag_doc_chunks (workspace, id, full_doc_id, content, tokens, "
                                       "chunk_order_index) VALUES ('w', $1, $1, 'x', 1, 0)", doc)
                    await conn.execute("INSERT INTO lightrag_vdb_chunks_fake_embed_16d (workspace, id, full_doc_id, "
                                       "content, tokens, chunk_order_index, content_vector) "
                                       f"VALUES ('w', $1, $1, 'x', 1, 0, '{vector}')", doc)
                written.append(n)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(writer()))
    thread.start()
    try:
        for i in range(3):
            out = tmp_path / f"race{i}.ragstore"
            await export_workspace(settings, ExportPlan(out, workspace="w", profile="postgres", batch_size=3))
            found = {key: n for key, n in counts(out).items()}
            extra = {k: found[k] - counts(archive)[k]
                     for k in ("kv/full_docs", "doc_status", "kv/text_chunks", "vectors/chunks")}
            assert len(set(extra.values())) == 1, extra  # the same documents in every namespace
    finally:
        stop.set()
        thread.join(60)
    assert written, "the writer never got a transaction in"


# --------------------------------------------------------------------------- files: lock + fingerprints
def _files_copy(source, tmp_path: Path) -> dict[str, str]:
    import shutil

    shutil.copytree(source.working_dir / SRC, tmp_path / "wd" / SRC)
    return {"WORKING_DIR": str(tmp_path / "wd"), "EMBEDDING_MODEL": MODEL}


def _rewrite_like_lightrag(path: Path) -> None:
    """LightRAG's JSON KV write: a whole new file by tmp + rename (docs/lightrag-formats.md)."""
    data = json.loads(path.read_text("utf-8"))
    data[f"doc-{uuid.uuid4().hex}"] = {"content": "written during the export", "file_path": "late.txt"}
    tmp = path.with_name(path.name + f".tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")
    os.replace(tmp, path)


async def test_files_export_fails_loudly_when_lightrag_writes_during_it(source, archive, tmp_path):
    env = _files_copy(source, tmp_path)
    folder = Path(env["WORKING_DIR"]) / SRC
    write = once_at("vectors/chunks", lambda: _rewrite_like_lightrag(folder / "kv_store_full_docs.json"))
    out = tmp_path / "x.ragstore"
    with pytest.raises(DataError, match="source changed during the export.*kv_store_full_docs.json"):
        await export_workspace(load_settings(environ=env), ExportPlan(out, workspace=SRC, profile="files", batch_size=5), Callbacks(progress=write))
    assert write.fired
    assert not out.exists() and not list(tmp_path.glob("x.ragstore*")) and not list(tmp_path.glob(".ragstore-spool*"))
    again = await export_workspace(load_settings(environ=env), ExportPlan(out, workspace=SRC, profile="files"))
    assert again.counts["kv/full_docs"] == counts(archive)["kv/full_docs"] + 1  # the late write, now exported
    assert again.consistency == {"files": "fingerprint"}


async def test_files_workspace_drop_waits_for_the_export(source, tmp_path):
    env = _files_copy(source, tmp_path)
    settings = load_settings(environ=env)
    drop = once_at("kv/text_chunks", lambda: asyncio.run(
        drop_workspace(settings, "files", SRC, yes=True, lock_timeout=0.5)))
    with pytest.raises(LockConflict, match="export"):  # the drop, run mid-export, names the export holding it
        await export_workspace(settings, ExportPlan(tmp_path / "x.ragstore", workspace=SRC, profile="files"),
                                                    Callbacks(progress=drop))
    assert (Path(env["WORKING_DIR"]) / SRC / "kv_store_full_docs.json").exists()


# --------------------------------------------------------------------------- Redis and Bolt: re-read
REDIS_PROFILE = "kv=redis,doc_status=redis,vector=files,graph=files"


async def imported(archive: Path, server_env: dict[str, str], tmp_path: Path, profile: str) -> tuple[Any, str]:
    """A fresh workspace holding the archive in `profile` (files roles under tmp_path): settings, name."""
    ws = "ec" + uuid.uuid4().hex[:8]
    settings = load_settings(environ={**server_env, "WORKING_DIR": str(tmp_path / "wd"), "EMBEDDING_MODEL": MODEL})
    await import_archive(settings, ImportPlan(archive, workspace=ws, profile=profile, if_exists="replace"))
    return settings, ws


async def test_redis_export_fails_loudly_when_a_read_section_changes(archive, redis_env, tmp_path):
    settings, ws = await imported(archive, redis_env, tmp_path, REDIS_PROFILE)
    client = redis.Redis.from_url(redis_env["REDIS_URI"])
    try:
        key = sorted(client.scan_iter(f"{ws}_full_docs:*"))[0]

        def rewrite() -> None:  # LightRAG's upsert: the same key, a new value (the count does not move)
            value = json.loads(client.get(key))
            value["content"] += " (edited)"
            client.set(key, json.dumps(value))

        edit = once_at("doc_status", rewrite)
        out = tmp_path / "r.ragstore"
        with pytest.raises(DataError, match="redis: kv/full_docs was written to while it was read"):
            await export_workspace(settings, ExportPlan(out, workspace=ws, profile=REDIS_PROFILE), Callbacks(progress=edit))
        assert edit.fired and not out.exists()
        quiet = await export_workspace(settings, ExportPlan(out, workspace=ws, profile=REDIS_PROFILE))
        assert quiet.consistency == {"redis": "reread", "files": "fingerprint"}
    finally:
        await drop_workspace(settings, REDIS_PROFILE, ws, yes=True)
        client.close()


BOLT_PROFILE = "kv=files,vector=files,doc_status=files,graph=neo4j"


async def test_bolt_export_fails_loudly_when_the_graph_changes(archive, bolt_env, tmp_path):
    from ragstore_cli.backends.neo4j.session import Bolt

    settings, ws = await imported(archive, bolt_env, tmp_path, BOLT_PROFILE)

    async def add_node() -> None:  # what LightRAG's Neo4JStorage.upsert_node does: MERGE on entity_id
        bolt = Bolt(settings)
        await bolt.open()
        try:
            await bolt.run(f"MERGE (n:`{ws}` {{entity_id: 'Late'}}) SET n.description = 'written mid-export'")
        finally:
            await bolt.close()

    try:
        edit = once_at("vectors/chunks", lambda: asyncio.run(add_node()))
        out = tmp_path / "b.ragstore"
        with pytest.raises(DataError, match="neo4j: graph/nodes was written to while it was read"):
            await export_workspace(settings, ExportPlan(out, workspace=ws, profile=BOLT_PROFILE), Callbacks(progress=edit))
        assert edit.fired and not out.exists()
        quiet = await export_workspace(settings, ExportPlan(out, workspace=ws, profile=BOLT_PROFILE))
        assert quiet.counts["graph/nodes"] == counts(archive)["graph/nodes"] + 1
        assert quiet.consistency == {"files": "fingerprint", "neo4j": "reread"}
    finally:
        await drop_workspace(settings, "neo4j", ws, yes=True)
