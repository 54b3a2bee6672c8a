"""A workspace name is checked once, where it comes in (the plan), not again in every layer it passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragstore_cli import workspace as names
from ragstore_cli.config import load_settings
from ragstore_cli.engine import ExportPlan, ImportPlan, export_workspace, import_archive
from ragstore_cli.errors import UsageError

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_workspace"


async def test_an_import_checks_its_workspace_name_once(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(SAMPLE, tmp_path / "src" / "ws1")
    archive = tmp_path / "a.ragstore"
    await export_workspace(load_settings(environ={"WORKING_DIR": str(tmp_path / "src")}), ExportPlan(archive, workspace="ws1",
                                                                                                     profile="files"))
    checked: list[str] = []
    real = names._refuse_unsafe

    def counting(name: str) -> None:
        checked.append(name)
        real(name)

    monkeypatch.setattr(names, "_refuse_unsafe", counting)
    target = load_settings(environ={"WORKING_DIR": str(tmp_path / "dst")})
    report = await import_archive(target, ImportPlan(archive, workspace="team-a", profile="files"))
    assert sum(report.counts.values()) > 0
    assert checked == ["team-a"]  # the plan's check; the registry, the backends, the lock and the ledger trust it


def test_a_refused_name_is_refused_where_it_comes_in(tmp_path):
    with pytest.raises(UsageError, match="not allowed"):
        ImportPlan(tmp_path / "a.ragstore", workspace="a/b")
