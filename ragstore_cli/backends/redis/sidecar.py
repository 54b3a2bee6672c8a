"""The doc-status scheduling sidecar LightRAG 1.5.7 keeps next to each doc-status row.

ZSET `<prefix>__sched:status:<status>` (score 0, member `"<created_at>|<doc_id>"`) and SET
`<prefix>__sched:basename:<file_path>` (primary doc ids only). ragstore maintains it with the same
rules, in the same MULTI as the rows, rather than deleting it for LightRAG to rebuild: LightRAG
rebuilds only at start-up and only when no status key exists, so a running server — or a workspace
whose sidecar survives a merge import — would otherwise never see the imported documents.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDERS = ("unknown_source", "no-file-path")


def status_key(prefix_: str, status: str) -> str:
    return f"{prefix_}__sched:status:{status}"


def basename_key(prefix_: str, basename: str) -> str:
    return f"{prefix_}__sched:basename:{basename}"


def member(row: dict[str, Any], doc_id: str) -> str:
    created = row.get("created_at")
    return f"{created if isinstance(created, str) else ''}|{doc_id}"


def _status(row: dict[str, Any]) -> str:
    value = row.get("status")
    return str(value) if value is not None else ""


def basename(row: dict[str, Any] | None) -> str | None:
    """The basename a row claims in the primary index, or None (duplicate / placeholder / missing)."""
    if not isinstance(row, dict):
        return None
    metadata = row.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_duplicate"):
        return None
    file_path = row.get("file_path")
    if not isinstance(file_path, str) or not file_path or file_path in PLACEHOLDERS:
        return None
    return file_path


def queue(pipe: Any, prefix_: str, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Queue the sidecar changes for one row going from `old` (None if absent) to `new`."""
    if old is not None and _status(old):
        pipe.zrem(status_key(prefix_, _status(old)), member(old, doc_id))
    if _status(new):
        pipe.zadd(status_key(prefix_, _status(new)), {member(new, doc_id): 0})
    before, after = basename(old), basename(new)
    if before == after:
        if after is not None:
            pipe.sadd(basename_key(prefix_, after), doc_id)
        return
    if before is not None:
        pipe.srem(basename_key(prefix_, before), doc_id)
    if after is not None:
        pipe.sadd(basename_key(prefix_, after), doc_id)
