"""The one preflight: every check that can refuse a move, before its first write. `--dry-run` runs
exactly this and stops.

In order: the source is opened (an archive is verified whole; a workspace source takes its
consistent view) and the target opened (its model and dimension against the source's); then the
ledger — a pending move into the workspace either is what `--resume` finishes or blocks a new one;
then `--if-exists` against what the target holds; then every backend's own checks (contract.Check:
PostgreSQL's vector tables and pgvector, chunk-vector fields, the Bolt server's id limits, float16
for the files vector store). Checks that need the source's records get them in ONE pass over the
sections any of them wants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.backends.contract import Check, Origin, Source, Target
from ragstore_cli.engine.ledger import Ledger, Note
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.errors import UsageError

IF_EXISTS = ("fail", "replace", "merge")


@dataclass
class Preflight:
    """What the checks found: the mode the load runs in, what is done already, what the target holds."""

    mode: str
    note: Note | None = None  # the pending note --resume continues
    done: dict[str, int] = field(default_factory=dict)
    existing: int = 0


async def resume_state(ledger: Ledger | None, origin: Origin, target: Target, *, op: str, mode: str,
                       resume: bool) -> Preflight:
    """The pending note of the target workspace, as `--resume` or a fresh move must take it."""
    pending = await ledger.pending() if ledger is not None else None
    workspace = target.workspace
    if pending is not None and resume:
        if pending.source != origin.identity:
            what = "archive" if origin.kind == "archive" else "source"
            raise UsageError(f"the interrupted {pending.op} into workspace {workspace!r} was of another {what} "
                             f"({pending.label})")
        return Preflight(pending.mode or mode, pending, dict(pending.done))
    if resume:
        raise UsageError(f"there is no interrupted {op} into this workspace to resume")
    if pending is not None and mode != "replace":
        article = "an" if pending.op[:1] in "aeiou" else "a"
        raise UsageError(f"{article} {pending.op} of {pending.label} into workspace {workspace!r} was interrupted "
                         f"after {len(pending.done)} sections",
                         hint="finish it with --resume, or start over with --if-exists replace")
    return Preflight(mode)


async def check_target(source: Source, target: Target, found: Preflight, *, resume: bool, batch_size: int,
                       observer: Observer = NOTHING, counts: dict[str, int] | None = None) -> None:
    """`--if-exists`, then every check of the target's backends (those that read records: one pass)."""
    if not resume:
        found.existing = await target.existing()
    if found.existing and found.mode == "fail":
        raise UsageError(f"workspace {target.workspace!r} already holds {found.existing} records in the target",
                         hint="choose --if-exists replace or --if-exists merge")
    target.prepare(replace=found.mode != "merge", resume=resume)
    await scan(source, await target.checks(), batch_size, observer, counts)


async def scan(source: Source, checks: list[Check], batch_size: int, observer: Observer = NOTHING,
               known: dict[str, int] | None = None) -> None:
    """Feed every check the batches of the sections it wants, reading each such section once (the
    observer's `read` phase). `known`: the sections' counts as the source's origin gave them (a
    files workspace counts by scanning its files: not twice)."""
    for check in checks:
        await check.narrow(source)
    wanted = {key for check in checks for key in check.keys}
    known = known or {}
    counts = {k: known[k] if known.get(k) is not None else await source.count(k) for k in source.keys() if k in wanted}
    if counts:
        observer.phase("read", sum(counts.values()), "records")
    for key, count in counts.items():
        takers: list[Any] = [c for c in checks if key in c.keys]
        observer.section(f"read {key}", count)
        read = source.read if any(check.needs_vectors for check in takers) else source.read_meta
        async for batch in read(key, batch_size):
            for check in takers:
                await check.observe(key, batch)
            observer.progress(f"read {key}", len(batch), 0)
    if counts:
        observer.phase_done("read")
    for check in checks:
        await check.finish()
