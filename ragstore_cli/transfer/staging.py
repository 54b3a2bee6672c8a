"""Files-only targets: import into a hidden staging folder, then move the files in.

The staging folder `<WORKING_DIR>/.ragstore-import.<workspace or _>/` is on the same filesystem as the
target, so each move is an atomic rename; LightRAG and ragstore ignore folders whose name starts
with a dot. The swap plan (files to move, files to delete) is written into the ledger before the
first rename, so a swap interrupted half-way finishes with `--resume` instead of losing files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Awaitable, Callable

from ragstore_cli.records import Role
from ragstore_cli.backends.registry import Profile
from ragstore_cli.config import Settings
from ragstore_cli.workspace import files_dir


def files_only(prof: Profile) -> bool:
    return all(prof[role] == "files" for role in Role)


def applies(prof: Profile, mode: str) -> bool:
    """Staging gives all-or-nothing visibility; `merge` must combine with what is there, so writes in place."""
    return files_only(prof) and mode != "merge"


def root(target: Settings, workspace: str) -> Path:
    return target.working_dir / f".ragstore-import.{workspace or '_'}"


def folder(target: Settings, workspace: str) -> Path:
    """Where the staged workspace (and, for files-only profiles, the ledger) lives."""
    return files_dir(root(target, workspace), workspace)


def settings(target: Settings, workspace: str) -> Settings:
    """Settings whose working dir is the staging root: the files backend writes there."""
    return target.with_overrides({"WORKING_DIR": str(root(target, workspace))})


async def swap_in(target: Settings, workspace: str, state: dict[str, Any],
                  save: Callable[[dict[str, Any]], Awaitable[None]], after_first: Callable[[], None]) -> None:
    """Move the staged LightRAG files over the target's; delete target files the archive replaced by nothing."""
    from ragstore_cli.backends.files import FILES
    from ragstore_cli.atomic import fsync_dir, keep_mode

    staged, dest = folder(target, workspace), files_dir(target.working_dir, workspace)
    plan = state.get("swap")
    if plan is None:
        move = [name for name in FILES.values() if (staged / name).is_file()]
        delete = [name for name in FILES.values() if name not in move and (dest / name).is_file()]
        plan = state["swap"] = {"move": move, "delete": delete}
        await save(state)
    dest.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(plan["move"]):
        if (staged / name).is_file():
            keep_mode(staged / name, dest / name)  # as LightRAG rewrites a file: its permission bits stay
            os.replace(staged / name, dest / name)
        if number == 0:
            after_first()
    for name in plan["delete"]:
        (dest / name).unlink(missing_ok=True)
    fsync_dir(dest)


def discard(target: Settings, workspace: str) -> None:
    shutil.rmtree(root(target, workspace), ignore_errors=True)
