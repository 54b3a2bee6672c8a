"""Every command's --help shows an example (operators copy from it)."""

from __future__ import annotations

import pytest

COMMANDS = [
    "check-connections", "config show", "dev up", "dev down", "dev status", "demo",
    "migrate upgrade", "migrate downgrade", "migrate current", "migrate history", "migrate check",
    "migrate stamp", "migrate sql", "migrate adopt", "migrate vectors-move",
    "workspace list", "workspace show", "workspace create", "workspace drop", "workspace copy", "workspace rename",
    "export", "import", "archive verify", "archive inspect",
    "vectors stats", "vectors compress", "vectors decompress", "vectors verify", "vectors export",
    "locks list", "locks show", "locks break", "locks wait",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(cli, command):
    result = cli(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "Example: ragstore" in result.stdout
