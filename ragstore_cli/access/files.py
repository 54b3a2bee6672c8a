"""File-backend workspace grants: the workspace folder's owner, group and mode.

A grant makes the folder and everything in it belong to the tenant's OS user (the role name),
owner-only (0700 folders, 0600 files) or shared with `--group` (2770/0660, set-group-id so new files
keep the group). The folder's owner is the grant: `grants` reads it back, `revoke` gives the folder
to the working directory's owner again, owner-only. The default workspace lives in the working
directory itself, above every other workspace's folder, so it cannot be granted.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Any, Iterator

from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.workspace import files_dir, validate_workspace

OWNER_ONLY = (0o700, 0o600)
WITH_GROUP = (0o2770, 0o660)
MAX_ENTRIES = 100_000  # a LightRAG workspace folder holds a handful of files; refuse anything stranger


def _walk(folder: Path) -> Iterator[Path]:
    count = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            count += 1
            if count > MAX_ENTRIES:
                raise UsageError(f"files: {folder} holds more than {MAX_ENTRIES} entries; not a LightRAG workspace folder")
            yield Path(root) / name


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"files: there is no OS user named {name}") from None


def _group(name: str | None) -> grp.struct_group | None:
    if name is None:
        return None
    try:
        return grp.getgrnam(name)
    except KeyError:
        raise UsageError(f"files: there is no OS group named {name}") from None


def _folder(settings: Settings, workspace: str) -> tuple[Path, Path]:
    workspace = validate_workspace(workspace)
    if not workspace:
        raise UsageError("files: the default workspace is the working directory itself, which holds every other "
                         "workspace's folder; grant a named workspace")
    root = settings.working_dir
    if not root.is_dir():
        raise UsageError(f"files: working directory {root} does not exist")
    return root, files_dir(root, workspace)


def _readable_by_others(root: Path, mine: Path) -> list[str]:
    """Other workspaces' folders and the default workspace's files that every OS user may read."""
    exposed = []
    for entry in sorted(root.iterdir()):
        if entry == mine or entry.is_symlink():
            continue
        mode = entry.stat().st_mode
        if entry.is_dir() and mode & (stat.S_IROTH | stat.S_IXOTH) or entry.is_file() and mode & stat.S_IROTH:
            exposed.append(entry.name)
    return exposed


def plan_grant(settings: Settings, role: str, workspace: str, *, group: str | None, allow_new: bool,
               force: bool) -> dict[str, Any]:
    root, folder = _folder(settings, workspace)
    user = _user(role)
    gr = _group(group)
    if os.geteuid() != 0 and user.pw_uid != os.geteuid():
        raise UsageError(f"files: giving {folder} to {role} needs root")
    if not folder.is_dir() and not allow_new:
        raise UsageError(f"files: workspace folder {folder} does not exist; pass --new to create it for {role}")
    if folder.is_symlink():
        raise UsageError(f"files: {folder} is a symbolic link; refusing to change what it points to")
    exposed = _readable_by_others(root, folder)
    if exposed and not force:
        shown = ", ".join(exposed[:5]) + (" …" if len(exposed) > 5 else "")
        raise UsageError(f"files: every OS user may read {shown} in {root}, so the tenant could too; pass --force "
                         "to grant anyway", hint="chmod -R o-rwx on them (LightRAG's default umask leaves 0755)")
    traversable = bool(root.stat().st_mode & stat.S_IXOTH) or (gr is not None and root.stat().st_gid == gr.gr_gid)
    return {"backend": "files", "role": role, "workspace": workspace, "folder": str(folder), "uid": user.pw_uid,
            "gid": gr.gr_gid if gr else user.pw_gid, "group": gr.gr_name if gr else None,
            "creates_folder": not folder.is_dir(), "readable_by_others": exposed,
            "notes": [] if traversable else [f"{role} needs search (x) permission on {root} to reach the folder"]}


def _give(folder: Path, uid: int, gid: int, modes: tuple[int, int]) -> None:
    for path in (folder, *_walk(folder)):
        if path.is_symlink():
            os.lchown(path, uid, gid)
            continue
        os.chown(path, uid, gid)
        os.chmod(path, modes[0] if path.is_dir() else modes[1])


def apply_grant(plan: dict[str, Any]) -> dict[str, Any]:
    folder = Path(plan["folder"])
    folder.mkdir(mode=0o700, exist_ok=True)
    modes = WITH_GROUP if plan["group"] else OWNER_ONLY
    _give(folder, plan["uid"], plan["gid"], modes)
    return {"backend": "files", "role": plan["role"], "workspace": plan["workspace"], "folder": plan["folder"],
            "mode": oct(modes[0]), "group": plan["group"], "notes": plan["notes"]}


def plan_revoke(settings: Settings, role: str, workspace: str) -> dict[str, Any]:
    root, folder = _folder(settings, workspace)
    user = _user(role)
    if not folder.is_dir() or folder.stat().st_uid != user.pw_uid:
        raise UsageError(f"files: {folder} does not belong to {role}")
    if user.pw_uid == root.stat().st_uid:
        raise UsageError(f"files: {role} owns the working directory itself; nothing to revoke")
    return {"backend": "files", "role": role, "workspace": workspace, "folder": str(folder),
            "uid": root.stat().st_uid, "gid": root.stat().st_gid}


def apply_revoke(plan: dict[str, Any]) -> dict[str, Any]:
    _give(Path(plan["folder"]), plan["uid"], plan["gid"], OWNER_ONLY)
    return {"backend": "files", "role": plan["role"], "workspace": plan["workspace"], "folder": plan["folder"],
            "login": "folder returned to the working directory's owner"}


def list_grants(settings: Settings, workspace: str | None) -> dict[str, Any]:
    """Workspace folders owned by someone other than the working directory's owner."""
    root = settings.working_dir
    rows: list[dict[str, Any]] = []
    if not root.is_dir():
        return {"grants": rows}
    owner = root.stat().st_uid
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.is_symlink() or (workspace is not None and entry.name != workspace):
            continue
        info = entry.stat()
        if info.st_uid == owner:
            continue
        try:
            name = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            name = str(info.st_uid)
        try:
            group = grp.getgrgid(info.st_gid).gr_name
        except KeyError:
            group = str(info.st_gid)
        rows.append({"backend": "files", "role": name, "workspace": entry.name, "group": group,
                     "mode": oct(stat.S_IMODE(info.st_mode))})
    return {"grants": rows}
