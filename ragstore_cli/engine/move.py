"""`move(source, target, plan, observer)`: the one engine behind export, import, transfer and copy.

Order of events (docs/architecture.md): open the source's consistent view and the target → the
preflight (preflight.py; `--dry-run` stops after it) → the load session and the ledger note → the
section loop: per section a writer, the pump, the writer's commit, the note updated (a section of a
session that commits at the end is `uncommitted` until then: `--resume` redoes it) → the source
confirms it held still → (a direct transfer) the target read back and compared → the session's
commit → the note removed.

A target refusing the source's data half-way (a duplicate id, a PostgreSQL data exception) leaves
nothing behind when nothing was committed for good — no staging folder, no note — and no resume
hint (resuming would stop at the same record). Anything else that stops a resumable load (a server
lost, a timeout) keeps the note and says how to finish.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.backends.contract import Origin, Source, Target, Writer
from ragstore_cli.backends.registry import describe
from ragstore_cli.connect import failures, liveness
from ragstore_cli.engine.ledger import Ledger, Note
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.engine.preflight import check_target, resume_state
from ragstore_cli.engine.pump import pump
from ragstore_cli.errors import DataError, OperationFailed, RagstoreError, UsageError
from ragstore_cli.records import DEFAULT_BATCH, Digest


@dataclass
class MovePlan:
    """How one move runs. `op` names it in notes and messages (import, export, transfer, copy)."""

    op: str = "import"
    mode: str = "replace"  # when the target holds records: fail | replace | merge
    dry_run: bool = False
    resume: bool = False
    batch_size: int = DEFAULT_BATCH
    allow_empty: bool = True  # False: refuse a source that holds no record, before anything is written
    empty_hint: str | None = None
    verify: bool = False  # read the target back: each section's count and record ids against the source's
    resume_hint: str = ""  # the command that finishes this move after an interruption


@dataclass
class MoveReport:
    """What a move did (or, for a dry run, would do)."""

    origin: Origin
    mode: str
    dry_run: bool
    resumed: bool
    counts: dict[str, int]  # records written per section (dry run: to be written)
    skipped: list[str]  # sections committed before an interruption, not written again
    existing: int  # records the target held before
    seconds: float
    warnings: list[str] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # fields the target could not store, per section
    consistency: dict[str, str] = field(default_factory=dict)  # source backend → snapshot | fingerprint | reread
    verified: dict[str, int] = field(default_factory=dict)  # records per section found again in the target
    result: Any = None  # what the target's commit returned (an archive: its manifest)


class _Keeper:
    """The running move's ledger note, as a session sees it when it commits (contract.NoteKeeper)."""

    def __init__(self, ledger: Ledger | None, note: Note, observer: Observer) -> None:
        self.ledger, self.note, self.observer = ledger, note, observer
        self.store = ledger.store if ledger is not None else None
        self.state: dict[str, Any] = {"swap": note.swap} if note.swap else {}

    async def save(self) -> None:
        if self.ledger is not None:
            self.note.swap = self.state.get("swap")
            await self.ledger.save(self.note)

    def point(self, name: str) -> None:
        self.observer.point(name)


async def move(source: Source, target: Target, plan: MovePlan, observer: Observer = NOTHING) -> MoveReport:
    """Move one workspace's records from `source` into `target` (see the module docstring)."""
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(source.open(observer))
        origin = await source.origin()
        if not plan.allow_empty and not any(origin.counts.values()):
            raise UsageError(f"workspace {origin.workspace or '(default)'!r} holds no records in {origin.label}: "
                             f"nothing to {plan.op}", hint=plan.empty_hint)
        await stack.enter_async_context(target.open(origin, observer))
        store = target.ledger()
        ledger = Ledger(store, target.workspace) if store is not None else None
        if ledger is not None:
            stack.push_async_callback(ledger.close)
        found = await resume_state(ledger, origin, target, op=plan.op, mode=plan.mode, resume=plan.resume)
        await check_target(source, target, found, resume=plan.resume, batch_size=plan.batch_size, observer=observer,
                           counts=origin.counts)
        keys = [k for k in source.keys() if k not in found.done and not (k == "graph/edges" and "graph/nodes" in found.done)]
        report = MoveReport(origin, found.mode, plan.dry_run, plan.resume, {}, sorted(found.done), found.existing, 0.0,
                            consistency=dict(source.consistency))
        if plan.dry_run:
            report.counts = {k: origin.counts.get(k, 0) for k in keys if target.takes(k)}
        else:
            session = await target.session()
            stack.push_async_callback(session.close)
            note = found.note or Note(plan.op, origin.identity, target.workspace, _profile(target), label=origin.label,
                                      mode=found.mode, done=dict(found.done))
            note.uncommitted = {}  # a resumed move keeps its own list
            keeper = _Keeper(ledger, note, observer)
            if ledger is not None and not plan.resume:
                await keeper.save()
            if plan.resume_hint:
                liveness.set_resume_hint(plan.resume_hint)
            try:
                observer.phase("load", _total(origin.counts, [k for k in keys if target.takes(k)]), "records")
                report.counts, digests, report.dropped = await _load(source, session, keys, keeper, plan, observer, origin)
                observer.phase_done("load")
                await source.confirm()
                if plan.verify:
                    report.verified = await _verify(source, session, report.counts, digests, found, plan, observer)
                observer.phase("commit", None, "")
                report.result = await session.commit(keeper)
                observer.phase_done("commit")
            except Exception as exc:  # noqa: BLE001 - resumable targets word what stopped them; others pass it on
                if ledger is None:
                    raise
                await _stopped(exc, note, ledger, session, plan, origin)
            if ledger is not None:
                await ledger.clear()
    report.warnings = [*origin.warnings, *getattr(target, "warnings", []), *getattr(target, "plan_warnings", [])]
    report.seconds = time.perf_counter() - started
    return report


def _total(counts: dict[str, int], keys: list[str]) -> int | None:
    """Records in `keys`, when the source counted every one of them."""
    return sum(counts[k] for k in keys) if all(counts.get(k) is not None for k in keys) else None


def _profile(target: Target) -> str:
    profile = getattr(target, "profile", None)
    return describe(profile) if isinstance(profile, dict) else ""


async def _load(source: Source, session: Any, keys: list[str], keeper: _Keeper, plan: MovePlan, observer: Observer,
                origin: Origin) -> tuple[dict[str, int], dict[str, Digest], dict[str, list[str]]]:
    """The section loop: what was written per section, the record-id digests of what was written (a
    verified move), and the fields each target writer could not store."""
    note, written, digests, dropped = keeper.note, {}, {}, {}
    nodes: Writer | None = None  # graph nodes and edges commit together: a graph store checks edges against its nodes
    for key in keys:
        rows = origin.counts.get(key)
        writer = await session.writer(key, dim=origin.dims.get(key), rows=rows)
        if writer is None:
            continue
        observer.section(key, rows)
        digest = digests[key] = Digest(ids_only=True) if plan.verify else None
        try:
            count = await pump(key, source.read(key, plan.batch_size), writer, observer, digest)
            if key == "graph/nodes":
                written[key], nodes = count, writer
                continue
            if key == "graph/edges" and nodes is not None and nodes is not writer:
                await nodes.commit()
            await writer.commit()
        except BaseException as exc:
            for open_writer in {id(w): w for w in (writer, nodes) if w is not None}.values():
                with contextlib.suppress(Exception):
                    await open_writer.abort()
            explained = _explained(exc, key)
            if explained is exc:
                raise
            raise explained from None
        observer.point(f"commit:{key}")
        written[key] = count
        fields = sorted(getattr(writer, "dropped", ()) or ())
        if fields:
            dropped[key] = fields
        into = note.done if session.is_durable(key) else note.uncommitted
        into[key] = count
        if key == "graph/edges":
            into["graph/nodes"] = written.get("graph/nodes", 0)
            nodes = None
        await keeper.save()
    return written, digests, dropped


def _explained(exc: BaseException, key: str) -> BaseException:
    """A driver error that ended a section as one line (a lost server names itself)."""
    lost = liveness.server_error(exc)
    if lost is not None:
        return lost
    if isinstance(exc, Exception) and not isinstance(exc, RagstoreError):
        first = (str(exc).splitlines() or [""])[0][:200]
        if str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23"):  # data exception, constraint
            return DataError(f"{key}: the target refused the data ({first})")
        return OperationFailed(f"{key}: the move failed ({type(exc).__name__}: {first})")
    return exc


async def _verify(source: Source, session: Any, counts: dict[str, int], digests: dict[str, Digest], found: Any,
                  plan: MovePlan, observer: Observer) -> dict[str, int]:
    """Read every section back from the target (inside its session, before the commit) and compare its
    count and record ids with the source's; sections a resumed move did not write are read again
    from the source. A merge compares counts only (the target may hold more)."""
    verified: dict[str, int] = {}
    keys = [k for k in source.keys() if k in counts or k in found.done]
    merged = found.mode == "merge"  # the target may hold more than the source: no total
    observer.phase("verify", None if merged else sum(counts.get(k, found.done.get(k, 0)) for k in keys), "records")
    for key in keys:
        want = digests.get(key)
        if want is None:
            want = Digest(ids_only=True)
            async for batch in source.read(key, plan.batch_size):
                want.add(batch)
        got = Digest(ids_only=True)
        observer.section(f"verify {key}", want.count)
        async for ids in session.identities(key, plan.batch_size):
            got.add_identities(ids)
            observer.progress(f"verify {key}", len(ids), 0)
        if got.count < want.count or (found.mode != "merge" and not got.same(want)):
            raise DataError(f"{key}: the target holds {got.count} records after the {plan.op}, the source "
                            f"{want.count}" + ("" if got.count != want.count else ", with other ids"))
        verified[key] = got.count
    observer.phase_done("verify")
    return verified


async def _stopped(exc: Exception, note: Note, ledger: Ledger, session: Any, plan: MovePlan, origin: Origin) -> None:
    """Re-raise what stopped a resumable load, worded: the target refused the data (resuming would stop
    at the same record), or it failed on its own (the note lets --resume finish). The resume hint only
    where resuming can help, a server lost or silent (connect/failures.py); after a deterministic failure
    (a permission, a statement the server refuses) the note still lets --resume finish once it is fixed."""
    if isinstance(exc, (DataError, UsageError)) and _refused(exc):
        kept = sorted(k for k in note.done if session.is_visible(k))
        what = "archive" if origin.kind == "archive" else "source"
        if kept:
            exc.hint = (f"sections {', '.join(kept)} of this {what} are already committed in the target; going on "
                        f"would stop at the same record again: {plan.op} a sound {what} with --if-exists replace")
        else:
            await session.discard()
            await ledger.clear()
            exc.hint = "nothing was written to the target"
        raise exc
    hint = plan.resume_hint if failures.server_gone(exc) else None
    if isinstance(exc, RagstoreError):
        exc.hint = exc.hint or hint
        raise exc
    raise OperationFailed(_stop_line(exc, plan.op), hint=hint) from None


def _refused(exc: BaseException) -> bool:
    """The target refused the source's data (ragstore's own checks, a PostgreSQL data exception or
    constraint, class 22/23), rather than failing on its own (lost connection, shutdown, timeout):
    only then would --resume stop at the same place. A driver error wrapped as DataError keeps its
    cause as __context__."""
    cause: BaseException | None = exc.__context__
    for _ in range(5):
        if cause is None:
            return True
        state = str(getattr(cause, "sqlstate", "") or "")
        if state:
            return state[:2] in ("22", "23")
        if isinstance(cause, (OSError, TimeoutError)) or type(cause).__module__.startswith("asyncpg"):
            return False
        cause = cause.__context__
    return True


def _stop_line(exc: Exception, op: str) -> str:
    """One line for a driver error that ended the load (the CLI shows it with the resume hint)."""
    text = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out: a server did not answer within the command timeout (RAGSTORE_COMMAND_TIMEOUT)"
    if type(exc).__module__.startswith("asyncpg") and "connection" in (type(exc).__name__ + text).lower():
        return f"postgres: the connection was lost ({text})"
    return f"the {op} stopped ({type(exc).__name__}: {text})"
