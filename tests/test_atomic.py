"""Files as LightRAG writes them: a new file gets the umask's mode, a replaced file keeps its mode,
no tmp is left; an import is readable by a LightRAG running as another user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from ragstore_cli.atomic import OWNER_ONLY, AtomicFile, write_atomic
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_workspace"


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)], ids=["022", "027", "077"])
def test_a_new_file_gets_the_umask_mode_and_a_replaced_file_keeps_its_own(tmp_path, mask, expected):
    target = tmp_path / "kv_store_full_docs.json"
    with umask(mask):
        write_atomic(target, "{}")
        assert _mode(target) == expected and os.listdir(tmp_path) == [target.name]
        target.chmod(0o604)
        write_atomic(target, '{"a": 1}')
    assert _mode(target) == 0o604 and target.read_text() == '{"a": 1}'


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277], ids=["000", "022", "277"])
def test_an_owner_only_file_is_owner_only_from_its_first_byte_whatever_the_umask(tmp_path, mask):
    target = tmp_path / ".env"
    target.write_text("OLD=1\n")
    target.chmod(0o644)
    with umask(mask):
        out = AtomicFile(target, text=True, mode=OWNER_ONLY)
        assert _mode(out.tmp) == 0o600  # before anything secret is written
        out.write("SECRET=x\n")
        out.commit()
    assert _mode(target) == 0o600 and target.read_text() == "SECRET=x\n"  # not the replaced file's 0644


def test_an_error_inside_the_block_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "graph.graphml"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with AtomicFile(target, text=True) as out:
            out.write("half a file")
            raise RuntimeError("killed half-way")
    assert target.read_text() == "old" and os.listdir(tmp_path) == [target.name]


def test_no_replace_refuses_a_name_taken_meanwhile_and_keeps_the_other_file(tmp_path):
    target = tmp_path / "a.ragstore"
    out = AtomicFile(target, mode=OWNER_ONLY, tmp=tmp_path / "a.ragstore.partial", replace=False)
    out.write(b"ours")
    target.write_bytes(b"theirs")  # another process took the name while we wrote
    with pytest.raises(FileExistsError):
        out.commit()
    out.abort()
    assert target.read_bytes() == b"theirs" and os.listdir(tmp_path) == [target.name]
    with AtomicFile(tmp_path / "b.ragstore", tmp=tmp_path / "b.ragstore.partial", replace=False) as out:
        out.write(b"ours")
    assert (tmp_path / "b.ragstore").read_bytes() == b"ours" and not (tmp_path / "b.ragstore.partial").exists()


def test_the_temporary_name_is_never_a_link_someone_placed(tmp_path):
    secret = tmp_path / "elsewhere"
    secret.write_text("keep")
    tmp = tmp_path / "x.partial"
    tmp.symlink_to(secret)
    with pytest.raises(OSError):
        AtomicFile(tmp_path / "x", tmp=tmp)
    assert secret.read_text() == "keep"


async def test_files_backend_writes_what_lightrag_would(tmp_path):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)}, cwd=tmp_path)
    with umask(0o022):
        async with await open_backends(settings, "files", "team") as stores:
            writer = await stores.kv.writer("full_docs")
            await writer.write([("doc-1", {"content": "text", "file_path": "a.txt"})])
            await writer.commit()
    written = tmp_path / "team" / "kv_store_full_docs.json"
    assert _mode(written) == 0o644
    assert [p.name for p in (tmp_path / "team").iterdir()] == ["kv_store_full_docs.json"]


def _ragstore(*args: str, mask: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    ragstore = shutil.which("ragstore", path=os.path.dirname(sys.executable))
    assert ragstore, "the ragstore console script is installed beside the interpreter"
    return subprocess.run(["sh", "-c", f'umask {mask} && exec "$0" "$@"', ragstore, *args], cwd=cwd, timeout=120,
                          capture_output=True, text=True, env={**os.environ, **env})


def test_import_into_files_keeps_replaced_modes_and_gives_new_files_the_umask(tmp_path):
    """A staged import (files-only, --if-exists replace) moves files over LightRAG's: the replaced ones keep
    their permission bits, the new ones get the importing process's umask, as LightRAG would do."""
    rag = tmp_path / "rag"
    shutil.copytree(SAMPLE, rag / "src")
    env = {"WORKING_DIR": str(rag)}
    done = _ragstore("export", "-p", "files", "-w", "src", "-o", "src.ragstore", mask="077", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert _mode(tmp_path / "src.ragstore") == 0o600  # archives stay owner-only whatever the umask
    target = rag / "dst"
    target.mkdir()
    (target / "kv_store_full_docs.json").write_text("{}")
    os.chmod(target / "kv_store_full_docs.json", 0o660)  # e.g. shared with LightRAG's group
    done = _ragstore("import", "src.ragstore", "-p", "files", "-w", "dst", "--if-exists", "replace", mask="022",
                     cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert _mode(target / "kv_store_full_docs.json") == 0o660
    others = [p for p in target.iterdir() if p.name != "kv_store_full_docs.json" and p.is_file()]
    assert others and {p.name: _mode(p) for p in others} == {p.name: 0o644 for p in others}


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as another OS user needs root")
def test_lightrag_running_as_another_user_reads_what_root_imported():
    top = Path(tempfile.mkdtemp(prefix="ragstore-umask-"))  # outside pytest's tmp_path, which only root may enter
    try:
        os.chmod(top, 0o755)
        rag = top / "rag"
        shutil.copytree(SAMPLE, rag / "src")
        env = {"WORKING_DIR": str(rag)}
        assert _ragstore("export", "-p", "files", "-w", "src", "-o", "a.ragstore", mask="022", cwd=top,
                         env=env).returncode == 0
        done = _ragstore("import", "a.ragstore", "-p", "files", "-w", "fresh", mask="022", cwd=top, env=env)
        assert done.returncode == 0, done.stderr
        nobody = pwd.getpwnam("nobody").pw_name
        for name in ("kv_store_full_docs.json", "vdb_chunks.json", "graph_chunk_entity_relation.graphml"):
            read = subprocess.run(["cat", str(rag / "fresh" / name)], user=nobody, capture_output=True, timeout=30)
            assert read.returncode == 0 and read.stdout, (name, read.stderr)
    finally:
        shutil.rmtree(top, ignore_errors=True)
