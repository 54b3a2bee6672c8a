"""`ragstore archive verify|inspect` (and later export/import) through the CLI: exit codes, one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.archive.helpers import rewrite, write_sample


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    out = tmp_path / "ws.ragstore"
    write_sample(out)
    return out


def test_verify_ok(cli, archive: Path) -> None:
    result = cli("archive", "verify", str(archive))
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "129 records in 6 sections" in result.stdout
    doc = cli("--json", "archive", "verify", str(archive)).json()
    assert doc["ok"] is True
    assert {s["section"]: s["verified_records"] for s in doc["sections"]} == {
        "kv/full_docs": 30, "doc_status": 30, "graph/nodes": 10, "graph/edges": 9,
        "vectors/chunks": 50, "vectors/entities": 0}


def test_inspect_json_and_table(cli, archive: Path) -> None:
    doc = cli("archive", "inspect", "--json", str(archive)).json()
    assert doc["format_version"] == 1
    assert doc["embedding"] == {"model": "fake-embed", "dim": 16}
    assert doc["source"]["workspace"] == "ws1"
    assert doc["counts"]["vectors/chunks"] == 50
    row = next(s for s in doc["sections"] if s["section"] == "vectors/chunks")
    assert row["dim"] == 16 and row["dtype"] == "float32" and row["stored_bytes"] > 0
    text = cli("archive", "inspect", str(archive))
    assert text.exit_code == 0
    assert "kv/full_docs" in text.stdout and "fake-embed" in text.stdout
    assert "entity_type" in text.stdout  # fields the source could not carry


def _one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1


def test_verify_refuses_bad_archives(cli, archive: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.ragstore"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    _one_line_error(cli("archive", "verify", str(damaged)), 1, "")
    newer = tmp_path / "newer.ragstore"
    rewrite(archive, newer, manifest=lambda d: d.update(format_version=9))
    _one_line_error(cli("archive", "inspect", str(newer)), 1, "newer than this ragstore reads")
    truncated = tmp_path / "cut.ragstore"
    truncated.write_bytes(archive.read_bytes()[:5000])
    _one_line_error(cli("archive", "verify", str(truncated)), 1, "truncated")
    _one_line_error(cli("archive", "verify", str(tmp_path / "missing.ragstore")), 2, "does not exist")
    json_err = cli("--json", "archive", "verify", str(truncated))
    assert json_err.exit_code == 1 and json_err.json()["ok"] is False


# ------------------------------------------------------------------------------ export / import
LOCK_HOLDER = """
import asyncio, sys
from ragstore_cli.config import load_settings
from ragstore_cli.coordination import workspace_lock
async def main():
    s = load_settings(environ={"WORKING_DIR": sys.argv[1]})
    async with workspace_lock(s, "src", command="test-holder", timeout=5):
        print("ready", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


@pytest.fixture
def files_ws(tmp_path: Path) -> Path:
    """A small files workspace written through ragstore itself (import of the sample archive)."""
    out = tmp_path / "sample.ragstore"
    write_sample(out)
    return out


def test_export_import_files_cli(cli, tmp_path: Path) -> None:
    import asyncio

    from tests.interop.lightrag_builder import build_workspace

    asyncio.run(build_workspace(tmp_path / "rag", "cli_src"))
    env = {"WORKING_DIR": str(tmp_path / "rag"), "EMBEDDING_MODEL": "fake-embed"}
    out = tmp_path / "x.ragstore"
    exported = cli("export", "--profile", "files", "-w", "cli_src", "-o", str(out), "--json", env=env)
    assert exported.exit_code == 0, exported.output
    doc = exported.json()
    assert doc["ok"] and doc["counts"]["kv/full_docs"] == 3 and doc["counts"]["vectors/chunks"] > 0
    assert doc["warnings"] == []  # no LightRAG process uses the dir: nothing to warn about
    target = {"WORKING_DIR": str(tmp_path / "dst")}
    dry = cli("import", str(out), "--to", "files", "--dry-run", "--json", env=target)  # --to: the old spelling
    assert dry.exit_code == 0 and dry.json()["dry_run"] is True
    assert not (tmp_path / "dst").exists()
    shown = cli("import", str(out), "-p", "files", "--dry-run", env=target)
    assert "roles: kv → files, vector → files, graph → files, doc_status → files" in shown.stdout
    imported = cli("import", str(out), "--profile", "files", env=target)
    assert imported.exit_code == 0, imported.output
    assert "imported" in imported.stdout and "'cli_src'" in imported.stdout
    assert (tmp_path / "dst" / "cli_src" / "kv_store_full_docs.json").read_bytes() == \
        (tmp_path / "rag" / "cli_src" / "kv_store_full_docs.json").read_bytes()
    again = cli("import", str(out), "--to", "files", env=target)
    _one_line_error(again, 2, "already holds")


def test_import_bad_inputs_leave_target_unchanged(cli, files_ws: Path, tmp_path: Path) -> None:
    target = {"WORKING_DIR": str(tmp_path / "dst")}
    _one_line_error(cli("import", str(files_ws), "--to", "files", "-w", "a/b", env=target), 2, "not allowed")
    _one_line_error(cli("import", str(files_ws), "--to", "files", "--if-exists", "maybe", env=target), 2, "--if-exists")
    _one_line_error(cli("import", str(files_ws), "--to", "files", "--resume", env=target), 2, "no interrupted import")
    cut = tmp_path / "cut.ragstore"
    cut.write_bytes(files_ws.read_bytes()[:6000])
    _one_line_error(cli("import", str(cut), "--to", "files", env=target), 1, "truncated")
    damaged = tmp_path / "nan.ragstore"
    rewrite(files_ws, damaged, raw=lambda n, d: b"\xff\xff\xc0\x7f" + d[4:] if n.endswith(".f32.zst") else None)
    _one_line_error(cli("import", str(damaged), "--to", "files", env=target), 1, "NaN")
    dst = tmp_path / "dst"  # only the lock's own state folder may exist, no data
    assert not [p for p in dst.rglob("*") if p.is_file() and ".ragstore" not in p.relative_to(dst).parts[:1]]
    unreachable = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "9", "POSTGRES_PASSWORD": "x",
                   "POSTGRES_CONNECTION_RETRIES": "1"}
    _one_line_error(cli("import", str(files_ws), "--to", "postgres", env=unreachable), 1, "")


def test_export_exits_3_when_another_ragstore_holds_the_lock(cli, tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "rag" / "src").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "rag")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_TIMEOUT": "0.2"}
        result = cli("export", "--from", "files", "-w", "src", "-o", str(tmp_path / "x.ragstore"), env=env)
        _one_line_error(result, 3, "")
        assert "test-holder" in result.stderr
        assert not (tmp_path / "x.ragstore").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_export_is_owner_only_and_waits_for_the_workspace_lock(cli, tmp_path: Path) -> None:
    """The archive holds a whole workspace (mode 0600); a held workspace lock gives exit 3 after --lock-timeout."""
    import json
    import os
    import stat
    import subprocess
    import sys

    rag = tmp_path / "rag" / "ws1"
    rag.mkdir(parents=True)
    (rag / "kv_store_full_docs.json").write_text(json.dumps({"doc-1": {"content": "x", "file_path": "a.txt",
                                                                        "create_time": 1, "update_time": 1,
                                                                        "_id": "doc-1"}}, indent=2))
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": "file"}
    out = tmp_path / "ws1.ragstore"
    done = cli("export", "--from", "files", "--workspace", "ws1", "-o", str(out), env=env)
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio\nfrom ragstore_cli.config import load_settings\n"
         "from ragstore_cli.coordination import workspace_lock\n"
         "async def main():\n"
         "    async with workspace_lock(load_settings(), 'ws1', command='workspace drop', timeout=5):\n"
         "        print('held', flush=True)\n        await asyncio.sleep(20)\n"
         "asyncio.run(main())\n"],
        env={**os.environ, **env}, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        blocked = cli("export", "--from", "files", "--workspace", "ws1", "-o", str(tmp_path / "again.ragstore"),
                      "--lock-timeout", "0.3", env=env)
        assert blocked.exit_code == 3, blocked.output
        assert "workspace drop" in blocked.stderr and str(holder.pid) in blocked.stderr
        assert not (tmp_path / "again.ragstore").exists()
        imported = cli("import", str(out), "--to", "files", "--workspace", "ws1", "--if-exists", "replace",
                       "--lock-timeout", "0.3", env=env)
        assert imported.exit_code == 3
    finally:
        holder.kill()
        holder.wait(10)


@pytest.fixture
def sample_rag(tmp_path: Path) -> Path:
    """A working dir holding LightRAG's sample workspace (examples/sample_workspace) as `ws1`."""
    rag = tmp_path / "rag"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "sample_workspace", rag / "ws1")
    return rag


def test_export_never_replaces_an_archive_without_force(cli, sample_rag: Path, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(sample_rag)}
    out = tmp_path / "kept.ragstore"
    out.write_bytes(b"an older backup")
    refused = cli("export", "-p", "files", "-w", "ws1", "-o", str(out), env=env)
    _one_line_error(refused, 2, "--force")
    assert out.read_bytes() == b"an older backup"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("kept")) == ["kept.ragstore"]
    replaced = cli("export", "-p", "files", "-w", "ws1", "-o", str(out), "--force", env=env)
    assert replaced.exit_code == 0, replaced.output
    assert cli("archive", "verify", str(out)).exit_code == 0


def test_archive_writer_does_not_replace_a_file_that_appears_meanwhile(tmp_path: Path) -> None:
    from ragstore_cli.archive import ArchiveWriter
    from ragstore_cli.errors import UsageError

    out = tmp_path / "race.ragstore"
    writer = ArchiveWriter(out, workspace="w", overwrite=False)
    with writer.kv("full_docs") as section:
        section.write([("doc-1", {"content": "x"})])
    out.write_bytes(b"written by someone else")  # after the preflight, before the rename
    with pytest.raises(UsageError, match="appeared while exporting"):
        writer.finish()
    assert out.read_bytes() == b"written by someone else"
    assert [p.name for p in tmp_path.iterdir()] == ["race.ragstore"]


def test_profile_and_its_old_spelling_disagree(cli, files_ws: Path, tmp_path: Path) -> None:
    result = cli("import", str(files_ws), "--profile", "files", "--to", "postgres", env={"WORKING_DIR": str(tmp_path)})
    _one_line_error(result, 2, "--profile or --to")


def test_lightrag_warning_only_when_a_lightrag_process_uses_the_dir(cli, sample_rag: Path, tmp_path: Path) -> None:
    """The warning names the evidence, once; without evidence nothing is printed (tested above)."""
    import os
    import subprocess
    import sys
    import time

    rag = sample_rag
    env = {"WORKING_DIR": str(rag)}
    # argv names it like the server; the process only sleeps, with LightRAG's WORKING_DIR
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "lightrag-server"],
                              env={"PATH": os.environ.get("PATH", ""), "WORKING_DIR": str(rag)}, cwd=tmp_path)
    try:
        time.sleep(0.3)
        result = cli("export", "-p", "files", "-w", "ws1", "-o", str(tmp_path / "x.ragstore"), env=env)
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:") and "LightRAG" in line
                    and "running" in line]
        assert len(warnings) == 1 and f"pid {server.pid}" in warnings[0], result.stderr
        assert "LightRAG appears to be running" in warnings[0]
    finally:
        server.kill()
        server.wait(10)
