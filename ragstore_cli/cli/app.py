"""The `ragstore` Typer application: global options, command groups, and the one error boundary."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from ragstore_cli import __version__
from ragstore_cli.cli import access, check, config_cmd, demo, dev, locks, migrate, pipe, transfer, vectors, workspace
from ragstore_cli.cli.common import state
from ragstore_cli.cli.global_options import hide_placeholders, no_placeholder, spread_globals
from ragstore_cli.cli.output import ProgressMode, to_json
from ragstore_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, RagstoreError
from ragstore_cli.redact import redact


class RagstoreGroup(TyperGroup):
    """Maps every exception to a one-line message and an exit code (errors.py), in one place."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        spread_globals(self)

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)
        hide_placeholders(params)  # typer adds --install-completion / --show-completion after __init__
        return params

    def get_help_option(self, ctx: typer.Context) -> Any:
        return no_placeholder(super().get_help_option(ctx))

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - the boundary
            if type(exc).__module__.startswith("typer"):
                raise  # Exit, Abort and usage errors: typer reports them itself
            if isinstance(exc, BrokenPipeError) and pipe.stdout_closed():
                pipe.leave_quietly()  # `ragstore … | head`: the reader has all it wanted
            cli_state = state(ctx)
            if cli_state.debug:
                traceback.print_exc()
            code, message, hint = _describe(exc)
            if cli_state.json:
                document = {"ok": False, "error": message, "exit_code": code}
                if hint:
                    document["hint"] = redact(hint)
                (sys.stderr if cli_state.stdout_taken else sys.stdout).write(to_json(document) + "\n")
            if not (cli_state.json and cli_state.stdout_taken):  # stderr holds just the JSON document then
                sys.stderr.write(f"error: {message}\n")
            if hint and not cli_state.json:
                sys.stderr.write(f"hint: {redact(hint)}\n")
            raise typer.Exit(code) from None


def _describe(exc: BaseException) -> tuple[int, str, str | None]:
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted", None
    if isinstance(exc, RagstoreError):
        return exc.exit_code, redact(str(exc)), exc.hint
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, OSError) and exc.strerror:  # a full disk, a vanished folder: say it plainly
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_FAILED, redact(f"{exc.strerror}{where}"), None
    if type(exc).__module__.startswith("asyncpg") and "connection" in type(exc).__name__.lower() + text.lower():
        return (EXIT_FAILED, redact(f"postgres: the connection was lost ({text or type(exc).__name__})"),
                "run the command again")
    if isinstance(exc, TimeoutError):  # asyncpg's command_timeout, a driver's socket timeout
        return (EXIT_FAILED, "timed out: a server did not answer within the command timeout (RAGSTORE_COMMAND_TIMEOUT); "
                "is the network or the server stalled?", "run the command again")
    return EXIT_FAILED, redact(f"unexpected {type(exc).__name__}: {text}"), "run again with --debug for the traceback"


app = typer.Typer(
    cls=RagstoreGroup,
    name="ragstore",
    help="The operator's tool for LightRAG / RAG-Anything storage: checks, migrations, workspaces, archives, vectors, locks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragstore {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    env_file: Optional[Path] = typer.Option(None, "--env-file", metavar="PATH",
                                            help="Read settings from this .env file instead of ./.env."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout and nothing else there."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Draw no progress (the result is still printed)."),
    progress: Optional[ProgressMode] = typer.Option(
        None, "--progress", help="Progress on stderr: auto (drawn on a terminal, the default), json (one event per "
                                 "line, docs/progress.md) or none."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Settings come from flags > environment > .env > config.ini > defaults, with LightRAG's names.

    The global options may also follow the command: ragstore migrate check --json
    """
    cli_state = state(ctx)
    cli_state.env_file, cli_state.json, cli_state.debug = env_file, json_output, debug
    cli_state.quiet, cli_state.progress = quiet, progress.value if progress else "auto"
    _driver_logs(debug)


def _driver_logs(debug: bool) -> None:
    """Drivers log their own retries and lost connections (asyncpg's pool with a traceback each);
    the error line says what matters, so their logs show only with --debug."""
    for name in ("asyncio", "asyncpg", "neo4j", "redis"):
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.CRITICAL + 1)


for module in (check, config_cmd, dev, migrate, workspace, access, transfer, vectors, locks, demo):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    stdout = pipe.stdout_identity()
    try:
        app(prog_name="ragstore")
    except SystemExit as done:
        if done.code == 1 and pipe.handled_elsewhere(stdout):  # Rich's or click's own exit 1 on a closed pipe
            pipe.leave_quietly()
        raise
    finally:
        pipe.flush_stdout()  # what is still buffered, now: a closed pipe ends quietly (exit 141)
