"""`ragstore check-connections`: SSL-aware checks of every configured backend, fit for CI."""

from __future__ import annotations

from typing import List, Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import run, settings, state
from ragstore_cli.cli.output import emit, table
from ragstore_cli.errors import EXIT_FAILED


def check_connections(
    ctx: typer.Context,
    backend: Optional[List[str]] = typer.Option(None, "--backend", "-b", help="postgres, neo4j, redis or files; repeatable."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds each check may take."),
) -> None:
    """Check every configured backend concurrently; exit 0 when all pass, 1 otherwise.

    Example: ragstore --json check-connections --backend postgres --timeout 5
    """
    results = run(api.check_connections(backends=backend or None, timeout=timeout, settings=settings(ctx)))
    document = [r.to_dict() for r in results]

    def render(console) -> None:
        rows = []
        for r in results:
            summary = r.error or _summary(r.details)
            rows.append(["[green]ok[/]" if r.ok else "[red]FAIL[/]", r.backend,
                         f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "", summary])
        console.print(table("Connection checks", ["", "backend", "latency", "details"], rows))

    emit(state(ctx), document, render)
    if not results or not all(r.ok for r in results):
        raise typer.Exit(EXIT_FAILED)


def _summary(details: dict) -> str:
    keys = ("target", "server_version", "server_agent", "tls_version", "pgvector_version", "database_used",
            "schema_revision", "workspace_dir")
    parts = [f"{k}={details[k]}" for k in keys if details.get(k) not in (None, "")]
    access = details.get("access") or {}
    if access.get("restricted"):
        workspaces = access.get("workspaces")
        parts.append("restricted to " + (", ".join(w or "(default)" for w in workspaces) if workspaces is not None
                                         else "unknown workspaces"))
    return ", ".join(parts)


def register(root: typer.Typer) -> None:
    root.command("check-connections")(check_connections)
