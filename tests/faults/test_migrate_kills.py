"""`ragstore migrate upgrade` SIGKILLed at seeded points, from the mode-keyed layout of an older
LightRAG holding legacy LLM-cache rows in every mode and several workspaces.

Backfills run in batches of 40 rows here (a test-only setting of ops.BATCH_ROWS), so a few hundred
legacy rows span many batches. After each kill a plain re-run must finish, and the database must
then equal an uninterrupted upgrade of the same starting point: every row of every table (each
legacy row under its `mode:cache_type:hash` key, once) and the whole catalog.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from tests.faults import harness
from tests.faults.harness import Fault, fault_record, kill_points
from tests.schema.conftest import pg, snapshot as catalog

K = int(os.environ.get("RAGSTORE_FAULT_POINTS", "20"))
HOOKS = ("sqlalchemy.engine.base:Connection.execute",)
SETTINGS = "ragstore_cli.schema.ops:BATCH_ROWS=40"
FIXTURE = Path(__file__).parents[1] / "schema" / "fixtures" / "mode_keyed.sql"
MODES = ("default", "local", "global", "hybrid", "naive", "mix")
WORKSPACES = ("default", "team_a", "team_b")
PER_MODE = 20  # 3 workspaces x 6 modes x 20 = 360 legacy rows, plus the fixture's 7


def key(mode: str, prompt: str) -> str:
    return f"{mode}:{'extract' if mode == 'default' else 'unknown'}:{hashlib.md5(prompt.encode()).hexdigest()}"


async def prepare(env: dict[str, str]) -> None:
    from ragstore_cli.config import load_settings
    from ragstore_cli.schema import api

    conn = await pg(env)
    try:
        await conn.execute(FIXTURE.read_text())
        rows = []
        for ws in WORKSPACES:
            for mode in MODES:
                for n in range(PER_MODE):
                    prompt = f"{ws} {mode} question {n}"
                    legacy_id = hashlib.md5(f"{ws}{mode}{n}".encode()).hexdigest()[:12]
                    rows.append((ws, legacy_id, mode, prompt, f"answer {ws}/{mode}/{n}", dt.datetime(2024, 5, 1 + n % 9, 10)))
        await conn.executemany("INSERT INTO lightrag_llm_cache (workspace, id, mode, original_prompt, return_value, "
                               "update_time) VALUES ($1, $2, $3, $4, $5, $6)", rows)
    finally:
        await conn.close()
    adopted = await api.adopt(load_settings(environ=env))
    assert adopted["stamped"] == "0001", adopted


async def cache_rows(env: dict[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    conn = await pg(env)
    try:
        rows = await conn.fetch("SELECT workspace, id, return_value, cache_type FROM lightrag_llm_cache")
    finally:
        await conn.close()
    return {(r["workspace"], r["id"]): (r["return_value"], r["cache_type"]) for r in rows}


def expected_cache() -> dict[tuple[str, str], tuple[str, str]]:
    out = {}
    for ws in WORKSPACES:
        for mode in MODES:
            for n in range(PER_MODE):
                out[(ws, key(mode, f"{ws} {mode} question {n}"))] = (f"answer {ws}/{mode}/{n}",
                                                                     "extract" if mode == "default" else "unknown")
    return out


@pytest.fixture(scope="module")
def migrate_scenario(runner, pg_server):
    template = "fm_" + uuid.uuid4().hex[:10]
    pg_server.psql(f"CREATE DATABASE {template} TEMPLATE template0")
    asyncio.run(prepare(pg_server.env(database=template)))
    made = [template]

    def database() -> dict[str, str]:
        name = "fmk_" + uuid.uuid4().hex[:10]
        pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
        made.append(name)
        return pg_server.env(database=name)

    env = database()
    count = runner.run(["migrate", "upgrade"], env, fault=Fault(HOOKS), extra_env={"FAULTWRAP_SET": SETTINGS})
    assert count.code == 0, count.describe()
    rows = asyncio.run(cache_rows(env))
    wanted = expected_cache()
    assert {k: v for k, v in rows.items() if k in wanted} == wanted and len(rows) == len(wanted) + 7
    yield {"database": database, "rows": harness.pg_digest(env), "catalog": asyncio.run(catalog(env)),
           "points": kill_points("migrate-upgrade", count.trace["calls"], K), "calls": count.trace["calls"]}
    for name in reversed(made):
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("i", range(K))
def test_migrate_upgrade_killed(migrate_scenario, runner, pg_server, i):
    s = migrate_scenario
    at, mode = s["points"][i]
    env = s["database"]()
    with fault_record("migrate upgrade (mode-keyed layout, 367 legacy cache rows)",
                      f"call {at}/{s['calls']} {mode}") as entry:
        killed = runner.run(["migrate", "upgrade"], env, fault=Fault(HOOKS, at, mode),
                            extra_env={"FAULTWRAP_SET": SETTINGS})
        entry["point"] += f" ({killed.trace.get('name', '?')})"
        if killed.killed:
            again = runner.run(["migrate", "upgrade", "--lock-timeout", "30"], env)
            assert again.code == 0, again.describe()
            entry["outcome"] = "killed, then re-run"
        else:
            assert killed.code == 0, killed.describe()
            entry["outcome"] = "not reached"
        rows = harness.pg_digest(env)
        lost = sum(n for t, (n, _) in s["rows"].items() if t not in rows) + sum(
            max(0, s["rows"][t][0] - rows[t][0]) for t in rows if t in s["rows"])
        extra = sum(max(0, rows[t][0] - s["rows"].get(t, (0, ""))[0]) for t in rows)
        entry.update(lost=lost, extra=extra, changed=sum(1 for t in rows if t in s["rows"] and rows[t] != s["rows"][t]))
        assert rows == s["rows"], "the data differs from an uninterrupted upgrade"
        assert asyncio.run(catalog(env)) == s["catalog"], "the catalog differs from an uninterrupted upgrade"
    pg_server.psql(f"DROP DATABASE IF EXISTS {env['POSTGRES_DATABASE']} WITH (FORCE)")
