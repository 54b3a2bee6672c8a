"""`ragstore … | head`: a reader that goes away ends ragstore quietly with status 141, as git and gh
(ended by SIGPIPE) -- not "error: Broken pipe", not Python's "Exception ignored", not Rich's exit 1.

A real process writing into a real pipe whose read end is closed before it writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ragstore_cli.errors import EXIT_BROKEN_PIPE


def _run_into_a_closed_pipe(args: list[str], env: dict[str, str], cwd) -> tuple[int, str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before ragstore writes a byte
    try:
        done = subprocess.run([sys.executable, "-m", "ragstore_cli", *args], stdout=write_end, stderr=subprocess.PIPE,
                              env=env, cwd=cwd, timeout=120)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr.decode()


@pytest.mark.parametrize("args, extra", [
    (["--help"], {}),  # typer's help, drawn by Rich
    (["config", "show", "--all"], {}),  # a Rich table
    (["--json", "config", "show", "--all"], {}),  # JSON still in Python's buffer at exit
    (["--json", "config", "show", "--all"], {"EMBEDDING_MODEL": "m" * 70_000}),  # written while the command runs
    (["--json", "check-connections", "--backend", "files"], {"WORKING_DIR": "/nonexistent"}),  # a failing command
])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path, args, extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "100", **extra}
    code, stderr = _run_into_a_closed_pipe(args, env, tmp_path)
    assert (code, stderr) == (EXIT_BROKEN_PIPE, "")


def test_an_error_document_into_a_closed_pipe_keeps_its_stderr_line(tmp_path):
    """The error boundary's JSON document is still buffered when the command ends: the final flush
    meets the closed pipe (Python alone would print "Exception ignored …" and exit 120)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    code, stderr = _run_into_a_closed_pipe(["--json", "check-connections", "--backend", "oracle"], env, tmp_path)
    assert code == EXIT_BROKEN_PIPE
    assert stderr == "error: unknown backend 'oracle'; choose from postgres, neo4j, redis, files\n"


def test_an_open_pipe_is_not_mistaken_for_a_closed_one(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "ragstore_cli", "--json", "config", "show"], capture_output=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(b"{") and done.stderr == b""
