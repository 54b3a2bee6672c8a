"""`ragstore workspace grant | revoke | grants`: parse, call ragstore_cli.access, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from ragstore_cli import api
from ragstore_cli.cli.common import run
from ragstore_cli.cli.output import emit, table
from ragstore_cli.cli.workspace import WORKING_DIR, _prepare, workspace_app

BACKEND = typer.Option(None, "--backend", "-b", help="postgres, redis or files; repeatable (default: every configured one).")
ROLE = typer.Option(..., "--role", help="Login name: PostgreSQL role, Redis ACL user, OS user for files.")
DRY_RUN = typer.Option(False, "--dry-run", help="Run the preflight and print the plan; change nothing.")


def _shown(workspace: str | None) -> str:
    return "(default)" if workspace == "" else str(workspace)


def _notes(console: Any, report: dict[str, Any]) -> None:
    for item in report.get("not_enforced", []):
        console.print(f"[yellow]not enforced:[/] {item['backend']}: {item['reason']}")
    for line in report.get("cypher", []):
        console.print(line, markup=False)


@workspace_app.command("grant")
def grant_cmd(ctx: typer.Context, name: str = typer.Argument(..., help='Workspace ("" for the default).'),
              role: str = ROLE, backend: Optional[List[str]] = BACKEND,
              write_env: Optional[Path] = typer.Option(None, "--write-env", help="Env file (0600) that receives the generated credentials."),
              adopt: bool = typer.Option(False, "--adopt", help="Use a login that exists already (its password is replaced)."),
              force: bool = typer.Option(False, "--force", help="Grant although other roles lose access or other users could read files."),
              new: bool = typer.Option(False, "--new", help="Grant a workspace that holds no data yet."),
              shared_db: bool = typer.Option(False, "--shared-db", help="Redis: grant although the user could list other keys' names."),
              rotate: bool = typer.Option(False, "--rotate-password", help="Issue a new password for an existing login."),
              group: Optional[str] = typer.Option(None, "--group", help="Files: OS group that shares the folder."),
              print_cypher: bool = typer.Option(False, "--print-cypher", help="Print Neo4j Enterprise statements (not tested here)."),
              dry_run: bool = DRY_RUN, working_dir: Optional[str] = WORKING_DIR) -> None:
    """Let one login use one workspace, enforced by PostgreSQL row-level security, Redis ACLs and folder modes.

    The password is generated, written to --write-env (mode 0600) and never printed.

    Example: ragstore workspace grant team_a --role team_a_app --write-env team_a.env
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_grant(name, role=role, backends=backend, adopt=adopt, force=force, new=new,
                                     shared_db=shared_db, rotate_password=rotate, group=group, write_env=write_env,
                                     dry_run=dry_run, print_cypher=print_cypher, settings=cfg))

    def render(console: Any) -> None:
        for plan in report.get("plans", []):
            console.print(f"{plan['backend']}: would grant {_shown(plan['workspace'])} to {plan['role']}"
                          + (" (creates the login)" if plan.get("creates_login") else ""))
        for done in report.get("backends", []):
            what = "already had" if done.get("already_granted") else "granted"
            extra = []
            if done.get("login_created"):
                extra.append("login created")
            if done.get("password_set"):
                extra.append(f"password written to {report.get('env_file')}")
            if done.get("rls_enabled_on"):
                extra.append(f"row-level security enabled on {len(done['rls_enabled_on'])} tables")
            if done.get("acl_persisted") is False:
                extra.append("ACL kept in memory only (no aclfile): persist it")
            if done.get("mode"):
                extra.append(f"folder {done['folder']} mode {done['mode']}")
            console.print(f"{done['backend']}: {done['role']} {what} workspace {_shown(done['workspace'])}"
                          + (f" ({'; '.join(extra)})" if extra else ""))
            for note in done.get("notes", []):
                console.print(f"[yellow]note:[/] {note}")
        _notes(console, report)

    emit(cli, report, render)


@workspace_app.command("revoke")
def revoke_cmd(ctx: typer.Context, name: str = typer.Argument(..., help='Workspace ("" for the default).'),
               role: str = ROLE, backend: Optional[List[str]] = BACKEND, dry_run: bool = DRY_RUN,
               working_dir: Optional[str] = WORKING_DIR) -> None:
    """Take a workspace back from a login; a login left with no grant is removed.

    Example: ragstore workspace revoke team_a --role team_a_app
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_revoke(name, role=role, backends=backend, dry_run=dry_run, settings=cfg))

    def render(console: Any) -> None:
        for plan in report.get("plans", []):
            console.print(f"{plan['backend']}: would revoke {_shown(plan['workspace'])} from {plan['role']}"
                          + (" and remove the login" if plan.get("removes_login") else ""))
        for done in report.get("backends", []):
            console.print(f"{done['backend']}: {done['role']} lost workspace {_shown(done['workspace'])}; "
                          f"login {done.get('login', 'kept')}")
        for backend_name, why in report.get("skipped", {}).items():
            console.print(f"{backend_name}: nothing to revoke ({why})")

    emit(cli, report, render)


@workspace_app.command("grants")
def grants_cmd(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="Only this workspace."),
               backend: Optional[List[str]] = BACKEND, working_dir: Optional[str] = WORKING_DIR) -> None:
    """Who may use which workspace, per backend, and what is not enforced.

    Example: ragstore workspace grants --json
    """
    cli, cfg = _prepare(ctx, working_dir)
    report = run(api.workspace_grants(name, backends=backend, settings=cfg))

    def render(console: Any) -> None:
        rows = [[g["backend"], _shown(g["workspace"]), g["role"],
                 "yes" if g.get("login", True) else "no", g.get("db", g.get("mode", ""))] for g in report["grants"]]
        console.print(table("Workspace grants", ["backend", "workspace", "role", "login", "db / mode"], rows))
        redis_state = report["backends"].get("redis") or {}
        if redis_state.get("error"):
            console.print(f"[yellow]warning:[/] {redis_state['error']}")
        if redis_state.get("default_user_open"):
            console.print("[yellow]warning:[/] redis: the default user accepts connections without a password, so "
                          "no ACL user is held to anything")
        pg_state = report["backends"].get("postgres")
        if pg_state and pg_state.get("uncovered_tables"):
            console.print(f"[yellow]uncovered:[/] {', '.join(pg_state['uncovered_tables'])} (no tenant can use them "
                          "until the next grant or `migrate upgrade`)")
        _notes(console, report)

    emit(cli, report, render)


def register(root: typer.Typer) -> None:
    """The commands hang off the `workspace` group (cli/workspace.py registers the group itself)."""
