"""Publishing files: new data files are owner-only; a replaced file keeps its mode; no tmp left."""

from __future__ import annotations

import stat

from ragstore_cli.atomic import publish
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_publish_new_and_replaced(tmp_path):
    target = tmp_path / "kv_store_full_docs.json"
    tmp = tmp_path / "x.tmp"
    tmp.write_text("{}")
    publish(tmp, target)
    assert _mode(target) == 0o600 and not tmp.exists()
    target.chmod(0o640)
    tmp.write_text('{"a": 1}')
    publish(tmp, target)
    assert _mode(target) == 0o640 and target.read_text() == '{"a": 1}'


async def test_files_backend_writes_owner_only(tmp_path):
    settings = load_settings(environ={"WORKING_DIR": str(tmp_path)}, cwd=tmp_path)
    async with await open_backends(settings, "files", "team") as stores:
        writer = await stores.kv.writer("full_docs")
        await writer.write([("doc-1", {"content": "secret text", "file_path": "a.txt"})])
        await writer.commit()
    written = tmp_path / "team" / "kv_store_full_docs.json"
    assert _mode(written) == 0o600
    assert [p.name for p in (tmp_path / "team").iterdir()] == ["kv_store_full_docs.json"]
