"""The verbs that move a whole workspace: export, import_archive, transfer (`ragstore export|import|transfer`).

Each builds the engine's plan from keyword arguments (the workspace name is checked there, once),
runs it (engine/verbs.py) and returns its typed report; `report.to_dict()` is what `--json` prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Literal

from ragstore_cli.api.calling import resolved
from ragstore_cli.config import Settings
from ragstore_cli.engine import (ExportPlan, ExportReport, ImportPlan, ImportReport, TransferPlan, TransferReport,
                                 export_workspace, import_archive as import_into_workspace, transfer_workspace)
from ragstore_cli.engine.observer import NOTHING, Observer
from ragstore_cli.records import DEFAULT_BATCH

IfExists = Literal["fail", "replace", "merge"]


def _path_or_stream(where: str | os.PathLike[str] | BinaryIO) -> Path | BinaryIO:
    return Path(where) if isinstance(where, (str, os.PathLike)) else where


async def export(output: str | Path | BinaryIO, *, workspace: str | None = None, profile: str | None = None,
                 vector_dtype: Literal["float32", "float16"] = "float32", batch_size: int = DEFAULT_BATCH,
                 lock_timeout: float | None = None, allow_empty: bool = False, overwrite: bool = False,
                 spool_dir: str | Path | None = None, observer: Observer = NOTHING,
                 settings: Settings | None = None) -> ExportReport:
    """Write `workspace` (None: WORKSPACE) of `profile` (None: LIGHTRAG_*_STORAGE) into the archive
    `output`, from one consistent view; an existing `output` is refused unless `overwrite`. `output`
    may be a binary stream (a pipe): the archive is assembled in `spool_dir` and written to it whole."""
    plan = ExportPlan(_path_or_stream(output), workspace=workspace, profile=profile, vector_dtype=vector_dtype,
                      batch_size=batch_size, lock_timeout=lock_timeout, allow_empty=allow_empty, overwrite=overwrite,
                      spool_dir=None if spool_dir is None else Path(spool_dir))
    return await export_workspace(resolved(settings), plan, observer)


async def import_archive(archive: str | Path | BinaryIO, *, workspace: str | None = None,
                         profile: str | None = None, if_exists: IfExists = "fail", dry_run: bool = False,
                         resume: bool = False, embedding_model: str | None = None, batch_size: int = DEFAULT_BATCH,
                         lock_timeout: float | None = None, spool_dir: str | Path | None = None,
                         observer: Observer = NOTHING, settings: Settings | None = None) -> ImportReport:
    """Verify `archive` whole, then load it into `workspace` (None: the archive's) of `profile`:
    atomic per backend or resumable (`resume=True` finishes an interrupted import of the same archive).
    `archive` may be a binary stream (stdin): it is held in a private file in `spool_dir` first."""
    plan = ImportPlan(_path_or_stream(archive), workspace=workspace, profile=profile, if_exists=if_exists,
                      dry_run=dry_run, resume=resume, embedding_model=embedding_model, batch_size=batch_size,
                      lock_timeout=lock_timeout, spool_dir=None if spool_dir is None else Path(spool_dir))
    return await import_into_workspace(resolved(settings), plan, observer)


async def transfer(*, source: str, target: str, workspace: str, target_workspace: str | None = None,
                   if_exists: IfExists = "fail", dry_run: bool = False, resume: bool = False,
                   embedding_model: str | None = None, batch_size: int = DEFAULT_BATCH,
                   lock_timeout: float | None = None, observer: Observer = NOTHING,
                   settings: Settings | None = None) -> TransferReport:
    """Move `workspace` from profile `source` to profile `target` (as `target_workspace`, default the same
    name), streaming, no archive on disk; the target is read back and compared before it commits."""
    plan = TransferPlan(source, target, workspace, target_workspace=target_workspace, if_exists=if_exists,
                        dry_run=dry_run, resume=resume, embedding_model=embedding_model, batch_size=batch_size,
                        lock_timeout=lock_timeout)
    return await transfer_workspace(resolved(settings), plan, observer)
