"""Files check: working directory and workspace folder exist and are writable; LightRAG files parse."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ragstore_cli.config import Settings
from ragstore_cli.errors import OperationFailed

FULL_PARSE_LIMIT = 256 * 1024 * 1024  # above this, only the envelope is checked (memory stays flat)


async def check(settings: Settings, timeout: float) -> dict[str, Any]:
    return await asyncio.to_thread(_check_sync, settings)


def _check_sync(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    root = settings.working_dir
    workspace = settings.lightrag.workspace or ""
    folder = root / workspace if workspace else root
    details: dict[str, Any] = {"working_dir": str(root), "workspace": workspace, "workspace_dir": str(folder)}
    if not root.is_dir():
        raise OperationFailed(f"files: working directory {root} does not exist")
    if not folder.is_dir():
        raise OperationFailed(f"files: workspace folder {folder} does not exist")
    details["writable"] = _writable(folder)
    files: dict[str, str] = {}
    problems = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or ".tmp." in path.name:
            continue
        if path.name.startswith(("kv_store_", "vdb_")) and path.suffix == ".json":
            verdict = _check_json(path)
        elif path.suffix == ".graphml":
            verdict = _check_graphml(path)
        else:
            continue
        files[path.name] = verdict
        if not verdict.startswith("ok"):
            problems.append(f"{path.name}: {verdict}")
    details["files"] = files
    details["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if not details["writable"]:
        problems.insert(0, f"{folder} is not writable")
    if problems:
        details["ok"] = False
        details["error"] = "files: " + "; ".join(problems)
    return details


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ragstore-probe-"):
            return True
    except OSError:
        return False


def _check_json(path: Path) -> str:
    size = path.stat().st_size
    if size == 0:
        return "ok (empty)"
    try:
        if size > FULL_PARSE_LIMIT:
            with open(path, "rb") as handle:
                head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
                handle.seek(max(size - 64, 0))
                tail = handle.read().rstrip()
            return "ok (envelope only)" if head.startswith(b"{") and tail.endswith(b"}") else "not a JSON object"
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"does not parse: {str(exc).splitlines()[0]}"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if not isinstance(data, dict):
        return "not a JSON object"
    if path.name.startswith("vdb_") and not {"embedding_dim", "data"} <= data.keys():
        return "not a NanoVectorDB file (embedding_dim/data missing)"
    return f"ok ({len(data.get('data', data))} records)"


def _check_graphml(path: Path) -> str:
    nodes = edges = 0
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag == "node":
                nodes += 1
                elem.clear()
            elif tag == "edge":
                edges += 1
                elem.clear()
    except ET.ParseError as exc:
        return f"does not parse: {exc}"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    return f"ok ({nodes} nodes, {edges} edges)"


