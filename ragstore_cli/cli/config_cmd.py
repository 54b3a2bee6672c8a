"""`ragstore config show`: the resolved settings and where each came from, secrets masked."""

from __future__ import annotations

import typer

from ragstore_cli.cli.common import settings, state
from ragstore_cli.cli.output import emit, table

config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@config_app.command("show")
def show(
    ctx: typer.Context,
    all_values: bool = typer.Option(False, "--all", help="Also list settings left at their defaults."),
) -> None:
    """Print every setting, its value (secrets masked) and its source.

    Example: ragstore --env-file prod.env config show --all
    """
    resolved = settings(ctx)
    rows = [r for r in resolved.rows() if all_values or r.source != "default" or r.value is not None]
    document = {
        "settings": [{"name": r.name, "value": r.display if r.secret else r.value, "source": r.source,
                      "secret": r.secret} for r in rows],
        "working_dir": str(resolved.working_dir),
        "storage": resolved.storage_classes,
    }
    emit(state(ctx), document, lambda console: console.print(
        table("Resolved settings", ["name", "value", "source"], [[r.name, r.display, r.source] for r in rows])))


def register(root: typer.Typer) -> None:
    root.add_typer(config_app, name="config")
