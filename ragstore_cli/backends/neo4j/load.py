"""Loading into the Bolt server: the graph backend's part of the contract's Target.

Graph writes are staged under a private label and swapped in at commit (writer.py), so a section is
visible whole or not at all; the session first removes what loads killed earlier left staged. The
preflight refuses records the server cannot store (a node id longer than its index takes: limits.py)
before the first write.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.backends.contract import Check, LoadPlan
from ragstore_cli.backends.neo4j import limits
from ragstore_cli.backends.sections import StoreSession
from ragstore_cli.errors import OperationFailed
from ragstore_cli.records import Batch, Role


class GraphLimits:
    """A preflight Check: every node and edge of the source fits this server's limits."""

    keys = frozenset({"graph/nodes", "graph/edges"})
    needs_vectors = True

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect

    async def narrow(self, source: Any) -> None:
        return None  # every record is looked at

    async def observe(self, key: str, batch: Batch) -> None:
        limits.check_batch(self.dialect, batch)

    async def finish(self) -> None:
        return None


class Neo4jLoader:
    def __init__(self, backend: Any, plan: LoadPlan) -> None:
        self.backend, self.plan = backend, plan

    def precheck(self) -> None:
        return None

    def ledger(self) -> Any:
        raise OperationFailed("the neo4j backend keeps no ledger (it serves no KV role)")

    async def checks(self) -> list[Check]:
        wanted = Role.GRAPH in self.plan.roles and any(self.plan.counts.get(k) for k in GraphLimits.keys)
        return [GraphLimits(self.backend.bolt.dialect)] if wanted else []

    async def session(self) -> StoreSession:
        # nodes staged for this workspace by loads that were killed (the workspace lock keeps others out)
        await self.backend.cleanup_stale_imports()
        return StoreSession(self.backend, self.plan)
