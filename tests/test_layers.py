"""The layers of docs/architecture.md hold: lint-imports keeps every contract of pyproject.toml.

(cli over the api over the engine over the archive over the backend registry over each backend over the contract
over connect over records; the engine and the archive never import a backend's internals; a backend
never imports the CLI, the engine, the archive or another backend; the CLI imports, of ragstore's
library, only ragstore_cli.api (and errors, config, redact); no import cycles anywhere.)
"""

from __future__ import annotations

import subprocess
import sys
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_every_import_contract_is_kept():
    done = lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    config = (REPO / "pyproject.toml").read_text()
    contracts = config.count("[[tool.importlinter.contracts]]")
    assert f"Contracts: {contracts} kept, 0 broken." in done.stdout
    assert set(re.findall(r'^type = "(\w+)"', config, re.M)) >= {"layers", "forbidden", "independence", "acyclic_siblings"}


def lint_a_copy_where(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """lint-imports over a copy of the package in which `module` (a path inside it) also holds `line`."""
    import shutil

    copy = tmp_path / "ragstore_cli"
    shutil.copytree(REPO / "ragstore_cli", copy, ignore=shutil.ignore_patterns("__pycache__"))
    changed = copy / module
    changed.write_text(changed.read_text() + f"\n{line}  # noqa\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from importlinter.cli import lint_imports_command; "
            "sys.argv[1:] = ['--no-cache']; sys.exit(lint_imports_command())")
    return subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def test_the_contracts_catch_an_engine_that_imports_a_backend(tmp_path):
    """A copy of the package whose engine imports PostgreSQL's internals breaks the contracts."""
    done = lint_a_copy_where(tmp_path, "engine/move.py", "from ragstore_cli.backends.postgres import mapping")
    assert done.returncode != 0, done.stdout[-2000:]
    assert "never import a backend's internals" in done.stdout and "BROKEN" in done.stdout


def test_the_contracts_catch_a_command_that_calls_the_engine_past_the_api(tmp_path):
    """A command module importing the engine (even inside a function, as lazy imports are written)
    breaks the contract that the CLI calls only ragstore_cli.api."""
    done = lint_a_copy_where(tmp_path, "cli/check.py",
                             "def _past_the_api():\n    from ragstore_cli.engine import verbs")
    assert done.returncode != 0, done.stdout[-2000:]
    assert "the CLI calls only ragstore_cli.api" in done.stdout and "BROKEN" in done.stdout
    assert "ragstore_cli.cli.check -> ragstore_cli.engine.verbs" in done.stdout, done.stdout[-2000:]
