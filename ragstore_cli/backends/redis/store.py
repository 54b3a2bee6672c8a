"""KV and doc-status namespaces in Redis: SCAN + MGET reads, staged MULTI writes, swap on commit.

Writes go to staged keys `__ragstore_import:<id>:<final key>` (one MULTI per batch, which also adds
the final key to the SET `__ragstore_import:<id>`), so nothing is visible before commit(). commit() (replace mode: after deleting the namespace's keys and sidecar)
RENAMEs staged keys over the final ones, one MULTI per SCAN page, maintaining the doc-status
sidecar in the same MULTI; abort() deletes the staged keys. The swap itself is not one atomic
step: a reader during commit() can see part of the old and part of the new namespace.
"""

from __future__ import annotations

import json
import uuid
from enum import Enum
from typing import Any, AsyncIterator

from ragstore_cli.records import DEFAULT_BATCH, DOC_STATUS_NAMESPACE, KV_NAMESPACES, KVRecord
from ragstore_cli.backends.redis import keys as K
from ragstore_cli.backends.redis import sidecar
from ragstore_cli.errors import DataError, OperationFailed, UsageError
from ragstore_cli.workspace import redis_glob_escape

# RENAME each (staged, final) pair; a staged key SSCAN returned twice is already gone: skip it.
RENAME_ALL = """
local n = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
    n = n + 1
  end
end
return n
"""


def _decode(key: bytes, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise DataError(f"redis key {key[:80]!r}: value is not JSON") from None
    if not isinstance(value, dict):
        raise DataError(f"redis key {key[:80]!r}: value is a JSON {type(value).__name__}, not an object")
    return value


def _encode(owner: str, value: dict[str, Any]) -> bytes:
    try:  # json.dumps defaults (ASCII escapes), as LightRAG's redis storages write
        return json.dumps(value, allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: value cannot be stored as JSON ({exc})") from None


def kv_value(namespace: str, record_id: str, value: Any) -> dict[str, Any]:
    """LightRAG's KV envelope: `_id` = key; text_chunks always carry `llm_cache_list`.

    `create_time`/`update_time` are copied, never invented: an import preserves them, and
    one LightRAG dropped on an update (JSON KV) must stay absent so it still reads as 0.
    """
    if not isinstance(value, dict):
        raise DataError(f"{namespace} record {record_id[:60]!r}: value must be an object")
    out = dict(value)
    out["_id"] = record_id
    if namespace == "text_chunks":
        out.setdefault("llm_cache_list", [])
    return out


def doc_status_value(record_id: str, value: Any) -> dict[str, Any]:
    """A doc-status row: no stamping; `status` must be a status string; `chunks_list` defaulted."""
    if not isinstance(value, dict):
        raise DataError(f"doc_status record {record_id[:60]!r}: value must be an object")
    out = dict(value)
    status = out.get("status")
    if isinstance(status, Enum):
        status = out["status"] = status.value
    if not isinstance(status, str) or not status:
        raise DataError(f"doc_status record {record_id[:60]!r}: 'status' must be a non-empty string")
    out.setdefault("chunks_list", [])
    return out


class Namespace:
    """Reads and counts one prefix."""

    def __init__(self, client: Any, prefix: str, namespace: str, target: str = "redis") -> None:
        self.client, self.prefix, self.namespace, self.target = client, prefix, namespace, target

    async def count(self) -> int:
        seen: set[bytes] = set()
        with K.translated(self.target):
            async for page in K.scan(self.client, K.record_pattern(self.prefix)):
                seen.update(page)
        return len(seen)

    async def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        """SCAN pages, MGET per batch. Keys SCAN repeats (it may, during a rehash) are skipped."""
        seen: set[bytes] = set()
        pending: list[bytes] = []
        with K.translated(self.target):
            async for page in K.scan(self.client, K.record_pattern(self.prefix), count=max(batch_size, 10)):
                for key in page:
                    if key not in seen:
                        seen.add(key)
                        pending.append(key)
                while len(pending) >= batch_size:
                    batch, pending = pending[:batch_size], pending[batch_size:]
                    if records := await self._fetch(batch):
                        yield records
            if pending and (records := await self._fetch(pending)):
                yield records

    async def _fetch(self, batch: list[bytes]) -> list[KVRecord]:
        values = await self.client.mget(batch)
        out = []
        for key, raw in zip(batch, values):
            if raw is None:
                continue  # deleted between SCAN and MGET
            try:
                record_id = K.id_of(self.prefix, key)
            except UnicodeDecodeError:
                raise DataError(f"redis key {key[:80]!r} is not UTF-8") from None
            out.append((record_id, _decode(key, raw)))
        return out

    async def writer(self, *, replace: bool) -> "RedisWriter":
        return RedisWriter(self.client, self.prefix, self.namespace, replace=replace, target=self.target)


class RedisWriter:
    """Staged writer for one prefix (see module docstring)."""

    def __init__(self, client: Any, prefix: str, namespace: str, *, replace: bool, target: str = "redis") -> None:
        self.client, self.prefix, self.namespace, self.replace = client, prefix, namespace, replace
        self.target = target
        self.doc_status = namespace == DOC_STATUS_NAMESPACE
        self.import_id = uuid.uuid4().hex[:16]
        self.stage = K.stage_prefix(self.import_id)
        self.written = 0
        self._state = "open"

    @property
    def _index(self) -> bytes:
        """A SET of the final keys this import staged: commit/abort walk it (SSCAN) instead of
        SCANning the whole keyspace for staged keys."""
        return self.stage[:-1]

    async def _staged_pages(self) -> AsyncIterator[list[bytes]]:
        cursor = 0
        while True:
            cursor, finals = await self.client.sscan(self._index, cursor, count=K.SCAN_COUNT)
            if finals:
                yield [self.stage + final for final in finals]
            if int(cursor) == 0:
                return

    async def write(self, batch: list[KVRecord]) -> None:
        if self._state != "open":
            raise UsageError(f"redis writer is {self._state}; no more writes")
        encoded = []
        for item in batch:  # validate the whole batch before anything is sent
            if not isinstance(item, tuple) or len(item) != 2:
                raise DataError(f"{self.namespace}: expected (id, value) records, got {type(item).__name__}")
            record_id, value = item
            key = K.record_key(self.prefix, record_id)
            row = doc_status_value(record_id, value) if self.doc_status else kv_value(self.namespace, record_id, value)
            encoded.append((self.stage + key, _encode(f"{self.namespace} record {record_id[:60]!r}", row)))
        if not encoded:
            return
        with K.translated(self.target):
            async with self.client.pipeline(transaction=True) as pipe:  # 2 commands per batch, atomic
                pipe.mset(dict(encoded))
                pipe.sadd(self._index, *(key[len(self.stage):] for key, _ in encoded))
                await pipe.execute()
        self.written += len(encoded)

    async def commit(self) -> None:
        if self._state != "open":
            raise UsageError(f"redis writer is {self._state}; cannot commit")
        self._state = "committing"
        try:
            with K.translated(self.target):
                keep_sidecar = await self._sidecar_wanted()
                if self.replace:
                    await K.delete_matching(self.client, K.record_pattern(self.prefix))
                    if self.doc_status:
                        for pattern in K.sidecar_patterns(self.prefix):
                            await K.delete_matching(self.client, pattern)
                async for page in self._staged_pages():
                    await self._publish(page, keep_sidecar)
                await self.client.delete(self._index)
        except BaseException:
            self._state = "failed"
            raise
        self._state = "committed"

    async def _sidecar_wanted(self) -> bool:
        """Maintain the sidecar unless this is a merge into rows that have none yet: LightRAG rebuilds
        a missing sidecar from all rows at start-up, but a partial one would hide the older rows."""
        if not self.doc_status:
            return False
        if self.replace:
            return True
        status_pattern = redis_glob_escape(sidecar.status_key(self.prefix, "")) + "*"
        has_rows = await _any(self.client, K.record_pattern(self.prefix))
        return not has_rows or await _any(self.client, status_pattern)

    async def _publish(self, staged: list[bytes], keep_sidecar: bool) -> int:
        finals = [key[len(self.stage):] for key in staged]
        if not self.doc_status:  # one atomic server-side script per page instead of N RENAME replies
            pairs = [k for pair in zip(staged, finals) for k in pair]
            return int(await self.client.eval(RENAME_ALL, len(pairs), *pairs))
        new_rows: list[Any] = [None] * len(staged)
        old_rows: list[Any] = [None] * len(staged)
        if keep_sidecar:
            new_rows = await self.client.mget(staged)
            if not self.replace:
                old_rows = await self.client.mget(finals)
        async with self.client.pipeline(transaction=True) as pipe:
            for i, (key, final) in enumerate(zip(staged, finals)):
                pipe.rename(key, final)
                if keep_sidecar and new_rows[i] is not None:
                    doc_id = K.id_of(self.prefix, final)
                    old = _decode(final, old_rows[i]) if old_rows[i] is not None else None
                    sidecar.queue(pipe, self.prefix, doc_id, old, _decode(key, new_rows[i]))
            results = await pipe.execute(raise_on_error=False)
        for result in results:  # a key SSCAN returned twice was already renamed: nothing to do
            if isinstance(result, Exception) and "no such key" not in str(result).lower():
                raise OperationFailed(f"redis: committing import {self.import_id}: {str(result)[:200]}")
        return len(staged)

    async def abort(self) -> None:
        if self._state in ("committed", "aborted"):
            return
        with K.translated(self.target):
            async for page in self._staged_pages():
                await self.client.delete(*page)
            await self.client.delete(self._index)
        self._state = "aborted"


async def _any(client: Any, pattern: str) -> bool:
    pages = K.scan(client, pattern)
    try:
        async for _ in pages:
            return True
        return False
    finally:
        await pages.aclose()


def check_kv_namespace(namespace: str) -> str:
    if namespace not in KV_NAMESPACES:
        raise UsageError(f"unknown KV namespace {namespace!r}; expected one of: {', '.join(KV_NAMESPACES)}")
    return namespace
