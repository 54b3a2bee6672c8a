"""How every command parses and shows its options: the global options (--json, --debug, --env-file,
--quiet, --progress) before or after the command, flags without a `<bool>` placeholder in --help,
and a hint when a positional value that starts with '-' (a workspace, a lock key) is taken for an
option.

Typer builds a fresh command tree for each run; the root group (cli/app.py) hands it to
`spread_globals`, which gives each command these classes and a copy of the root's global options.
"""

from __future__ import annotations

import copy
import shlex
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import typer
from typer.core import TyperCommand, TyperGroup

from ragstore_cli.cli.common import state

#: Global options: accepted before the command (`ragstore --json migrate check`) and after it
#: (`ragstore migrate check --json`), on every command and group.
GLOBAL_OPTIONS = ("--json", "--debug", "--env-file", "--quiet", "--progress")
GLOBAL_PANEL = "Global options"


@contextmanager
def _dash_hint(command: Any, ctx: typer.Context, args: list[str]) -> Iterator[None]:
    """A positional value (a workspace, a lock key) that starts with '-' is taken for an option:
    say how to pass it, as the whole command line rewritten (options first, then `--`, then the names)."""
    try:
        yield
    except Exception as exc:  # Click's NoSuchOption (vendored by newer typer: matched by name)
        name = getattr(exc, "option_name", None)
        if type(exc).__name__ == "NoSuchOption" and name and not name.startswith("--") and _takes_arguments(command):
            fixed = shlex.join(_names_after_double_dash(command, args))
            exc.message = (f"{exc.message}. If {name} is a name, not an option, put -- before the names: "  # type: ignore[attr-defined]
                           f"{ctx.command_path} {fixed}")
        raise


def _names_after_double_dash(command: Any, args: list[str]) -> list[str]:
    """`args` with the command's options (and their values) first, then `--`, then every other value in
    its order: what parses when a name starts with '-'."""
    takes_value: dict[str, bool] = {}
    for param in command.params:
        if param.param_type_name == "option":
            for opt in (*param.opts, *param.secondary_opts):
                takes_value[opt] = not (param.is_flag or param.count)
    options: list[str] = []
    names: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            names.extend(tokens)
            break
        opt = token.split("=", 1)[0]
        if opt not in takes_value:
            names.append(token)
            continue
        options.append(token)
        if takes_value[opt] and "=" not in token:
            options.append(next(tokens, ""))
    return [*options, "--", *names]


def no_placeholder(option: Any) -> Any:
    """The help option, drawn without a type placeholder."""
    if option is not None:
        option.metavar = ""  # -h/--help takes no value: no `<bool>` after it
    return option


class RagstoreCommand(TyperCommand):
    """A leaf command (typer builds it; the root group gives it this class and the global options)."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        return no_placeholder(super().get_help_option(ctx))

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        with _dash_hint(self, ctx, list(args)):  # a copy: the parser consumes `args`
            return super().parse_args(ctx, args)


class RagstoreSubgroup(TyperGroup):
    """A command group such as `migrate` or `workspace`."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        return no_placeholder(super().get_help_option(ctx))


def _takes_arguments(command: Any) -> bool:
    return any(p.param_type_name == "argument" for p in command.params)


def _apply_global(ctx: typer.Context, param: Any, value: Any) -> Any:
    """Store a global option given after the command; it adds to (or, for --env-file, replaces) the
    value given before it."""
    cli_state = state(ctx)
    if param.name == "json_output" and value:
        cli_state.json = True
    elif param.name == "debug" and value:
        cli_state.debug = True
    elif param.name == "env_file" and value is not None:
        cli_state.env_file = value
    elif param.name == "quiet" and value:
        cli_state.quiet = True
    elif param.name == "progress" and value is not None:
        cli_state.progress = getattr(value, "value", value)
    return value


def hide_placeholders(params: Iterable[Any]) -> None:
    """Flags take no value: no `<bool>` after them in --help."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""


def spread_globals(root: TyperGroup) -> None:
    """Give every command and group below `root` the shared behaviour and root's global options."""
    _spread(root.commands.values(), [p for p in root.params if set(p.opts) & set(GLOBAL_OPTIONS)])


def _spread(commands: Iterable[Any], shared: list[Any]) -> None:
    for command in commands:
        # Typer makes TyperCommand/TyperGroup objects from the decorated functions; the subclasses add
        # behaviour only (no state), so one place gives it to all instead of a cls= on every decorator.
        if isinstance(command, TyperGroup):
            command.__class__ = RagstoreSubgroup
            _spread(command.commands.values(), shared)
        elif isinstance(command, TyperCommand):
            command.__class__ = RagstoreCommand
        declared = {opt for p in command.params for opt in p.opts}
        for option in shared:
            if not declared.intersection(option.opts):
                late = copy.copy(option)
                late.expose_value, late.callback = False, _apply_global
                late.rich_help_panel = GLOBAL_PANEL
                command.params.append(late)
        hide_placeholders(command.params)
