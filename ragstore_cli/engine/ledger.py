"""The one ledger: a durable note that a move into a workspace is under way, and what of it is done.

Every move that can be interrupted half-way keeps one — an import, a direct transfer, a `workspace
copy|rename` — so that the very same command finishes the job (`--resume`, or a re-run for copies)
and no other command mistakes the half-written target for a workspace. One note per target
workspace, removed when the move completes. Where the note is kept is the store's business:

- a load (import, transfer) keeps it in the target, beside the data it describes: the store of the
  backend serving the KV role (a JSON file, a PostgreSQL row, a Redis key — contract.LedgerStore),
  so PostgreSQL can remove it in the load's own transaction;
- a workspace copy or rename spans backends that share nothing, so its note lives in the
  coordination store beside the workspace locks (`JournalStore`), read and written only under both
  workspaces' locks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.backends.contract import LedgerStore
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError

JOURNAL_PREFIX = "workspace-transfer:"


@dataclass
class Note:
    """An unfinished move into `target`."""

    op: str  # import | transfer | copy | rename
    source: str  # what it reads: an archive's manifest SHA-256, a workspace name (copy) or `<ws> in <profile>`
    target: str
    profile: str  # the target's backends, canonical spelling
    label: str = ""  # the source as people name it (an archive's path)
    mode: str = ""  # --if-exists of a load
    done: dict[str, int] = field(default_factory=dict)  # finished for good: sections of a load, backends of a copy
    uncommitted: dict[str, int] = field(default_factory=dict)  # written in a session that commits at the end
    copied: list[str] = field(default_factory=list)  # streamed renames: copied, source not yet dropped
    swap: dict[str, Any] | None = None  # a staged files target's swap plan, once it started
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())

    def as_data(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if v is not None}
        if self.op == "import":  # the names an import ledger has always had on disk
            data.update(archive=self.source, file=self.label)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any], target: str) -> "Note":
        done = data.get("done") or {}
        return cls(op=str(data.get("op") or "import"), source=str(data.get("source") or data.get("archive") or ""),
                   target=target, profile=str(data.get("profile") or ""),
                   label=str(data.get("label") or data.get("file") or ""), mode=str(data.get("mode") or ""),
                   done=dict.fromkeys(done, 1) if isinstance(done, list) else dict(done),
                   uncommitted=dict(data.get("uncommitted") or {}), copied=list(data.get("copied") or []),
                   swap=data.get("swap"), started_at=str(data.get("started_at") or ""))

    def refuse_other(self, op: str, source: str, profile: str) -> None:
        """A copy or rename: only the very same command may finish an unfinished one."""
        if (self.op, self.source, self.profile) != (op, source, profile):
            drop = self.target or '""'
            raise UsageError(
                f"workspace {self.target or '(default)'!r} holds an unfinished `workspace {self.op}` from "
                f"{self.source or '(default)'!r} (profile {self.profile}); re-run that command to finish it, "
                f"or `workspace drop {drop} --yes` to discard it")


class Ledger:
    """The note of one target workspace in one store; `state` is what the store holds."""

    def __init__(self, store: LedgerStore, target: str) -> None:
        self.store, self.target = store, target
        self.note: Note | None = None

    async def pending(self) -> Note | None:
        data = await self.store.load()
        if not data or data.get("target", self.target) != self.target:
            return None
        return Note.from_data(data, self.target)

    async def save(self, note: Note) -> None:
        self.note = note
        await self.store.save(note.as_data())

    async def clear(self) -> None:
        await self.store.clear()

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> "Ledger":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class JournalStore:
    """Notes of workspace copies and renames, in the coordination store (RAGSTORE_LOCK_BACKEND's)."""

    def __init__(self, settings: Settings, target: str) -> None:
        from ragstore_cli.coordination import open_coordinator

        self.coordinator = open_coordinator(settings, command="workspace transfer")
        self.key = JOURNAL_PREFIX + target

    async def load(self) -> dict[str, Any] | None:
        _, data = await self.coordinator.backend.get_data(self.key)
        return data or None

    async def save(self, state: dict[str, Any]) -> None:
        await self.coordinator.backend.bump_version(self.key, state)

    async def clear(self) -> bool:
        """Remove the note entirely (no emptied record); True when there was one, finished or not."""
        version, _ = await self.coordinator.backend.get_data(self.key)
        if not version:
            return False
        await self.coordinator.backend.forget(self.key)
        return True

    async def exists(self) -> bool:
        return (await self.coordinator.backend.get_data(self.key))[0] > 0

    async def close(self) -> None:
        await self.coordinator.close()


def journal(settings: Settings, target: str) -> Ledger:
    """The ledger of `workspace copy|rename` into `target`."""
    return Ledger(JournalStore(settings, target), target)
