"""The wheel CI builds works on its own: installed into a fresh venv, `migrate upgrade --sql` finds the
packaged Alembic scripts and `check-connections` reaches a real server, with no source checkout on
the path. CI passes the wheel it built (RAGSTORE_TEST_WHEEL, .ci/run); otherwise the test builds one."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300  # pip fetches the build backend once, then its cache serves it
RUN_TIMEOUT = 120


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", RUN_TIMEOUT), **kw)
    assert done.returncode == 0, f"{cmd}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("RAGSTORE_TEST_WHEEL")
    if given:
        return Path(given).resolve()
    src = tmp_path_factory.mktemp("src")  # a copy: building leaves build/ and *.egg-info behind
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "ragstore_cli", src / "ragstore_cli", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], timeout=BUILD_TIMEOUT)
    [built] = out.glob("ragstore-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory) -> Path:
    """A new venv holding only the wheel; the dependencies come from this venv's site-packages through
    a .pth line (the lines of .pth files found there are not run, so this venv's editable install of
    the checkout stays invisible)."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
          str(wheel)])
    [fresh_site] = (venv / "lib").glob("python3*/site-packages")
    (fresh_site / "ragstore-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("POSTGRES_", "NEO4J_", "REDIS_", "LIGHTRAG_", "PYTHON")) and k != "WORKING_DIR"}
    return {**keep, **extra}


def test_the_installed_wheel_is_what_runs(fresh: Path, tmp_path: Path):
    where = _run([str(fresh / "bin" / "python"), "-c", "import ragstore_cli; print(ragstore_cli.__file__)"],
                 cwd=tmp_path, env=_clean_env()).stdout.strip()
    assert where.startswith(str(fresh)) and not where.startswith(str(REPO)), where


def test_migrate_upgrade_sql_from_the_packaged_alembic_scripts(fresh: Path, tmp_path: Path):
    offline = _run([str(fresh / "bin" / "ragstore"), "migrate", "upgrade", "--sql"], cwd=tmp_path, env=_clean_env())
    versions = sorted(p.stem.split("_")[0] for p in (REPO / "ragstore_cli" / "schema" / "alembic" / "versions").glob("0*.py"))
    assert f"-- Running upgrade {versions[-2]} -> {versions[-1]}" in offline.stdout
    assert "CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_FULL" in offline.stdout
    from ragstore_cli.schema import api

    assert offline.stdout == api.sql("head")  # the same revisions as the checkout's


def test_check_connections_from_the_wheel(fresh: Path, tmp_path: Path, pg_env):
    (tmp_path / "rag_storage").mkdir()
    env = _clean_env(**pg_env, WORKING_DIR=str(tmp_path / "rag_storage"))
    done = _run([str(fresh / "bin" / "ragstore"), "check-connections", "-b", "postgres", "-b", "files", "--json"],
                cwd=tmp_path, env=env)
    found = {item["backend"]: item for item in json.loads(done.stdout)}
    assert found["postgres"]["ok"] and found["postgres"]["details"]["pgvector_installed"] is True
    assert found["files"]["ok"]
