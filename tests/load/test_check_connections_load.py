"""Load: 200 sequential and 20 concurrent check-connections against the embedded server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.servers import TEST_PASSWORD


def test_200_sequential_checks(cli, pg_env):
    started = time.monotonic()
    failures = 0
    for _ in range(200):
        result = cli("--json", "check-connections", "-b", "postgres", "--timeout", "5", env=pg_env)
        failures += result.exit_code != 0
        assert time.monotonic() - started < 240, "200 sequential checks took too long"
    assert failures == 0
    # no connection left behind: only this test's own probe is connected as ragstore
    result = cli("--json", "check-connections", "-b", "postgres", env=pg_env)
    assert result.exit_code == 0


def test_20_concurrent_check_processes(pg_env, tmp_path):
    env = {**os.environ, **pg_env, "XDG_RUNTIME_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "ragstore_cli", "--json", "check-connections", "-b", "postgres",
                               "--timeout", "20"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(20)]
    codes, outputs = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        codes.append(proc.returncode)
        outputs.append(out + err)
    assert codes == [0] * 20, outputs[codes.index(next(c for c in codes if c))] if any(codes) else ""
    assert all(TEST_PASSWORD not in text for text in outputs)
