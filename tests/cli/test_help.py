"""Help that operators can trust, checked on the real command tree (walked, never listed by hand):
every command has an example that parses as written, takes the global options after its name,
and shows no `<bool>` placeholder."""

from __future__ import annotations

import re
import shlex
from typing import Any, Iterator

import pytest
from typer.main import get_command

from ragstore_cli.cli.app import app
from ragstore_cli.cli.global_options import GLOBAL_OPTIONS
from ragstore_cli.cli.common import state


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        if not sub.hidden:
            yield from _walk(sub, (*path, name))


TREE = list(_walk(get_command(app)))
LEAVES = [" ".join(path) for path, command in TREE if not hasattr(command, "commands")]
GROUPS = [" ".join(path) for path, command in TREE if hasattr(command, "commands") and path]


def test_the_walk_finds_every_group_and_command():
    assert {"check-connections", "export", "import", "demo", "workspace grant", "workspace grants", "locks wait",
            "migrate check", "config show", "dev status", "vectors stats", "archive verify"} <= set(LEAVES)
    assert set(GROUPS) == {"archive", "config", "dev", "locks", "migrate", "vectors", "workspace"}


def parse(args: list[str]) -> Any:
    """Parse a command line against the real tree without running the command: its context."""
    command = get_command(app)
    ctx = command.make_context("ragstore", list(args))
    while hasattr(command, "commands"):
        rest = [*(getattr(ctx, "_protected_args", None) or ctx.protected_args), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def _examples(command: Any) -> list[list[str]]:
    """The `ragstore …` invocations in a command's `Example:` text, split as a shell would."""
    text = (command.help or "").split("Example:", 1)[1]
    invocations = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "|", ">", ">>"):
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
                    words.pop(0)
                if words and words[0] == "ragstore":
                    invocations.append(words[1:])
                words = [] if token != ">" else ["(redirect target)"]
            else:
                words.append(token)
    return invocations


@pytest.mark.parametrize("command", LEAVES)
def test_help_has_an_example_that_parses_as_written(cli, command):
    result = cli(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    assert "<bool>" not in result.stdout
    click_command = dict(TREE)[tuple(command.split())]
    examples = _examples(click_command)
    assert examples and any(e[:len(command.split())] == command.split() or command in " ".join(e) for e in examples)
    for words in examples:
        parse(words)  # raises a usage error (unknown option, missing argument, bad value) if it cannot run


def _required(command: Any) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if param.required:
            args += ["x"] if param.param_type_name == "argument" else [param.opts[0], "x"]
    return args


@pytest.mark.parametrize("command", LEAVES)
def test_global_options_after_the_command(command):
    click_command = dict(TREE)[tuple(command.split())]
    ctx = parse([*command.split(), *_required(click_command), "--json", "--debug", "--env-file", "other.env"])
    cli_state = state(ctx)
    assert (cli_state.json, cli_state.debug, str(cli_state.env_file)) == (True, True, "other.env")


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_has_no_placeholders_and_takes_global_options(cli, group):
    result = cli(*group.split(), "--help")
    assert result.exit_code == 0 and "<bool>" not in result.stdout
    assert all(option in result.stdout for option in GLOBAL_OPTIONS)


def test_root_help_has_no_placeholders(cli):
    result = cli("--help")
    assert result.exit_code == 0 and "<bool>" not in result.stdout and "--install-completion" in result.stdout


def test_a_name_that_looks_like_an_option_says_to_use_double_dash(cli):
    result = cli("workspace", "show", "-x")
    assert result.exit_code == 2
    assert "No such option: -x" in result.output and "ragstore workspace show -- -x" in result.output
    assert "Traceback" not in result.output
    typo = cli("workspace", "show", "--profle", "files", "ws")  # a misspelt long option is just that
    assert typo.exit_code == 2 and "-- --profle" not in typo.output
