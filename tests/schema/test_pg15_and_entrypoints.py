"""The machine's PostgreSQL 15 (no pgvector), the repository-root `alembic` entry point, and an installed wheel."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragstore_cli.schema import api, catalog
from tests.schema.conftest import pg, settings_for, snapshot, user_tables

ROOT = Path(__file__).resolve().parents[2]


async def test_pg15_without_pgvector_empty_to_head_to_base(pg15_database):
    settings = settings_for(pg15_database, EMBEDDING_MODEL="BAAI/bge-m3", EMBEDDING_DIM="1024")
    plan = await api.upgrade(settings, dry_run=True)
    assert plan["vector_tables"] == [] and any("would be skipped" in n for n in plan["notes"])
    result = await api.upgrade(settings)
    assert result["to"] == "0012" and result["vector_tables"] == []
    assert any("pgvector is not available" in n for n in result["notes"])
    conn = await pg(pg15_database)
    try:
        assert await conn.fetchval("SHOW server_version_num") < "160000"
        assert catalog.differences(await catalog.fingerprint(conn), catalog.EXPECTED["0012"]) == []
    finally:
        await conn.close()
    await api.downgrade(settings, "base")
    assert user_tables(await snapshot(pg15_database)) == {"ragstore_alembic_version"}


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "EMBEDDING_", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def test_alembic_upgrade_head_from_the_repository_root(pg_database):
    alembic = Path(sys.executable).with_name("alembic")
    done = subprocess.run([str(alembic), "upgrade", "head"], cwd=ROOT, env=_clean_env(pg_database),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pg_database["POSTGRES_PASSWORD"] not in done.stdout + done.stderr
    current = subprocess.run([str(alembic), "current"], cwd=ROOT, env=_clean_env(pg_database),
                             capture_output=True, text=True, timeout=60)
    assert "0012 (head)" in current.stdout, current.stderr
    # the revisions guard themselves too (plain alembic has no preflight): data is never dropped silently
    asyncio.run(_execute(pg_database, "INSERT INTO lightrag_full_entities (id, workspace, entity_names, count) "
                                      "VALUES ('d', 'default', '[]', 0)"))
    down = subprocess.run([str(alembic), "downgrade", "0009"], cwd=ROOT, env=_clean_env(pg_database),
                          capture_output=True, text=True, timeout=120)
    assert down.returncode != 0 and "pass --force" in down.stderr
    assert asyncio.run(_execute(pg_database, "SELECT count(*) FROM lightrag_full_entities")) == 1


async def _execute(env: dict[str, str], sql: str):
    conn = await pg(env)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.slow
def test_installed_wheel_migrates_from_another_directory(pg_database, tmp_path):
    """A wheel installed (non-editable) into a fresh venv carries the revisions: `ragstore migrate upgrade head`."""
    wheels = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("ragstore-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    # dependencies come from the test environment (offline); ragstore itself only from the wheel
    outer = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    inner = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    (Path(inner) / "zz_test_deps.pth").write_text(outer + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(py), "-c", "import ragstore_cli; print(ragstore_cli.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, env=_clean_env({}), check=True).stdout.strip()
    assert where.startswith(str(venv))  # the installed copy, not the editable checkout
    done = subprocess.run([str(venv / "bin" / "ragstore"), "--json", "migrate", "upgrade", "head"], cwd=elsewhere,
                          env=_clean_env(pg_database), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '"to": "0012"' in done.stdout


async def test_pg15_adopts_the_mode_keyed_layout_and_flattens_every_legacy_row(pg15_database):
    from tests.schema.test_adopt import cache_rows, key, load

    await load(pg15_database, "mode_keyed.sql")
    settings = settings_for(pg15_database)
    assert (await api.adopt(settings))["stamped"] == "0001"
    await api.upgrade(settings)
    rows = await cache_rows(pg15_database)
    assert len(rows) == 7
    assert rows[("default", key("hybrid", "what is hybrid?"))] == ("H1", "unknown")
    assert rows[("other_ws", key("default", "extract entities from chunk one"))] == ("E2", "extract")
