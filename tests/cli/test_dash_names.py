"""A name that starts with '-' (a workspace `-x`, a lock key, a file) is taken for an option: every
command that takes names says to put `--` before them, as the whole command line to run -- and that
line parses. The commands are walked on the real tree, never listed by hand."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from tests.cli.test_help import TREE, parse

WITH_NAMES = [(path, command) for path, command in TREE
              if not hasattr(command, "commands") and any(p.param_type_name == "argument" for p in command.params)]


def _names(command: Any) -> list[str]:
    """A value for each argument the command takes, the first one starting with '-'."""
    count = sum(max(p.nargs, 1) for p in command.params if p.param_type_name == "argument")
    return ["-x", *(f"name{i}" for i in range(1, count))]


def _suggestion(output: str) -> list[str]:
    flat = re.sub(r"\s+", " ", output.replace("│", " "))
    found = re.search(r"put -- before the names: (ragstore .*?) ?(?:╰|$)", flat)
    assert found, output
    return shlex.split(found.group(1))


def test_the_walk_finds_the_commands_that_take_names():
    found = {" ".join(path) for path, _ in WITH_NAMES}
    assert {"workspace show", "workspace drop", "workspace copy", "workspace rename", "workspace create",
            "workspace grant", "locks break", "archive verify", "vectors stats"} <= found


@pytest.mark.parametrize("path, command", WITH_NAMES, ids=[" ".join(p) for p, _ in WITH_NAMES])
def test_a_name_like_an_option_gets_a_command_line_that_parses(cli, path, command):
    names = _names(command)
    result = cli(*path, *names, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "No such option: -x" in result.output and "Traceback" not in result.output
    suggested = _suggestion(result.output)
    assert suggested == ["ragstore", *path, "--", *names]
    try:
        ctx = parse(suggested[1:])  # what the user is told to run parses: -x is now a name
    except Exception as exc:  # noqa: BLE001 - only a required option of the command may still be missing
        assert type(exc).__name__ == "MissingParameter" and exc.param.param_type_name == "option", exc
        return
    values = [v for value in ctx.params.values() for v in (value if isinstance(value, (list, tuple)) else [value])]
    assert "-x" in [str(v) for v in values]


def test_options_go_before_the_double_dash_with_their_values(cli):
    result = cli("workspace", "copy", "src", "-x", "--profile", "files", "--json", env={"COLUMNS": "300"})
    assert _suggestion(result.output) == ["ragstore", "workspace", "copy", "--profile", "files", "--json", "--",
                                          "src", "-x"]
    ctx = parse(_suggestion(result.output)[1:])
    assert (ctx.params["source"], ctx.params["target"]) == ("src", "-x")
