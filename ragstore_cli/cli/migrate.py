"""`ragstore migrate`: run ragstore's Alembic revisions of LightRAG's PostgreSQL schema.

Parse options, call ragstore_cli.schema.api, render. No SQL here.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import run, settings, state
from ragstore_cli.cli.output import emit, table
from ragstore_cli.errors import EXIT_FAILED

app = typer.Typer(help="Own LightRAG's PostgreSQL schema as Alembic revisions: upgrade, check, adopt...",
                  no_args_is_help=True)

LOCK_TIMEOUT = typer.Option(None, "--lock-timeout", min=0.0,
                            help="Seconds to wait for another migrator (default RAGSTORE_LOCK_TIMEOUT).")
MODEL = typer.Option(None, "--embedding-model", help="Embedding model name (default EMBEDDING_MODEL).")
DIM = typer.Option(None, "--embedding-dim", min=1, max=65535, help="Embedding dimension (default EMBEDDING_DIM).")


def _lines(console, title: str, pairs: list[tuple[str, Any]], notes: list[str] | None = None) -> None:
    console.print(f"[bold]{title}[/]")
    for key, value in pairs:
        console.print(f"  {key}: {value if value not in (None, '', []) else '-'}")
    for note in notes or []:
        console.print(f"  [yellow]note:[/] {note}")


@app.command("upgrade")
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision (default head)."),
            embedding_model: Optional[str] = MODEL, embedding_dim: Optional[int] = DIM,
            dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
            offline_sql: bool = typer.Option(False, "--sql", help="Print the SQL from base to REV without connecting "
                                             "(Alembic's offline mode; same as `migrate sql REV`)."),
            lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Upgrade to REV (default head) and create/upgrade the model's vector tables.

    Example: ragstore migrate upgrade --embedding-model BAAI/bge-m3 --embedding-dim 1024
    """
    if offline_sql:
        sql(ctx, revision, start=None)
        return
    result = run(api.migrate_upgrade(revision, embedding_model=embedding_model, embedding_dim=embedding_dim,
                                     dry_run=dry_run, lock_timeout=lock_timeout, settings=settings(ctx)))

    def render(console) -> None:
        title = "Plan (dry run, nothing changed)" if dry_run else "Upgraded"
        tables = [pair for v in result["vector_tables"]  # one item per line: readable at 80 columns
                  for pair in (("vector table", f"{v['table']} {v.get('column_type')}"), ("  index", v.get("index")))]
        _lines(console, title, [("database", result["target"]), ("from", result["from"] or "none (unmanaged)"),
                                ("to", result["to"]), ("revisions", ", ".join(result["applied"]) or "none"),
                                *(tables or [("vector tables", None)])], result["notes"])

    emit(state(ctx), result, render)


@app.command("downgrade")
def downgrade(ctx: typer.Context, revision: str = typer.Argument(..., help="Target revision, or base."),
              force: bool = typer.Option(False, "--force", help="Allow steps that drop data."),
              embedding_model: Optional[str] = MODEL, embedding_dim: Optional[int] = DIM,
              lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Downgrade to REV; steps that would drop data refuse unless --force.

    Example: ragstore migrate downgrade 0006
    """
    result = run(api.migrate_downgrade(revision, force=force, embedding_model=embedding_model,
                                       embedding_dim=embedding_dim, lock_timeout=lock_timeout, settings=settings(ctx)))
    emit(state(ctx), result, lambda c: _lines(c, "Downgraded", [
        ("database", result["target"]), ("from", result["from"]), ("to", result["to"] or "base"),
        ("reverted", ", ".join(result["reverted"])), ("vector tables dropped", ", ".join(result["vector_tables_dropped"]))]))


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's revision and head.

    Example: ragstore migrate current --json
    """
    result = run(api.migrate_current(settings=settings(ctx)))
    emit(state(ctx), result, lambda c: _lines(c, "Schema", [
        ("database", result["target"]), ("revision", result["revision"] or "none (unmanaged)"),
        ("head", result["head"]), ("behind", result["behind"])]))


@app.command("history")
def history(ctx: typer.Context) -> None:
    """List the revisions, oldest first (no connection).

    Example: ragstore migrate history
    """
    result = api.sync.migrate_history()
    emit(state(ctx), result, lambda c: c.print(table("Revisions", ["revision", "description"], [
        [r["revision"] + (" (head)" if r["is_head"] else ""), r["message"]] for r in result])))


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Exit 0 when the database is at head, 1 when it is behind (for CI / before servers start).

    Example: ragstore migrate check || ragstore migrate upgrade
    """
    result = run(api.migrate_check(settings=settings(ctx)))
    emit(state(ctx), result, lambda c: _lines(c, "Up to date" if not result["behind"] else "Behind head", [
        ("database", result["target"]), ("revision", result["revision"] or "none (unmanaged)"),
        ("head", result["head"]), ("pending", ", ".join(result["pending"]))]))
    if result["behind"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("stamp")
def stamp(ctx: typer.Context, revision: str = typer.Argument(..., help="Revision to record."),
          lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Record REV as the current revision without running anything.

    Example: ragstore migrate stamp head
    """
    result = run(api.migrate_stamp(revision, lock_timeout=lock_timeout, settings=settings(ctx)))
    emit(state(ctx), result, lambda c: _lines(c, "Stamped", [
        ("database", result["target"]), ("from", result["from"]), ("to", result["to"])]))


@app.command("sql")
def sql(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision (default head)."),
        start: Optional[str] = typer.Option(None, "--from", help="Starting revision (default base).")) -> None:
    """Print the SQL of an upgrade (or downgrade) without connecting.

    Example: ragstore migrate sql head > upgrade.sql
    """
    text = api.sync.migrate_sql(revision, start=start)
    if state(ctx).json:
        emit(state(ctx), {"from": start or "base", "to": revision, "sql": text})
    else:
        typer.echo(text, nl=False)


@app.command("adopt")
def adopt(ctx: typer.Context, dry_run: bool = typer.Option(False, "--dry-run", help="Report only; do not stamp."),
          lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Match a LightRAG-created database to a revision, print the evidence, and stamp it.

    Exit 1 (and no stamp) when it matches no revision.

    Example: ragstore migrate adopt --dry-run && ragstore migrate adopt
    """
    result = run(api.migrate_adopt(dry_run=dry_run, lock_timeout=lock_timeout, settings=settings(ctx)))

    def render(console) -> None:
        verdict = (f"matches revision {result['revision']}" if result["matched"]
                   else f"matches no revision (closest: {result.get('closest') or '-'})")
        _lines(console, f"Database {verdict}", [("database", result["target"]),
               ("stamped", result["stamped"] or ("no (dry run)" if dry_run and result["matched"] else "no")),
               ("legacy cache rows", result["legacy_cache_rows"])], result["notes"])
        for line in result["evidence"]:
            console.print(f"  evidence: {line}")
        for line in result["differences"]:
            console.print(f"  [red]difference:[/] {line}")

    emit(state(ctx), result, render)
    if not result["matched"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("vectors-move")
def vectors_move(ctx: typer.Context, embedding_model: Optional[str] = MODEL, embedding_dim: Optional[int] = DIM,
                 lock_timeout: Optional[float] = LOCK_TIMEOUT) -> None:
    """Copy rows of legacy unsuffixed vector tables into the model's tables, verified by counts.

    Example: ragstore migrate vectors-move --embedding-model bge-m3 --embedding-dim 1024
    """
    result = run(api.migrate_vectors_move(embedding_model=embedding_model, embedding_dim=embedding_dim,
                                          lock_timeout=lock_timeout, settings=settings(ctx)))
    emit(state(ctx), result, lambda c: c.print(table("Moved", ["legacy", "target", "legacy rows", "copied", "verified"], [
        [m["legacy"], m["target"], m.get("legacy_rows", m.get("skipped")), m.get("copied"), m.get("verified")]
        for m in result["moved"]])))


def register(root: typer.Typer) -> None:
    """Add `ragstore migrate …` to the root application."""
    root.add_typer(app, name="migrate")
