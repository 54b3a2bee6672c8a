"""The CLI shell: version, module entry point, JSON-only stdout, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

from ragstore_cli import __version__


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ragstore {__version__}"


def test_python_dash_m_and_console_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "NEO4J_", "REDIS_"))}
    for cmd in ([sys.executable, "-m", "ragstore_cli", "--version"], [os.path.join(os.path.dirname(sys.executable), "ragstore"), "--version"]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("ragstore ")


def test_json_error_is_one_document_and_exit_code(cli):
    result = cli("--json", "check-connections", "--backend", "oracle")
    assert result.exit_code == 2
    assert result.json() == {"ok": False, "error": "unknown backend 'oracle'; choose from postgres, neo4j, redis, files", "exit_code": 2}


def test_json_error_carries_the_hint(cli, tmp_path):
    result = cli("--json", "workspace", "list", "--profile", "files,neo4j", env={"WORKING_DIR": str(tmp_path)})
    assert result.exit_code == 2
    document = result.json()
    assert document["ok"] is False and document["exit_code"] == 2
    assert document["error"].startswith("profile 'files,neo4j' gives neo4j no role")
    assert document["hint"] == "or list neo4j first: neo4j,files"
    assert "hint" not in cli("--json", "check-connections", "--backend", "oracle").json()  # only when there is one


def test_usage_error_exit_2(cli):
    result = cli("check-connections", "--timeout", "soon")
    assert result.exit_code == 2


def test_files_check_reports_unparsable_file(cli, tmp_path):
    work = tmp_path / "rag"
    (work / "ws1").mkdir(parents=True)
    (work / "ws1" / "kv_store_full_docs.json").write_text('{"doc-1": {"content": "x"}}')
    (work / "ws1" / "kv_store_text_chunks.json").write_text('{"broken": ')
    (work / "ws1" / "graph_chunk_entity_relation.graphml").write_text("<graphml><graph><node id='a'/></graph></graphml>")
    result = cli("--json", "check-connections", "-b", "files", env={"WORKING_DIR": str(work), "WORKSPACE": "ws1"})
    assert result.exit_code == 1
    files = result.json()[0]
    assert files["details"]["files"]["kv_store_full_docs.json"].startswith("ok (1 records)")
    assert files["details"]["files"]["graph_chunk_entity_relation.graphml"] == "ok (1 nodes, 0 edges)"
    assert "kv_store_text_chunks.json: does not parse" in files["error"]


def test_files_check_missing_workspace(cli, tmp_path):
    result = cli("--json", "check-connections", "-b", "files", env={"WORKING_DIR": str(tmp_path), "WORKSPACE": "nope"})
    assert result.exit_code == 1
    assert "does not exist" in result.json()[0]["error"]


def test_os_and_connection_errors_are_plain_one_liners():
    import errno

    import asyncpg

    from ragstore_cli.cli.app import _describe

    code, message, _ = _describe(OSError(errno.EFBIG, "File too large", "/data/out.ragstore.partial"))
    assert (code, message) == (1, "File too large: /data/out.ragstore.partial")
    code, message, hint = _describe(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"))
    # the generic hint names no --resume: an export or a drop has nothing to resume (the importer adds it)
    assert code == 1 and message.startswith("postgres: the connection was lost") and "--resume" not in hint
    code, message, hint = _describe(TimeoutError())  # asyncpg's command_timeout raises it with no text
    assert code == 1 and message.startswith("timed out") and "RAGSTORE_COMMAND_TIMEOUT" in message and "--resume" not in hint
    code, message, _ = _describe(ValueError("boom"))
    assert message == "unexpected ValueError: boom"


def test_global_options_after_the_command_act_like_before(cli):
    after = cli("check-connections", "--backend", "oracle", "--json", "--debug")
    assert after.exit_code == 2
    assert after.json()["error"].startswith("unknown backend 'oracle'")
    assert "Traceback" in after.stderr  # --debug after the command shows it too
    before = cli("--json", "check-connections", "--backend", "oracle")
    assert before.json() == after.json() and "Traceback" not in before.stderr
