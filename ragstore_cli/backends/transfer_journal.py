"""A durable note that `workspace copy|rename SRC DST` is under way, so that a re-run after a kill
can finish the job instead of refusing a half-written target.

Most backends cannot copy or rename a workspace atomically together (files, PostgreSQL and a Bolt
server are separate systems, and a Bolt server copies in batches). The note is written before the
first backend is touched and cleared after the last one finished; while it exists, DST is known to
hold only what this operation wrote. It lives in the coordination store, beside the workspace
locks (a file under WORKING_DIR, a PostgreSQL table or Redis keys: RAGSTORE_LOCK_BACKEND), and is
only read or written under both workspaces' locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError

PREFIX = "workspace-transfer:"


@dataclass
class Pending:
    """An unfinished copy or rename into `target`."""

    op: str  # "copy" or "rename"
    source: str
    target: str
    profile: str
    done: list[str] = field(default_factory=list)  # backends whose part is finished
    copied: list[str] = field(default_factory=list)  # streamed renames: copy done, source not yet dropped

    def as_data(self) -> dict[str, Any]:
        return {"op": self.op, "source": self.source, "target": self.target, "profile": self.profile,
                "done": self.done, "copied": self.copied}

    def refuse_other(self, op: str, source: str, profile: str) -> None:
        """Only the very same command may finish an unfinished one."""
        if (self.op, self.source, self.profile) != (op, source, profile):
            drop = self.target or '""'
            raise UsageError(
                f"workspace {self.target or '(default)'!r} holds an unfinished `workspace {self.op}` from "
                f"{self.source or '(default)'!r} (profile {self.profile}); re-run that command to finish it, "
                f"or `workspace drop {drop} --yes` to discard it")


class Journal:
    """Read and write pending-transfer notes in the coordination store."""

    def __init__(self, settings: Settings) -> None:
        from ragstore_cli.coordination import open_coordinator

        self.coordinator = open_coordinator(settings, command="workspace transfer")

    async def __aenter__(self) -> "Journal":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.coordinator.close()

    async def pending(self, target: str) -> Pending | None:
        _, data = await self.coordinator.backend.get_data(PREFIX + target)
        if not data or data.get("target") != target:
            return None
        return Pending(str(data["op"]), str(data["source"]), target, str(data["profile"]),
                       list(data.get("done") or []), list(data.get("copied") or []))

    async def save(self, pending: Pending) -> None:
        await self.coordinator.backend.bump_version(PREFIX + pending.target, pending.as_data())

    async def clear(self, target: str) -> bool:
        """Remove the note for `target` entirely; True when there was one (finished or not)."""
        version, _ = await self.coordinator.backend.get_data(PREFIX + target)
        if not version:
            return False
        await self.coordinator.backend.forget(PREFIX + target)
        return True
