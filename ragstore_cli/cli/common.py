"""Small helpers every command module uses: the CLI state, settings loading, running coroutines."""

from __future__ import annotations

from typing import Any, Coroutine, Mapping, TypeVar

import typer

from ragstore_cli import api
from ragstore_cli.cli.output import CliState
from ragstore_cli.config import Settings, load_settings
from ragstore_cli.errors import UsageError

T = TypeVar("T")

#: Where a command's data lives: the same option in every command that works in one place. (`--from` /
#: `--to` are for commands that move data between two places; export and import keep them as hidden
#: aliases of --profile.)
PROFILE = typer.Option(None, "--profile", "-p", metavar="PROFILE",
                       help="Backends per role: files, postgres, neo4j,postgres or kv=redis,graph=neo4j,... "
                            "(default: LIGHTRAG_*_STORAGE).")


def one_profile(profile: str | None, alias: str | None, alias_name: str) -> str | None:
    """--profile, or the old spelling it replaced (hidden); both at once only when they agree."""
    if profile is not None and alias is not None and profile != alias:
        raise UsageError(f"give --profile or {alias_name}, not both")
    return profile if profile is not None else alias


def state(ctx: typer.Context) -> CliState:
    """The global options (--json, --debug, --env-file) of this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def settings(ctx: typer.Context, flags: Mapping[str, Any] | None = None) -> Settings:
    """Settings resolved with this command's flags on top (flag > env > .env > config.ini > default)."""
    clean = {k: str(v) for k, v in (flags or {}).items() if v is not None}
    return load_settings(env_file=state(ctx).env_file, flags=clean)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a synchronous command, under the command guard: it ends
    soon after a server goes silent and within 5 s of Ctrl-C (connect/liveness.py)."""
    return api.run_command(coro)

