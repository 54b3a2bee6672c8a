"""`ragstore workspace list|show|create|drop|copy|rename`: parse, call engine/workspace_ops, render."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import PROFILE, run, settings, state
from ragstore_cli.cli.output import CliState, emit, table
from ragstore_cli.cli.progress import progress_observer

workspace_app = typer.Typer(help="List, inspect, create, drop, copy and rename LightRAG workspaces in every backend.",
                            no_args_is_help=True)

WORKING_DIR = typer.Option(None, "--working-dir", help="LightRAG working directory (default WORKING_DIR).")
LOCK_TIMEOUT = typer.Option(None, "--lock-timeout", min=0.0,
                            help="Seconds to wait for another ragstore holding the workspace (default RAGSTORE_LOCK_TIMEOUT); then exit 3.")


def _prepare(ctx: typer.Context, working_dir: Optional[str]) -> tuple[CliState, Any]:
    return state(ctx), settings(ctx, {"WORKING_DIR": working_dir})


def shown(name: str) -> str:
    """A workspace name for people: `(default)` for ""."""
    return name if name else "(default)"


def _when(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M") if epoch else ""


def _vectors(namespace: dict[str, Any]) -> str:
    """Model and dimension in one cell (`bge_m3 1024d`), as much as is known."""
    model, dim = namespace.get("model"), namespace.get("dimension")
    return " ".join(part for part in (str(model or ""), f"{dim}d" if dim else "") if part)


def _collisions(console: Any, names: list[str]) -> None:
    if names:
        console.print(f"[yellow]warning:[/] LightRAG's server layer folds this name like {', '.join(map(repr, names))} "
                      "(non [A-Za-z0-9_] characters become '_'): they would share one workspace there")


@workspace_app.command("list")
def list_cmd(ctx: typer.Context, profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR) -> None:
    """Every workspace in every configured backend, with record counts per role.

    Example: ragstore workspace list --profile postgres
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_list(profile=profile, settings=cfg))

    def render(console: Any) -> None:
        rows = [[shown(w["workspace"]), ",".join(w["backends"]), *w["counts"].values(),
                 ", ".join(w["collides_with"])] for w in report["workspaces"]]
        console.print(table(f"Workspaces ({report['profile']})",
                            ["workspace", "backends", "kv", "vector", "graph", "doc_status", "collides with"], rows,
                            whole=1))

    emit(cli, report, render)


@workspace_app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help='Workspace ("" for the default).'),
             profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR) -> None:
    """Counts per namespace, vector model and dimension, sizes and day of the last update (UTC).

    Example: ragstore workspace show team_a --json
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_show(name, profile=profile, settings=cfg))

    def render(console: Any) -> None:  # 80 columns: model and dimension share a column
        rows = [[n["backend"], n["namespace"], n["count"], n.get("bytes") or "", _vectors(n),
                 _when(n.get("last_update"))[:10]] for n in report["namespaces"]]
        console.print(table(f"Workspace {shown(report['workspace'])} ({report['profile']})",
                            ["backend", "namespace", "records", "bytes", "vectors", "updated"], rows, whole=2))
        _collisions(console, report["collides_with"])

    emit(cli, report, render)


@workspace_app.command("create")
def create_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Workspace to prepare."),
               profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR) -> None:
    """Prepare an empty workspace LightRAG can start on (folder, tables, vector tables and indexes).

    Example: EMBEDDING_MODEL=bge-m3 EMBEDDING_DIM=1024 ragstore workspace create team_b --profile postgres
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_create(name, profile=profile, settings=cfg))

    def render(console: Any) -> None:
        for backend, created in report["created"].items():
            console.print(f"{backend}: " + (", ".join(created) if created else "already prepared"))
        _collisions(console, report["collides_with"])

    emit(cli, report, render)


@workspace_app.command("drop")
def drop_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Workspace to delete."),
             yes: bool = typer.Option(False, "--yes", help="Really delete (required)."),
             profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR,
             lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Delete a workspace from every backend of the profile, with ragstore's own traces of it (import
    ledgers and staging, transfer journal); stop LightRAG first. A name found nowhere is refused (exit 2).

    Example: ragstore workspace drop old_team --yes
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_drop(name, yes=yes, profile=profile, lock_timeout=lock_timeout, settings=cfg))

    def render(console: Any) -> None:
        rows = [[backend, ns, n] for backend, removed in report["removed"].items() for ns, n in removed.items()]
        console.print(table(f"Dropped {shown(report['workspace'])}", ["backend", "namespace", "records"], rows))
        for trace in report["traces"]:
            console.print(f"removed {trace}")

    emit(cli, report, render)


def _transfer_render(report: dict[str, Any], verb: str) -> Any:
    def render(console: Any) -> None:
        if report.get("resumed"):
            console.print(f"finished an interrupted {'rename' if verb == 'moved' else 'copy'} of "
                          f"{shown(report['source'])} → {shown(report['target'])}")
        for backend, done in report["backends"].items():
            detail = ", ".join(f"{k}={v}" for k, v in done["details"].items())
            console.print(f"{backend} ({done['method']}): {verb} {detail or 'nothing'}")
            for ns, fields in (done.get("dropped_fields") or {}).items():
                console.print(f"[yellow]field loss:[/] {backend} {ns} cannot store {', '.join(fields)}")
        _collisions(console, report["collides_with"])

    return render


@workspace_app.command("copy")
def copy_cmd(ctx: typer.Context, source: str = typer.Argument(..., help="Workspace to copy."),
             target: str = typer.Argument(..., help="New workspace (must not exist)."),
             profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR,
             lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Copy a workspace inside each backend (server-side INSERT … SELECT for PostgreSQL, file copies for files).

    A copy that was interrupted (killed, server gone) is restarted by running the same command again.

    Example: ragstore workspace copy prod staging --profile postgres
    """
    cli, cfg = _prepare(ctx, working_dir)
    with progress_observer(cli) as observer:
        report = run(api.workspace_copy(source, target, profile=profile, lock_timeout=lock_timeout, settings=cfg,
                                           observer=observer))
    emit(cli, report, _transfer_render(report, "copied"))


@workspace_app.command("rename")
def rename_cmd(ctx: typer.Context, source: str = typer.Argument(..., help="Workspace to rename."),
               target: str = typer.Argument(..., help="New name (must not exist)."),
               profile: Optional[str] = PROFILE, working_dir: Optional[str] = WORKING_DIR,
               lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Rename a workspace in each backend (one transaction for PostgreSQL, file moves for files).

    A rename that was interrupted is finished by running the same command again.

    Example: ragstore workspace rename team-a team_a
    """
    cli, cfg = _prepare(ctx, working_dir)
    with progress_observer(cli) as observer:
        report = run(api.workspace_rename(source, target, profile=profile, lock_timeout=lock_timeout, settings=cfg,
                                           observer=observer))
    emit(cli, report, _transfer_render(report, "moved"))


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root application."""
    root.add_typer(workspace_app, name="workspace")
