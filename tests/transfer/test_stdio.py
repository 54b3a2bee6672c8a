"""`ragstore export -o -` and `ragstore import -` through real pipes between real processes.

The archive on a pipe keeps every guarantee of the archive on disk: stdout carries the tar and
nothing else, a stream cut short or damaged is refused whole before the first write, and the spool
file that holds a stream while it is verified is gone however the import ends.
"""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.archive import spool
from ragstore_cli.errors import OperationFailed
from tests.faults.harness import compare, pg_digest, snapshot, tree_digest

REPO = Path(__file__).resolve().parents[2]
RAGSTORE = str(Path(sys.executable).parent / "ragstore")
SAMPLE = REPO / "examples" / "sample_workspace"
TIMEOUT = 120
# JSON KV drops `create_time` on update (docs/lightrag-formats.md); PG keeps a create_time column and fills it.
# Nano's `__write_seq__` is a per-process write token PG has no column for.
REWRITTEN = {"create_time", "__write_seq__"}
# PostgreSQL's chunk vectors carry `tokens`/`chunk_order_index`, taken from text_chunks (docs/field-loss.md).
FILLED = {"tokens", "chunk_order_index"}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "rag").mkdir()
    shutil.copytree(SAMPLE, tmp_path / "rag" / "ws1")
    (tmp_path / "spool").mkdir()
    return tmp_path


def environment(work: Path, *extra: dict[str, str]) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "XDG_RUNTIME_DIR", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"WORKING_DIR": str(work / "rag"), "EMBEDDING_MODEL": "demo-hash-embed", "EMBEDDING_DIM": "16",
                "RAGSTORE_SPOOL_DIR": str(work / "spool"), "NO_COLOR": "1", "COLUMNS": "200"})
    for more in extra:
        env.update(more)
    return env


def piped(env: dict[str, str], export: list[str], import_: list[str]) -> tuple[subprocess.CompletedProcess, ...]:
    """`ragstore export … -o - | ragstore import - …` with a real pipe; both processes' results."""
    sender = subprocess.Popen([RAGSTORE, "export", *export, "-o", "-"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    receiver = subprocess.Popen([RAGSTORE, "import", "-", *import_], env=env, stdin=sender.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert sender.stdout is not None
    sender.stdout.close()  # the receiver holds the only read end: a receiver gone is a closed pipe
    out, err = receiver.communicate(timeout=TIMEOUT)
    sent_err = sender.stderr.read().decode() if sender.stderr else ""
    sender.wait(timeout=TIMEOUT)
    return (subprocess.CompletedProcess(sender.args, sender.returncode, b"", sent_err),
            subprocess.CompletedProcess(receiver.args, receiver.returncode, out, err))


def fed(env: dict[str, str], data: bytes, *args: str) -> subprocess.CompletedProcess:
    """`… | ragstore ARGS` with `data` on a real pipe."""
    return subprocess.run([RAGSTORE, *args], env=env, input=data, capture_output=True, timeout=TIMEOUT)


def exported(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RAGSTORE, "export", *args, "-o", "-"], env=env, capture_output=True, timeout=TIMEOUT)


def same_records(a: dict, b: dict) -> None:
    trim = {k: {i: _without(v) for i, v in rows.items()} for k, rows in a.items()}
    other = {k: {i: _without(v) for i, v in rows.items()} for k, rows in b.items()}
    diff = compare(trim, other)
    assert diff.equal, diff.where
    assert sum(len(v) for v in trim.values()) == 151


def _without(value):
    if isinstance(value, tuple):  # vectors: (meta, values)
        return ({k: v for k, v in value[0].items() if k not in REWRITTEN | FILLED}, value[1])
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in REWRITTEN}
    return value


def nothing_spooled(work: Path) -> None:
    assert os.listdir(work / "spool") == []


# ------------------------------------------------------------------------------------ round trips
def test_files_to_postgres_to_files_through_pipes(work: Path, pg_database) -> None:
    env = environment(work, pg_database)
    sent, got = piped(env, ["--profile", "files", "-w", "ws1"], ["--profile", "postgres", "-w", "ws1"])
    assert (sent.returncode, got.returncode) == (0, 0), sent.stderr + got.stderr
    assert "exported workspace 'ws1'" in sent.stderr and "to -:" in sent.stderr
    assert "imported 151 records" in got.stdout
    original = snapshot(env, "files", "ws1")
    same_records(original, snapshot(env, "postgres", "ws1"))

    sent, got = piped(env, ["--profile", "postgres", "-w", "ws1"], ["--profile", "files", "-w", "back"])
    assert (sent.returncode, got.returncode) == (0, 0), sent.stderr + got.stderr
    same_records(original, snapshot(env, "files", "back"))
    nothing_spooled(work)


def test_stdout_carries_the_archive_and_nothing_else(work: Path, tmp_path: Path) -> None:
    env = environment(work)
    for flags in ([], ["--json"]):
        done = exported(env, *flags, "--profile", "files", "-w", "ws1")
        assert done.returncode == 0, done.stderr
        with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as tar:
            names = tar.getnames()
        assert names[:2] == ["manifest.json", "manifest.json.sha256"] and len(names) > 2
        copy = tmp_path / f"copy{len(flags)}.ragstore"
        copy.write_bytes(done.stdout)
        reader = ArchiveReader(copy)
        assert sum(s.records for s in reader.verify().values()) == 151
        if flags:  # --json: the one document goes to stderr
            document = json.loads(done.stderr)
            assert document["ok"] is True and document["output"] == "-" and document["bytes"] == len(done.stdout)
        else:
            assert b"exported workspace 'ws1'" in done.stderr
    refused = exported(env, "--json", "--profile", "files", "-w", "nothing_here")
    assert refused.returncode == 2 and refused.stdout == b""
    assert json.loads(refused.stderr)["ok"] is False
    assert not list(work.glob("spool/.ragstore-spool-*"))


def test_an_export_whose_reader_went_away_fails_in_one_line(work: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte (ssh failed, the upload was cancelled)
    try:
        done = subprocess.run([RAGSTORE, "export", "--profile", "files", "-w", "ws1", "-o", "-"],
                              env=environment(work), stdout=write, stderr=subprocess.PIPE, timeout=TIMEOUT)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "error: the reader of the archive stream went away (broken pipe) after 0 bytes: what it received is "
        "incomplete, and an import refuses it"]
    assert os.listdir(work / "spool") == []


# ------------------------------------------------------------------------------------ damage
def _damaged(env: dict[str, str], how: str) -> bytes:
    data = bytearray(exported(env, "--profile", "files", "-w", "ws1").stdout)
    if how == "cut":
        return bytes(data[: len(data) * 9 // 10])  # ends inside the last sections (vectors)
    data[len(data) * 9 // 10] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("how", ["cut", "flipped"])
def test_a_damaged_stream_is_refused_before_the_first_write(work: Path, pg_database, redis_env, how: str) -> None:
    """Into PostgreSQL (one transaction) and into Redis + files (Redis commits each section as it
    goes): the stream is verified whole first, so neither sees a write."""
    env = environment(work, pg_database, redis_env)
    data = _damaged(env, how)
    pg_before, files_before = pg_digest(pg_database), tree_digest(work / "rag")
    for profile in ("postgres", "redis,files"):
        done = fed(env, data, "import", "-", "--profile", profile, "-w", "target")
        lines = done.stderr.decode().splitlines()
        assert done.returncode == 1, done.stderr
        assert len(lines) == 1 and lines[0].startswith("error: archive "), lines
        assert ("truncated" if how == "cut" else "damaged") in lines[0]
        assert "Traceback" not in done.stderr.decode() and done.stdout == b""
    assert pg_digest(pg_database) == pg_before
    assert tree_digest(work / "rag") == files_before
    assert not any(snapshot(env, "redis,files", "target").values())
    nothing_spooled(work)


def test_an_empty_stream_says_the_sender_wrote_nothing(work: Path) -> None:
    done = fed(environment(work), b"", "import", "-", "--profile", "files", "-w", "target")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "error: the archive stream is empty (0 bytes): the command sending it wrote no archive (did it fail?)"]
    assert not (work / "rag" / "target").exists()
    nothing_spooled(work)


def test_dry_run_and_verify_read_stdin(work: Path) -> None:
    env = environment(work)
    data = exported(env, "--profile", "files", "-w", "ws1").stdout
    done = fed(env, data, "import", "-", "--profile", "files", "-w", "target", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would import 151 records" in done.stdout.decode()
    assert not (work / "rag" / "target").exists()
    checked = fed(env, data, "--json", "archive", "verify", "-")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True
    inspected = fed(env, data, "--json", "archive", "inspect", "-")
    assert inspected.returncode == 0 and sum(json.loads(inspected.stdout)["counts"].values()) == 151
    damaged = fed(env, data[: len(data) // 2], "archive", "verify", "-")
    assert damaged.returncode == 1 and damaged.stderr.decode().startswith("error: archive is truncated")
    nothing_spooled(work)


# ------------------------------------------------------------------------------------ resume
def test_an_import_from_stdin_killed_mid_load_resumes_from_the_same_archive_sent_again(work: Path, redis_env) -> None:
    """Redis commits each section as it goes: SIGKILL after the first ones leaves a ledger, and the
    hint's command (the same archive piped again with --resume) finishes the job; another archive is
    refused. The killed process's spool file is removed by the next import."""
    env = environment(work, redis_env)
    data = exported(env, "--profile", "files", "-w", "ws1").stdout
    killed = subprocess.run([sys.executable, "-c", "import faultwrap; faultwrap.main()", "import", "-",
                             "--profile", "redis,files", "-w", "target"], input=data, capture_output=True,
                            timeout=TIMEOUT, env={**env, "PYTHONPATH": f"{REPO / 'tests' / 'faults'}{os.pathsep}{REPO}",
                                                  "FAULTWRAP_POINT": "commit:kv/text_chunks"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(os.listdir(work / "spool")) == 1  # SIGKILL runs no clean-up
    again = fed(env, data, "import", "-", "--profile", "redis,files", "-w", "target")
    assert again.returncode == 2 and b"--resume" in again.stderr
    other = exported(env, "--profile", "files", "-w", "ws1").stdout  # a new export: a new manifest
    refused = fed(env, other, "import", "-", "--profile", "redis,files", "-w", "target", "--resume")
    assert refused.returncode == 2, refused.stderr
    resumed = fed(env, data, "--json", "import", "-", "--profile", "redis,files", "-w", "target", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed"] is True and "kv/full_docs" in report["skipped"] and report["archive"] == "-"
    same_records(snapshot(env, "files", "ws1"), snapshot(env, "redis,files", "target"))
    nothing_spooled(work)


# ------------------------------------------------------------------------------------ the spool
def test_the_spool_is_private_and_gone_after_ctrl_c(work: Path) -> None:
    env = environment(work)
    data = exported(env, "--profile", "files", "-w", "ws1").stdout
    read, write = os.pipe()
    importer = subprocess.Popen([RAGSTORE, "import", "-", "--profile", "files", "-w", "target"], env=env,
                                stdin=read, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(read)
    try:
        os.write(write, data[: len(data) // 2])  # half an archive, then the sender stalls
        deadline = time.monotonic() + 30
        while not os.listdir(work / "spool") and time.monotonic() < deadline:
            time.sleep(0.05)
        (spooled,) = os.listdir(work / "spool")
        assert os.stat(work / "spool" / spooled).st_mode & 0o777 == 0o600
        importer.send_signal(signal.SIGINT)
        _, err = importer.communicate(timeout=15)
    finally:
        os.close(write)
        if importer.poll() is None:
            importer.kill()
    assert importer.returncode == 130, err
    assert b"error: interrupted" in err
    nothing_spooled(work)
    assert not (work / "rag" / "target").exists()


def test_a_spool_stops_before_the_disk_fills_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """The free-space check, with the reserve raised past what this disk has free."""
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    monkeypatch.setattr(spool, "RESERVE", free)
    with pytest.raises(OperationFailed, match="not enough free space in the spool folder"):
        with spool.spooled(io.BytesIO(b"x" * 4096), tmp_path):
            pass
    assert os.listdir(tmp_path) == []


def test_a_spool_of_a_dead_process_is_removed_by_the_next_one(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f"{spool.SPOOL_PREFIX}{dead.stdout.strip()}-abcd.ragstore"
    left.write_bytes(b"left by a SIGKILLed import")
    mine = tmp_path / f"{spool.SPOOL_PREFIX}{os.getpid()}-live.ragstore"
    mine.write_bytes(b"a live one")
    with spool.spooled(io.BytesIO(b"archive"), tmp_path) as path:
        assert path.read_bytes() == b"archive"
    assert sorted(os.listdir(tmp_path)) == [mine.name]


# ------------------------------------------------------------------------------------ terminals
def test_an_archive_is_never_written_to_a_terminal_nor_read_from_one(work: Path) -> None:
    env = environment(work)
    leader, follower = pty.openpty()
    try:
        to_tty = subprocess.run([RAGSTORE, "export", "--profile", "files", "-w", "ws1", "-o", "-"], env=env,
                                stdout=follower, stderr=subprocess.PIPE, timeout=30)
        from_tty = subprocess.run([RAGSTORE, "import", "-", "--profile", "files", "-w", "target"], env=env,
                                  stdin=follower, capture_output=True, timeout=30)
    finally:
        os.close(follower)
        os.close(leader)
    assert to_tty.returncode == 2
    assert to_tty.stderr.decode().splitlines()[0].startswith("error: refusing to write an archive to a terminal")
    assert from_tty.returncode == 2
    assert from_tty.stderr.decode().splitlines()[0].startswith("error: stdin is a terminal")
    assert not (work / "rag" / "target").exists()
