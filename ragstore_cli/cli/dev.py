"""`ragstore dev up | down | status`: local servers for trying ragstore (the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import state
from ragstore_cli.cli.output import emit, table
from ragstore_cli.errors import EXIT_FAILED
from ragstore_cli.redact import MASK

dev_app = typer.Typer(help="Start and stop local PostgreSQL + pgvector and a Bolt server for trying ragstore.",
                      no_args_is_help=True)
DATA_DIR = typer.Option(Path(".ragstore-dev"), "--data-dir", help="Folder holding the servers' data.")
GRAPH = typer.Option(None, "--graph", metavar="falkordb|neo4j",
                     help="Bolt graph server: falkordb (default, no Java) or neo4j (Neo4j Community 5.26; "
                          "needs Java 17+ and Maven). Default: the one this data folder used last.")


def _env_lines(servers: api.DevServers) -> list[str]:
    return [f"{k}={MASK if 'PASSWORD' in k and v else v}" for k, v in servers.env().items()]


@dev_app.command("up")
def up(
    ctx: typer.Context,
    data_dir: Path = DATA_DIR,
    graph: Optional[str] = GRAPH,
    write_env: Optional[Path] = typer.Option(None, "--write-env", help="Also write the settings to this file (e.g. .env)."),
    force: bool = typer.Option(False, "--force", help="Let --write-env replace a file ragstore did not write."),
) -> None:
    """Start the servers, bound to loopback, and print the settings that point at them.

    Example: ragstore dev up --write-env .env && ragstore check-connections
    Example: ragstore dev up --graph neo4j
    """
    servers = api.sync.dev_up(data_dir, graph=graph, write_env=write_env, force=force)
    document = {**servers.status(), "env": {k: (MASK if "PASSWORD" in k and v else v) for k, v in servers.env().items()},
                "written_env": str(write_env) if write_env else None}

    def render(console) -> None:
        console.print(f"[green]dev servers running[/] in {servers.data_dir} (graph: {servers.graph_name})")
        console.print("\n".join(_env_lines(servers)))
        console.print(f"\nThe full settings (with the password) are in {servers.env_file}: "
                      f"ragstore --env-file {servers.env_file} check-connections")

    emit(state(ctx), document, render)


@dev_app.command("down")
def down(ctx: typer.Context, data_dir: Path = DATA_DIR) -> None:
    """Stop the servers (their data stays in the data folder).

    Example: ragstore dev down --data-dir .ragstore-dev
    """
    servers = api.sync.dev_down(data_dir)
    document = {"data_dir": str(data_dir.resolve()), "stopped": servers is not None}
    emit(state(ctx), document, lambda c: c.print("stopped" if servers else f"nothing was started in {data_dir}"))


@dev_app.command("status")
def status(ctx: typer.Context, data_dir: Path = DATA_DIR) -> None:
    """Show whether the servers are running; exit 1 if not.

    Example: ragstore --json dev status
    """
    servers = api.sync.dev_status(data_dir)
    document = servers.status() if servers else {"data_dir": str(data_dir.resolve()), "postgres": {"running": False},
                                                  "bolt": {"running": False}}

    def render(console) -> None:
        rows = [["postgres", "running" if document["postgres"]["running"] else "stopped", document["postgres"].get("port", "")],
                ["bolt" + (f" ({document['bolt']['server']})" if document["bolt"].get("server") else ""), "running" if document["bolt"]["running"] else "stopped",
                 document["bolt"].get("uri", "")]]
        console.print(table(f"dev servers in {document['data_dir']}", ["server", "state", "where"], rows))

    emit(state(ctx), document, render)
    if not (document["postgres"]["running"] and document["bolt"]["running"]):
        raise typer.Exit(EXIT_FAILED)


def register(root: typer.Typer) -> None:
    root.add_typer(dev_app, name="dev")
