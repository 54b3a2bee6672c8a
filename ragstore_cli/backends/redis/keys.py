"""LightRAG's Redis key layout (docs/lightrag-formats.md, Redis) and SCAN helpers that cannot match other workspaces.

Record key `<prefix>:<id>` with prefix `<workspace>_<namespace>` (or `<namespace>` for the default
workspace); doc status also keeps a derived sidecar under `<prefix>__sched:`. Every SCAN pattern is
built from a glob-escaped prefix, so no workspace or id character acts as a wildcard.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Iterator

from redis.exceptions import RedisError

from ragstore_cli.records import DOC_STATUS_NAMESPACE, KV_NAMESPACES
from ragstore_cli.errors import ConnectionFailed, DataError
from ragstore_cli.redact import redact
from ragstore_cli.workspace import redis_glob_escape, redis_prefix

NAMESPACES = (*KV_NAMESPACES, DOC_STATUS_NAMESPACE)
STAGE = "__ragstore_import"  # staged keys: `__ragstore_import:<import id>:<final key>`
SCAN_COUNT = 1000


def prefix(workspace: str, namespace: str) -> str:
    return redis_prefix(workspace, namespace)


def record_key(prefix_: str, record_id: Any) -> bytes:
    """`<prefix>:<id>` as bytes; ids are any non-empty text that UTF-8 can carry."""
    if not isinstance(record_id, str) or not record_id:
        raise DataError(f"record id {record_id!r} must be non-empty text")
    try:
        return f"{prefix_}:{record_id}".encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"record id {record_id[:60]!r} contains a lone surrogate (not valid UTF-8)") from None


def record_pattern(prefix_: str) -> str:
    return redis_glob_escape(prefix_) + ":*"


def sidecar_prefix(prefix_: str) -> str:
    return f"{prefix_}__sched"


def sidecar_patterns(prefix_: str) -> list[str]:
    """Every key of the doc-status sidecar, including a rebuild LightRAG left half done."""
    base = redis_glob_escape(sidecar_prefix(prefix_))
    return [base + ":*", base + "_rebuild:*"]


def stage_prefix(import_id: str) -> bytes:
    return f"{STAGE}:{import_id}:".encode()


_IMPORT_ID = "[0-9a-f]" * 16  # RedisWriter's import ids: 16 hex digits (a glob cannot say "16 of")
STAGE_INDEX_PATTERN = f"{STAGE}:{_IMPORT_ID}"


def staged_pattern(prefix_: str) -> str:
    """Keys staged under any import id for final keys of this prefix (`__ragstore_import:<id>:<prefix>:*`)."""
    return f"{STAGE}:{_IMPORT_ID}:" + redis_glob_escape(prefix_) + ":*"


def id_of(prefix_: str, key: bytes) -> str:
    return key.decode("utf-8")[len(prefix_) + 1:]


async def scan(client: Any, pattern: str | bytes, count: int = SCAN_COUNT) -> AsyncIterator[list[bytes]]:
    """SCAN pages (possibly empty) for one escaped pattern; cursor loop ends when Redis says 0."""
    cursor = 0
    while True:
        cursor, keys = await client.scan(cursor, match=pattern, count=count)
        if keys:
            yield keys
        if int(cursor) == 0:
            return


async def delete_matching(client: Any, pattern: str | bytes) -> int:
    """Delete every key matching one escaped pattern, one pipelined DEL per SCAN page."""
    removed = 0
    async for keys in scan(client, pattern):
        removed += int(await client.delete(*keys))
    return removed


def workspace_of(key_prefix: str) -> str | None:
    """The workspace a record key prefix belongs to ("" = default), or None if it is not LightRAG's."""
    for namespace in sorted(NAMESPACES, key=len, reverse=True):
        if key_prefix == namespace:
            return ""
        if key_prefix.endswith("_" + namespace) and len(key_prefix) > len(namespace) + 1:
            return key_prefix[: -len(namespace) - 1]
    return None


@contextlib.contextmanager
def translated(target: str) -> Iterator[None]:
    """Redis client errors as one-line ConnectionFailed naming the (masked) server."""
    try:
        yield
    except (RedisError, OSError) as exc:
        text = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConnectionFailed("redis", redact(f"{target}: {text[:200]}")) from None
