"""`workspace grant | revoke | grants` on the file backend: the folder's owner and mode, checked by
reading as that OS user (`nobody`) in a child process."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not hasattr(pwd, "getpwnam"), reason="changing owners needs root")

TENANT = "nobody"


def can_read(path, user: str = TENANT) -> bool:
    """Whether `user` can read `path` (a file) or list it (a folder)."""
    command = ["ls", str(path)] if path.is_dir() else ["cat", str(path)]
    return subprocess.run(command, user=user, capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def working_dir():
    """Outside pytest's tmp_path, whose parents only root may enter."""
    top = Path(tempfile.mkdtemp(prefix="ragstore-files-grant-"))
    os.chmod(top, 0o755)
    yield top / "rag"
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(autouse=True)
def _layout(working_dir):
    root = working_dir
    for ws in ("team_a", "team_b"):
        (root / ws).mkdir(parents=True)
        (root / ws / "kv_store_full_docs.json").write_text('{"doc-1": {"content": "' + ws + '"}}')
    (root / "kv_store_full_docs.json").write_text("{}")  # the default workspace's own files
    os.chmod(root, 0o711)


def grant(cli, root, workspace, *extra):
    return cli("--json", "workspace", "grant", workspace, "--role", TENANT, "--backend", "files", *extra,
               env={"WORKING_DIR": str(root)})


def test_world_readable_neighbours_are_refused_then_the_folder_is_the_tenants_alone(cli, working_dir):
    refused = grant(cli, working_dir, "team_a")
    assert refused.exit_code == 2 and "team_b" in refused.stderr and "--force" in refused.stderr
    assert working_dir.joinpath("team_a").stat().st_uid == 0  # nothing changed
    for entry in (working_dir / "team_b", working_dir / "kv_store_full_docs.json"):
        os.chmod(entry, 0o700 if entry.is_dir() else 0o600)
    os.chmod(working_dir / "team_b" / "kv_store_full_docs.json", 0o600)
    done = grant(cli, working_dir, "team_a")
    assert done.exit_code == 0, done.output
    folder, data = working_dir / "team_a", working_dir / "team_a" / "kv_store_full_docs.json"
    assert folder.stat().st_uid == pwd.getpwnam(TENANT).pw_uid and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert can_read(data) and can_read(folder)
    assert not can_read(working_dir / "team_b") and not can_read(working_dir / "team_b" / "kv_store_full_docs.json")
    assert not can_read(working_dir / "kv_store_full_docs.json")
    listed = cli("--json", "workspace", "grants", "--backend", "files", env={"WORKING_DIR": str(working_dir)}).json()
    assert [(g["role"], g["workspace"], g["mode"]) for g in listed["grants"]] == [(TENANT, "team_a", "0o700")]

    out = cli("--json", "workspace", "revoke", "team_a", "--role", TENANT, "--backend", "files",
              env={"WORKING_DIR": str(working_dir)})
    assert out.exit_code == 0, out.output
    assert folder.stat().st_uid == 0 and not can_read(data) and not can_read(folder)


def test_new_folder_group_sharing_and_refusals(cli, working_dir):
    os.chmod(working_dir / "team_a", 0o700)
    os.chmod(working_dir / "team_b", 0o700)
    os.chmod(working_dir / "kv_store_full_docs.json", 0o600)
    missing = grant(cli, working_dir, "team_c")
    assert missing.exit_code == 2 and "--new" in missing.stderr and not (working_dir / "team_c").exists()
    made = grant(cli, working_dir, "team_c", "--new", "--group", "nogroup")
    assert made.exit_code == 0, made.output
    info = (working_dir / "team_c").stat()
    assert stat.S_IMODE(info.st_mode) == 0o2770 and info.st_gid == 65534
    for bad, why in ((("",), "default workspace"), (("team_a", "--group", "no_such_group_x"), "no OS group"),
                     (("team*",), "not allowed")):
        out = grant(cli, working_dir, *bad)
        assert out.exit_code == 2 and why in out.stderr, out.output
    out = cli("workspace", "grant", "team_a", "--role", "no_such_user_x", "--backend", "files",
              env={"WORKING_DIR": str(working_dir)})
    assert out.exit_code == 2 and "no OS user" in out.stderr
    assert working_dir.joinpath("team_a").stat().st_uid == 0
