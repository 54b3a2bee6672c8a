"""The README's main job, end to end: embedded servers, a real LightRAG workspace, export, import, verify.

1. start the embedded PostgreSQL + pgvector and Bolt servers (`ragstore dev up`; FalkorDB or Neo4j);
2. copy the sample workspace (built by LightRAG 1.5.7's own pipeline, examples/sample_workspace);
3. export it from files to a `.ragstore` archive and verify the archive;
4. import it into PostgreSQL (KV, vectors, doc status) and the Bolt server (graph);
5. export it back from there and check that every section holds the same records.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.config import Settings, load_settings
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.engine import ExportPlan, ImportPlan, Observer, export_workspace, import_archive

TARGET_PROFILE = "neo4j,postgres"  # graph → Bolt, every other role → PostgreSQL
DEMO_WORKSPACE = "demo"


@dataclass(frozen=True)
class DemoReport:
    data_dir: str
    archive: str
    target_profile: str
    workspace: str
    counts: dict[str, int]
    roundtrip_counts: dict[str, int]
    graph_server: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.counts == self.roundtrip_counts, **self.__dict__}


def sample_folder(explicit: Path | None = None) -> Path:
    """The sample workspace: an explicit folder, the package's copy, or the source tree's examples/."""
    candidates = [explicit] if explicit else []
    candidates.append(Path(str(resources.files("ragstore_cli") / "demo_data" / "sample_workspace")))
    candidates.append(Path(__file__).resolve().parent.parent / "examples" / "sample_workspace")
    for folder in candidates:
        if folder and (folder / "kv_store_full_docs.json").is_file():
            return folder
    raise UsageError("the sample LightRAG workspace is missing",
                     hint="run python examples/build_sample_workspace.py in a source checkout, or pass --sample DIR")


def _sample_model(folder: Path) -> tuple[str | None, str | None]:
    try:
        lines = (folder / "MODEL").read_text(encoding="utf-8").split()
        return lines[0], lines[1]
    except (OSError, IndexError):
        return None, None


async def run_demo(data_dir: Path, *, sample: Path | None = None, observer: Observer | None = None,
                   base: dict[str, str] | None = None, graph: str | None = None) -> DemoReport:
    """Run the whole job; every step raises a RagstoreError on failure (nothing is left half-imported)."""
    from ragstore_cli.embedded import dev

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    data_dir = Path(data_dir).resolve()
    servers = dev.up(data_dir, graph)
    timings["servers_up_s"] = time.perf_counter() - clock

    source_dir = data_dir / "sample_workspace"
    shutil.rmtree(source_dir, ignore_errors=True)
    shutil.copytree(sample_folder(sample), source_dir)
    model, dim = _sample_model(source_dir)
    env = {**(base or {}), **servers.env(), "WORKING_DIR": str(source_dir)}
    if model:
        env["EMBEDDING_MODEL"] = model
    if dim:
        env["EMBEDDING_DIM"] = dim
    settings: Settings = load_settings(environ=env)

    archive = data_dir / "sample.ragstore"
    step = time.perf_counter()
    # The demo's own archives (in its data folder) are rewritten on every run.
    observer = observer or Observer()
    exported = await export_workspace(settings, ExportPlan(archive, workspace="", profile="files", overwrite=True),
                                      observer)
    ArchiveReader(archive).verify()
    timings["export_s"] = time.perf_counter() - step

    step = time.perf_counter()
    await import_archive(settings, ImportPlan(archive, workspace=DEMO_WORKSPACE, profile=TARGET_PROFILE,
                                              if_exists="replace"), observer)
    timings["import_s"] = time.perf_counter() - step

    step = time.perf_counter()
    back = data_dir / "sample-from-servers.ragstore"
    again = await export_workspace(settings, ExportPlan(back, workspace=DEMO_WORKSPACE, profile=TARGET_PROFILE,
                                                        overwrite=True))
    ArchiveReader(back).verify()
    timings["verify_s"] = time.perf_counter() - step
    timings["total_s"] = time.perf_counter() - clock
    report = DemoReport(str(data_dir), str(archive), TARGET_PROFILE, DEMO_WORKSPACE, exported.counts, again.counts,
                        servers.graph_name, {k: round(v, 2) for k, v in timings.items()})
    if exported.counts != again.counts:
        raise OperationFailed(f"the servers hold different counts than the sample: {again.counts} vs {exported.counts}")
    return report
