"""Redis backend: SET NX PX leases with a fencing token and renewal — many processes, many hosts.

The value is `<token>:<holder json>`; the token comes from one INCR counter, so a later holder
always has a larger token (callers may pass it to storage as a fence). A background task renews
the lease every third of its length while held; release and renewal compare the whole value in a
Lua script, so a holder whose lease expired cannot delete or extend its successor's. A holder that
dies stops renewing and its key expires after at most one lease: that is how it is recovered.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ragstore_cli.config import Settings
from ragstore_cli.connect.redis import create_client, explain
from ragstore_cli.coordination.base import BreakResult, Lease, LockBackend
from ragstore_cli.coordination.records import HolderRecord
from ragstore_cli.errors import LockConflict, UsageError

# One hash tag for every lock key and the fence counter: the Lua scripts touch both, and Redis
# Cluster runs a multi-key script only when all its keys live in one slot.
PREFIX = "ragstore:{locks}:"
FENCE = "ragstore:{locks}-fence"
BREAKS = "ragstore:{locks}-breaks"
NS_PREFIX = "ragstore:ns:"
BREAK_LOG_MAX = 1000
DEFAULT_LEASE = 30.0

ACQUIRE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
if redis.call('set', KEYS[1], token .. ':' .. ARGV[1], 'NX', 'PX', ARGV[2]) then return token end
return 0
"""
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
BUMP = """
local v = redis.call('hincrby', KEYS[1], 'version', 1)
if ARGV[1] ~= '' then redis.call('hset', KEYS[1], 'data', ARGV[1]) end
return v
"""


def _parse(key: str, raw: bytes, pttl: int) -> HolderRecord:
    token, _, payload = raw.decode().partition(":")
    record = HolderRecord.from_stored(json.loads(payload))
    record.key, record.token, record.backend = key, int(token), "redis"
    if pttl > 0:
        record.lease_expires = time.time() + pttl / 1000
    return record.judge_local()


class RedisBackend(LockBackend):
    name = "redis"

    def __init__(self, settings: Settings, *, lease: float = DEFAULT_LEASE) -> None:
        self.settings = settings
        self.lease = lease
        self.client = create_client(settings)
        self._acquire = self.client.register_script(ACQUIRE)
        self._renew = self.client.register_script(RENEW)
        self._release = self.client.register_script(RELEASE)
        self._bump = self.client.register_script(BUMP)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:  # noqa: BLE001 - only driver and socket errors are translated
            raise self._translate(exc) from None

    def _translate(self, exc: Exception) -> Exception:
        if isinstance(exc, (ConnectionError, OSError, TimeoutError)) or type(exc).__module__.startswith("redis"):
            return explain(exc, self.settings)
        return exc

    async def try_acquire(self, key: str, record: HolderRecord) -> Lease | None:
        payload = json.dumps(record.stored())
        token = await self._call(self._acquire(keys=[PREFIX + key, FENCE], args=[payload, int(self.lease * 1000)]))
        if not token:
            return None
        record.token = int(token)
        lease = Lease(record, handle=f"{int(token)}:{payload}".encode())
        lease.tasks.append(asyncio.create_task(self._keep(lease)))
        return lease

    async def _keep(self, lease: Lease) -> None:
        """Renew every third of the lease; stop and mark the lease lost when it is no longer ours."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                ok = await self._renew(keys=[PREFIX + lease.key], args=[lease.handle, int(self.lease * 1000)])
            except Exception:  # noqa: BLE001 - retry at the next tick; the lease covers 3 ticks
                continue
            if not ok:
                lease.lost = True
                return

    async def release(self, lease: Lease) -> None:
        await self._call(self._release(keys=[PREFIX + lease.key], args=[lease.handle]))

    async def holder(self, key: str) -> HolderRecord | None:
        async with self.client.pipeline(transaction=True) as pipe:
            raw, pttl = await self._call(pipe.get(PREFIX + key).pttl(PREFIX + key).execute())
        return _parse(key, raw, pttl) if raw else None

    async def holders(self) -> list[HolderRecord]:
        found = []
        try:
            names = [name async for name in self.client.scan_iter(match=PREFIX + "*", count=1000)]
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc) from None
        for name in names:
            record = await self.holder(name.decode()[len(PREFIX):])
            if record is not None:
                found.append(record)
        return sorted(found, key=lambda r: r.acquired_at)

    async def break_lock(self, key: str, by: dict[str, Any], *, force: bool) -> BreakResult:
        raw = await self._call(self.client.get(PREFIX + key))
        if raw is None:
            raise UsageError(f"lock {key!r} is not held")
        record = _parse(key, raw, await self._call(self.client.pttl(PREFIX + key)))
        if not record.stale and not force:
            raise LockConflict(f"lock {key!r} is {record.describe()}; refusing to break a live holder without --force")
        await self._call(self._release(keys=[PREFIX + key], args=[raw]))
        entry = json.dumps({"key": key, "broken": record.stored(), "by": by, "live": not record.stale, "at": time.time()})
        async with self.client.pipeline(transaction=True) as pipe:
            await self._call(pipe.lpush(BREAKS, entry).ltrim(BREAKS, 0, BREAK_LOG_MAX - 1).execute())
        return BreakResult(key, record, by)

    async def get_version(self, namespace: str) -> int:
        return int(await self._call(self.client.hget(NS_PREFIX + namespace, "version")) or 0)

    async def bump_version(self, namespace: str, data: dict[str, Any] | None = None) -> int:
        payload = "" if data is None else json.dumps(data)
        return int(await self._call(self._bump(keys=[NS_PREFIX + namespace], args=[payload])))

    async def forget(self, namespace: str) -> None:
        await self._call(self.client.delete(NS_PREFIX + namespace))

    async def get_data(self, namespace: str) -> tuple[int, dict[str, Any]]:
        version, data = await self._call(self.client.hmget(NS_PREFIX + namespace, ["version", "data"]))
        return int(version or 0), json.loads(data) if data else {}

    async def close(self) -> None:
        await self.client.aclose()
