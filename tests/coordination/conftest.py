"""Helpers to run real worker processes against real lock backends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from ragstore_cli.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start `python -m tests.coordination.worker ARGS` with exactly these settings."""
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen([sys.executable, "-m", "tests.coordination.worker", *args], env=full, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"worker did not get ready within {timeout} s")
        time.sleep(0.02)


def finish(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("worker did not finish in time") from None
    assert proc.returncode == 0, err
    return out


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(env: dict[str, str] | None = None) -> Settings:
        return load_settings(environ={"WORKING_DIR": str(tmp_path / "rag"), **(env or {})}, cwd=tmp_path)

    return build


@pytest.fixture(params=["file", "postgres", "redis"])
def backend_env(request, tmp_path: Path) -> dict[str, str]:
    """Settings (as env) for each cross-process backend, each on a real server."""
    env = {"WORKING_DIR": str(tmp_path / "rag"), "RAGSTORE_LOCK_BACKEND": request.param}
    if request.param == "postgres":
        env.update(request.getfixturevalue("pg_database"))
    elif request.param == "redis":
        env.update(request.getfixturevalue("redis_env"))
    return env
