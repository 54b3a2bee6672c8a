"""`ragstore locks`: see, wait for and break the locks ragstore commands hold, on any backend."""

from __future__ import annotations

import time
from typing import Any, Optional

import typer
from rich.markup import escape

from ragstore_cli import api
from ragstore_cli.cli.common import run, settings, state
from ragstore_cli.cli.output import emit, info, table
from ragstore_cli.errors import UsageError

locks_app = typer.Typer(help="Inspect, wait for and break ragstore's locks (file, postgres, redis).", no_args_is_help=True)

BACKEND = typer.Option(None, "--backend", "-b", help="auto, file, postgres, redis or memory (default: RAGSTORE_LOCK_BACKEND).")
WORKING_DIR = typer.Option(None, "--working-dir", help="LightRAG working dir (file backend); default WORKING_DIR.")


def _setup(ctx: typer.Context, backend: str | None, working_dir: str | None):
    resolved = settings(ctx, {"WORKING_DIR": working_dir})
    return resolved, api.locks_backend(backend, settings=resolved)


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _row(record: api.HolderRecord) -> list[Any]:
    now = time.time()
    status = f"[red]STALE[/] {escape(record.stale_reason or '')}" if record.stale else "[green]held[/]"
    extra = []
    if record.lease_expires:
        extra.append(f"lease {record.lease_expires - now:.1f} s left")
    if record.token:
        extra.append(f"token {record.token}")
    if record.session_pid:
        extra.append(f"pg session {record.session_pid}")
    return [escape(record.key), status, escape(record.command), escape(f"{record.pid}@{record.host}"),
            _age(now - record.acquired_at), record.owner, ", ".join(extra)]


COLUMNS = ["key", "state", "command", "pid@host", "age", "owner", "details"]


def list_locks(
    ctx: typer.Context, backend: Optional[str] = BACKEND, working_dir: Optional[str] = WORKING_DIR,
) -> None:
    """Every held lock with its holder and age; stale ones marked (dead pid, expired lease, session gone).

    Example: ragstore locks list --backend postgres --json
    """
    resolved, name = _setup(ctx, backend, working_dir)
    document = run(api.locks_list(backend=name, settings=resolved)).to_dict()

    def render(console) -> None:
        rows = [_row(_record(item)) for item in document["locks"]]
        console.print(table(f"ragstore locks ({name})", COLUMNS, rows, whole=1) if rows
                      else f"no ragstore locks held ({name})")
        foreign = document.get("other_advisory_locks") or []
        if foreign:
            console.print(table("PostgreSQL advisory locks held by other tools", ["lock id", "pid", "application", "user",
                                "granted", "state", "query"],
                                [[escape(str(f[c])) for c in ("lock_id", "pid", "application_name", "usename", "granted",
                                                              "state", "query")] for f in foreign]))
        if "lightrag" in document:
            console.print(escape(f"LightRAG: {document['lightrag']['message']}"))

    emit(state(ctx), document, render)


def _record(item: dict[str, Any]) -> api.HolderRecord:
    record = api.HolderRecord.from_stored(item)
    record.stale, record.stale_reason = item.get("stale", False), item.get("stale_reason")
    return record


def show(
    ctx: typer.Context, key: str = typer.Argument(..., help="The lock key, e.g. workspace:books"),
    backend: Optional[str] = BACKEND, working_dir: Optional[str] = WORKING_DIR,
) -> None:
    """Who holds KEY (exit 0 either way; `held` says whether it is held).

    Example: ragstore locks show workspace:prod --backend postgres
    """
    resolved, name = _setup(ctx, backend, working_dir)
    found = run(api.locks_show(key, backend=name, settings=resolved))
    record, document = found.holder, found.to_dict()

    def render(console) -> None:
        if record is None:
            console.print(escape(f"{key}: not held ({name})"))
        else:
            console.print(table(None, COLUMNS, [_row(record)]))

    emit(state(ctx), document, render)


def break_lock(
    ctx: typer.Context, key: str = typer.Argument(..., help="The lock key to break."),
    force: bool = typer.Option(False, "--force", help="Also break a live holder (postgres: ends its session)."),
    backend: Optional[str] = BACKEND, working_dir: Optional[str] = WORKING_DIR,
) -> None:
    """Remove a stale lock; a live holder is refused (exit 3) unless --force. The break is recorded.

    Example: ragstore locks break workspace:prod --backend postgres
    """
    resolved, name = _setup(ctx, backend, working_dir)
    result = run(api.locks_break(key, force=force, backend=name, settings=resolved))
    document = result.to_dict()

    def render(console) -> None:
        who = result.broken.describe() if result.broken else "no holder record"
        console.print(escape(f"broke {key} ({name}): it was {who}"))

    emit(state(ctx), document, render)


def wait(
    ctx: typer.Context, key: str = typer.Argument(..., help="The lock key to wait for."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.0, help="Seconds to wait (default RAGSTORE_LOCK_TIMEOUT)."),
    backend: Optional[str] = BACKEND, working_dir: Optional[str] = WORKING_DIR,
) -> None:
    """Wait until KEY is free (taken and released at once); exit 3 naming the holder on timeout.

    Example: ragstore locks wait workspace:prod --timeout 120
    """
    resolved, name = _setup(ctx, backend, working_dir)
    limit = resolved.ragstore.lock_timeout if timeout is None else timeout
    if limit < 0:
        raise UsageError("--timeout must not be negative")
    info(state(ctx), escape(f"waiting up to {limit:g} s for {key} ({name})"))

    waited = run(api.locks_wait(key, timeout=limit, backend=name, settings=resolved))
    emit(state(ctx), waited.to_dict(), lambda console: console.print(escape(f"{key} is free (waited {waited.waited_s:.2f} s)")))


def register(root: typer.Typer) -> None:
    """Add the `locks` group to the root application."""
    locks_app.command("list")(list_locks)
    locks_app.command("show")(show)
    locks_app.command("break")(break_lock)
    locks_app.command("wait")(wait)
    root.add_typer(locks_app, name="locks")
