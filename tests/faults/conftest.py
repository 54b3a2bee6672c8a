"""Fixtures of the fault tests: the child-process runner, one LightRAG-built source, its archive."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults import harness

SRC = "faults_src"  # not the transfer tests' name: LightRAG keeps per-workspace state in-process
DOCS = {
    "alice.txt": "Alice met Bob in Paris. Alice works at Acme with Carol. Carol leads Orion in Madrid.",
    "bob.txt": "Bob founded Zenith in Berlin. Bob and Alice wrote Atlas together. Atlas cites Hermes.",
    "café.md": "Dana visited Paris. Dana admires Carol and the Louvre — «très belle». Dana paints Vega.",
    "eve.txt": "Eve joined Zenith in Lisbon. Eve and Frank built Nimbus. Frank studied at Oxford with Grace.",
    "hal.txt": "Hal sails from Oslo to Bergen. Hal trades with Ivan and Judy. Judy runs Quasar in Vienna.",
    "kim.txt": "Kim teaches at Oxford. Kim and Leo founded Polaris in Dublin. Leo admires Hermes and Vega.",
}


def pytest_sessionfinish(session, exitstatus):  # pragma: no cover - housekeeping
    if not harness.TOTALS:
        return
    path = Path(os.environ.get("RAGSTORE_FAULTS_TOTALS", str(harness.HERE / "totals.json")))
    path.write_text(json.dumps(harness.summarize(harness.TOTALS), indent=2, ensure_ascii=False) + "\n")


@pytest.fixture(scope="session")
def runner(tmp_path_factory):
    r = harness.Runner(tmp_path_factory.mktemp("runs"))
    yield r
    r.close()


@pytest.fixture(scope="session")
async def source(tmp_path_factory):
    """A small LightRAG workspace built by LightRAG's own pipeline (files backends)."""
    from tests.interop.lightrag_builder import build_workspace

    return await build_workspace(tmp_path_factory.mktemp("src"), SRC, docs=DOCS)


@pytest.fixture(scope="session")
def source_env(source) -> dict[str, str]:
    return {"WORKING_DIR": str(source.working_dir), "EMBEDDING_MODEL": "fake-embed"}


@pytest.fixture(scope="session")
async def archive(source, source_env, tmp_path_factory) -> Path:
    """The source exported once (in-process), read by every import scenario."""
    from ragstore_cli.config import load_settings
    from ragstore_cli.engine import ExportPlan, export_workspace

    out = tmp_path_factory.mktemp("archive") / "src.ragstore"
    await export_workspace(load_settings(environ=source_env), ExportPlan(out, workspace=SRC, profile="files", batch_size=5))
    return out


def _mutate_source(folder: Path) -> None:
    """An older state of the workspace: one document gone, one rewritten, one chunk changed."""
    def edit(name: str, change) -> None:
        path = folder / name
        data = json.loads(path.read_text("utf-8"))
        change(data)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")

    def docs(data: dict) -> None:
        first, second = sorted(data)[:2]
        del data[first]
        data[second]["content"] = "An older text of this document."

    def chunks(data: dict) -> None:
        key = sorted(data)[0]
        data[key]["content"] = "an older chunk"

    edit("kv_store_full_docs.json", docs)
    edit("kv_store_text_chunks.json", chunks)
    edit("kv_store_doc_status.json", lambda d: d.pop(sorted(d)[0]))


@pytest.fixture(scope="session")
async def old_archive(source, tmp_path_factory) -> Path:
    """An archive of an OLDER state of the same workspace: what import targets hold before `replace`."""
    import shutil

    from ragstore_cli.config import load_settings
    from ragstore_cli.engine import ExportPlan, export_workspace

    root = tmp_path_factory.mktemp("old")
    shutil.copytree(source.working_dir / SRC, root / "wd" / SRC)
    _mutate_source(root / "wd" / SRC)
    out = root / "old.ragstore"
    await export_workspace(load_settings(environ={"WORKING_DIR": str(root / "wd"), "EMBEDDING_MODEL": "fake-embed"}), ExportPlan(out, workspace=SRC, profile="files", batch_size=50))
    return out
