"""Loading into Redis: the KV and doc-status backend's part of the contract's Target.

Writers stage their keys and swap them in at commit (store.py); a killed load's staged keys go with
`workspace drop`. The ledger of a load whose KV role is here is one key, `ragstore:import_ledger:<ws>`.
"""

from __future__ import annotations

import json
from typing import Any

from ragstore_cli.backends.contract import Check, LoadPlan
from ragstore_cli.backends.sections import StoreSession, ledger_traces
from ragstore_cli.config import Settings


class RedisLedgerStore:
    def __init__(self, settings: Settings, workspace: str) -> None:
        from ragstore_cli.connect.redis import create_client

        self.client = create_client(settings)
        self.key = f"ragstore:import_ledger:{workspace}"

    async def load(self) -> dict[str, Any] | None:
        raw = await self.client.get(self.key)
        return json.loads(raw) if raw else None

    async def save(self, state: dict[str, Any]) -> None:
        await self.client.set(self.key, json.dumps(state))

    async def clear(self) -> None:
        await self.client.delete(self.key)

    async def close(self) -> None:
        await self.client.aclose()


async def traces(settings: Settings, workspace: str, *, remove: bool) -> list[str]:
    """The ledger key a killed or refused load left for `workspace`."""
    store = RedisLedgerStore(settings, workspace)
    return await ledger_traces(store, f"redis: {store.key}", remove=remove)


class RedisLoader:
    def __init__(self, backend: Any, plan: LoadPlan) -> None:
        self.backend, self.plan = backend, plan

    def precheck(self) -> None:
        return None

    def ledger(self) -> RedisLedgerStore:
        return RedisLedgerStore(self.backend.settings, self.plan.workspace)

    async def checks(self) -> list[Check]:
        return []

    async def session(self) -> StoreSession:
        return StoreSession(self.backend, self.plan)
