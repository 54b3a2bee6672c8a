"""The verbs that move a whole workspace, each one `move()` over a plan: export, import, transfer.

- `export_workspace`: a workspace of a profile → a `.ragstore` archive (archive/target.py), a file
  or a stream (stdout: `export -o -`);
- `import_archive`: an archive (verified whole first) → a workspace of a profile; an archive arriving
  on a stream (stdin: `import -`) is first held in a spool file (archive/spool.py);
- `transfer_workspace`: a workspace of one profile → a workspace of another, streaming, no archive
  on disk, with import's guarantees (preflight, dry run, atomic per backend or resumable) and the
  target read back and compared with the source (counts and record ids) before it commits.

Each takes a plan dataclass (the options of its command; the workspace name is checked there, once)
and an optional Observer, and returns a typed report with `to_dict()` for `--json`.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ragstore_cli.archive.source import ArchiveSource
from ragstore_cli.archive.spool import spooled_async
from ragstore_cli.archive.target import ArchiveTarget
from ragstore_cli.backends.registry import describe, needs_lock, parse_profile
from ragstore_cli.config import Settings
from ragstore_cli.engine.move import MovePlan, MoveReport, move
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.engine.preflight import IF_EXISTS
from ragstore_cli.engine.workspaces import WorkspaceSource, WorkspaceTarget, workspace_locks
from ragstore_cli.errors import UsageError
from ragstore_cli.records import DEFAULT_BATCH
from ragstore_cli.workspace import validate_workspace


def _mode(if_exists: str) -> str:
    if if_exists not in IF_EXISTS:
        raise UsageError(f"--if-exists must be one of {', '.join(IF_EXISTS)}, not {if_exists!r}")
    return if_exists


def _name(workspace: str | None) -> str | None:
    return None if workspace is None else validate_workspace(workspace)


# ---------------------------------------------------------------------------------------------- export
@dataclass
class ExportPlan:
    """`ragstore export`: the workspace (None: WORKSPACE) of `profile` (None: LIGHTRAG_*_STORAGE) into
    `output`, a file or a binary stream (written only once the archive is complete)."""

    output: Path | BinaryIO
    workspace: str | None = None
    profile: str | None = None
    vector_dtype: str = "float32"  # or float16
    batch_size: int = DEFAULT_BATCH
    lock_timeout: float | None = None
    allow_empty: bool = False  # write an archive of a workspace with no record (else refused)
    overwrite: bool = False  # replace an existing `output` (else refused before anything is read)
    spool_dir: Path | None = None  # where a stream output is assembled (None: the system's temporary folder)

    def __post_init__(self) -> None:
        self.workspace = _name(self.workspace)


STREAM = "-"  # how an archive on a stream (stdout, stdin) is named in reports and hints


def _is_file(where: Any) -> bool:
    return isinstance(where, (str, os.PathLike))


@dataclass(frozen=True)
class ExportReport:
    output: str
    workspace: str
    profile: str
    counts: dict[str, int]
    bytes: int
    seconds: float
    embedding: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    consistency: dict[str, str] = field(default_factory=dict)  # backend → snapshot | fingerprint | reread

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "output": self.output, "workspace": self.workspace, "profile": self.profile,
                "counts": self.counts, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "embedding": self.embedding, "consistency": self.consistency, "warnings": self.warnings}


async def export_workspace(settings: Settings, plan: ExportPlan, observer: Observer = NOTHING) -> ExportReport:
    """Write the workspace to an archive from one consistent view (engine/workspaces.py says what each
    backend guarantees)."""
    target = ArchiveTarget(plan.output, vector_dtype=plan.vector_dtype, overwrite=plan.overwrite,
                           spool_dir=plan.spool_dir)
    workspace = plan.workspace if plan.workspace is not None else settings.lightrag.workspace
    profile = parse_profile(plan.profile, settings)
    source = WorkspaceSource(settings, profile, workspace, lock_timeout=plan.lock_timeout)
    done = await move(source, target, MovePlan(
        op="export", batch_size=plan.batch_size, allow_empty=plan.allow_empty,
        empty_hint="check the name and --profile; pass --allow-empty to write an empty archive on purpose"), observer)
    manifest = done.result
    to_file = isinstance(plan.output, (str, os.PathLike))
    return ExportReport(output=str(plan.output) if to_file else STREAM, workspace=workspace, profile=describe(profile),
                        counts=manifest.counts(), seconds=done.seconds,
                        bytes=target.output.stat().st_size if isinstance(target.output, Path) else target.written,
                        embedding=manifest.embedding, warnings=done.warnings, consistency=done.consistency)


# ---------------------------------------------------------------------------------------------- import
@dataclass
class ImportPlan:
    """`ragstore import`: `archive` (a file, or a binary stream spooled first) into `workspace` (None:
    the archive's) of `profile`."""

    archive: Path | BinaryIO
    workspace: str | None = None
    profile: str | None = None
    if_exists: str = "fail"  # when the workspace holds records: fail | replace | merge
    dry_run: bool = False  # run every check, write nothing
    resume: bool = False  # finish an interrupted import of this archive
    embedding_model: str | None = None  # relabel the vectors' model (never re-embeds)
    batch_size: int = DEFAULT_BATCH
    lock_timeout: float | None = None
    spool_dir: Path | None = None  # where a stream is held while it is checked (None: the system's temporary folder)

    def __post_init__(self) -> None:
        self.workspace = _name(self.workspace)
        _mode(self.if_exists)


@dataclass(kw_only=True, frozen=True)
class LoadReport:
    """What a load into a workspace did (a dry run: would do)."""

    workspace: str
    profile: str
    mode: str  # the --if-exists it ran with (a resumed load: the interrupted one's)
    dry_run: bool
    resumed: bool
    counts: dict[str, int]  # records written per section
    skipped: list[str]  # sections an interrupted run had committed
    existing_records: int  # what the target held before
    embedding: dict[str, Any]  # the model and dimension the target records
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **{k: getattr(self, k) for k in self.__dataclass_fields__}}


@dataclass(kw_only=True, frozen=True)
class ImportReport(LoadReport):
    archive: str


async def import_archive(settings: Settings, plan: ImportPlan, observer: Observer = NOTHING) -> ImportReport:
    """Verify the archive whole, then load it (engine/move.py says in which order; atomic per backend,
    resumable). A stream is held whole in a spool file first, removed however the import ends; its
    `--resume` takes the same archive sent again (a ledger knows an archive by its manifest's SHA-256)."""
    if isinstance(plan.archive, (str, os.PathLike)):
        path = Path(plan.archive)
        return await _import(settings, plan, ArchiveSource(path), shlex.quote(str(path)), observer)
    received = "receive stdin"
    observer.phase("receive", None, unit="bytes")
    observer.section(received, None, None)
    async with spooled_async(plan.archive, plan.spool_dir, lambda n: observer.progress(received, 0, n)) as path:
        observer.phase_done("receive")
        return await _import(settings, plan, ArchiveSource(path, label="stdin"), STREAM, observer)


async def _import(settings: Settings, plan: ImportPlan, source: ArchiveSource, what: str,
                  observer: Observer) -> ImportReport:
    workspace = plan.workspace if plan.workspace is not None else \
        validate_workspace(source.manifest.source.get("workspace", ""))
    profile = parse_profile(plan.profile, settings)
    target = WorkspaceTarget(settings, profile, workspace, relabel=plan.embedding_model,
                             lock=not plan.dry_run, lock_timeout=plan.lock_timeout)  # a dry run writes no lock file
    done = await move(source, target, MovePlan(
        op="import", mode=plan.if_exists, dry_run=plan.dry_run, resume=plan.resume, batch_size=plan.batch_size,
        resume_hint=_finish("import", what, plan.profile, workspace, resend=not _is_file(plan.archive))), observer)
    return ImportReport(archive=str(plan.archive) if _is_file(plan.archive) else STREAM, workspace=workspace,
                        profile=describe(profile), **_load(done, target))


def _load(done: MoveReport, target: WorkspaceTarget) -> dict[str, Any]:
    """The LoadReport fields of a move into `target`."""
    return dict(mode=done.mode, dry_run=done.dry_run, resumed=done.resumed, counts=done.counts, skipped=done.skipped,
                existing_records=done.existing, embedding={"model": target.model, "dim": target.dim},
                seconds=done.seconds, warnings=done.warnings)


def _finish(verb: str, what: str, profile: str | None, workspace: str, *, resend: bool = False,
            option: str = "--profile") -> str:
    """The command that finishes an interrupted move (`resend`: of an archive that came on a stream);
    `option` names the target profile as the verb spells it (import: --profile, transfer: --to)."""
    to = f" {option} {shlex.quote(profile)}" if profile else ""
    command = f"ragstore {verb} {what}{to} --workspace {shlex.quote(workspace)} --resume"
    if resend:
        return f"finish it by sending the same archive again: … | {command}"
    return f"finish it with: {command}"


# ---------------------------------------------------------------------------------------------- transfer
@dataclass
class TransferPlan:
    """`ragstore transfer`: `workspace` of profile `source` into `target_workspace` (None: the same name)
    of profile `target`, with no archive in between."""

    source: str
    target: str
    workspace: str
    target_workspace: str | None = None
    if_exists: str = "fail"
    dry_run: bool = False
    resume: bool = False
    embedding_model: str | None = None
    batch_size: int = DEFAULT_BATCH
    lock_timeout: float | None = None

    def __post_init__(self) -> None:
        self.workspace = validate_workspace(self.workspace)
        self.target_workspace = _name(self.target_workspace)
        _mode(self.if_exists)


@dataclass(kw_only=True, frozen=True)
class TransferReport(LoadReport):
    """`profile` is the target's; `source` the profile read from."""

    source: str
    target_workspace: str
    verified: dict[str, int]  # records per section read back from the target, ids as in the source
    consistency: dict[str, str]  # source backend → snapshot | fingerprint | reread
    dropped_fields: dict[str, list[str]]  # fields the target could not store, per section


async def transfer_workspace(settings: Settings, plan: TransferPlan, observer: Observer = NOTHING) -> TransferReport:
    """Move a workspace between two profiles directly (see the module docstring)."""
    into = plan.workspace if plan.target_workspace is None else plan.target_workspace
    source_profile, target_profile = parse_profile(plan.source, settings), parse_profile(plan.target, settings)
    if source_profile == target_profile and into == plan.workspace:
        raise UsageError("the source and the target are the same workspace in the same backends",
                         hint="name another --to profile, or another target workspace")
    source = WorkspaceSource(settings, source_profile, plan.workspace, verb="transfer", lock=False,
                             outcome="nothing more was committed")
    target = WorkspaceTarget(settings, target_profile, into, relabel=plan.embedding_model, lock=False)
    locked = [ws for ws, profile in ((plan.workspace, source_profile), (into, target_profile))
              if needs_lock(profile) and not plan.dry_run]
    async with workspace_locks(settings, locked, "transfer", plan.lock_timeout):
        done = await move(source, target, MovePlan(
            op="transfer", mode=plan.if_exists, dry_run=plan.dry_run, resume=plan.resume, batch_size=plan.batch_size,
            allow_empty=False, empty_hint="check the name and --from", verify=True,
            resume_hint=_finish("transfer", f"--from {shlex.quote(plan.source)}", plan.target, plan.workspace, option="--to")
            + (f" --target-workspace {shlex.quote(into)}" if into != plan.workspace else "")), observer)
    return TransferReport(source=describe(source_profile), profile=describe(target_profile), workspace=plan.workspace,
                          target_workspace=into, verified=done.verified, consistency=done.consistency,
                          dropped_fields=done.dropped, **_load(done, target))

