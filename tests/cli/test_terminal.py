"""Colours and boxes only on a terminal; NO_COLOR honoured (run under a real pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys


def _run_in_pty(args: list[str], env: dict[str, str], cwd) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "ragstore_cli", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update({"TERM": "xterm-256color", "XDG_RUNTIME_DIR": str(tmp_path), "WORKING_DIR": str(tmp_path)}, **extra)
    return env


def test_terminal_gets_colours_and_boxes(tmp_path):
    out = _run_in_pty(["check-connections", "-b", "files"], _env(tmp_path), tmp_path)
    assert re.search(r"\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7])(?:;|m)", out) and "┃" in out


def test_no_color_is_honoured(tmp_path):
    out = _run_in_pty(["check-connections", "-b", "files"], _env(tmp_path, NO_COLOR="1"), tmp_path)
    colour = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7])(?:;|m)")
    assert not colour.search(out)  # bold/italic may stay; no foreground colours
    assert "files" in out


def test_pipe_gets_plain_text(cli, tmp_path):
    result = cli("check-connections", "-b", "files", env={"WORKING_DIR": str(tmp_path)})
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout and "┃" not in result.stdout and "files" in result.stdout
