"""`ragstore demo`: the README's main job in one command (servers, sample workspace, export, import, verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import run, state
from ragstore_cli.cli.dev import GRAPH
from ragstore_cli.cli.output import emit, table, workspace_label
from ragstore_cli.cli.progress import progress_observer

GRAPH_NAMES = {"falkordb": "FalkorDB", "neo4j": "Neo4j"}


def demo(
    ctx: typer.Context,
    data_dir: Path = typer.Option(Path(".ragstore-dev"), "--data-dir", help="Folder for the servers and the archives."),
    sample: Optional[Path] = typer.Option(None, "--sample", help="Another LightRAG working dir to use as the sample."),
    graph: Optional[str] = GRAPH,
) -> None:
    """Start the embedded servers, export the sample LightRAG workspace, import it into PostgreSQL + Bolt, verify.

    Example: ragstore demo && ragstore --env-file .ragstore-dev/ragstore.env archive inspect .ragstore-dev/sample.ragstore
    Example: ragstore demo --graph neo4j
    """
    cli = state(ctx)
    with progress_observer(cli) as observer:
        report = run(api.demo(data_dir, sample=sample, graph=graph, observer=observer))

    def render(console) -> None:
        rows = [[key, count, report.roundtrip_counts.get(key)] for key, count in report.counts.items()]
        console.print(table(f"sample workspace: files → archive → PostgreSQL + {GRAPH_NAMES.get(report.graph_server, report.graph_server)} → archive",
                            ["section", "exported", "read back"], rows))
        console.print(f"[green]ok[/] archive {report.archive}; workspace {workspace_label(report.workspace)} in {report.target_profile}; "
                      + ", ".join(f"{k} {v}" for k, v in report.timings.items()))
        console.print(f"settings for the servers: {Path(report.data_dir) / 'ragstore.env'}")

    emit(cli, report.to_dict(), render)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
