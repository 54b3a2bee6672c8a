"""Is a LightRAG process using this working dir? LightRAG 1.5.7 keeps no lock or pid file (its
locks live in process memory or a private Manager socket: docs/lightrag-formats.md), so the honest default
answer is "cannot tell". We look for the evidence an outsider can see on this host: LightRAG
processes of this user whose working dir (environment, command line or cwd) is this one, and
fresh atomic-write temp files. Absence of evidence is never reported as "stopped".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

FRESH_TMP_SECONDS = 120.0


@dataclass
class LightRAGPresence:
    """verdict: "running" (evidence ties a live process to this dir), "possibly-running" (a LightRAG
    process or a fresh temp file with no proof of the dir) or "cannot-tell" (nothing seen)."""

    verdict: str
    working_dir: str
    evidence: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "working_dir": self.working_dir, "evidence": self.evidence,
                "message": self.message}


def _mentions_lightrag(cmdline: list[str]) -> bool:
    """lightrag-server / lightrag-gunicorn / lightrag_server.py / `python -m lightrag.…` (not test files)."""
    for part in cmdline[:4]:
        low = part.lower()
        if os.path.basename(low).startswith("lightrag") or low.startswith("lightrag."):
            return True
    return False


def _uses(proc: psutil.Process, cmdline: list[str], folder: Path) -> bool | None:
    """True/False when the process's working dir is known, None when it cannot be read."""
    candidates: list[str] = []
    for index, part in enumerate(cmdline):
        if part.startswith("--working-dir="):
            candidates.append(part.split("=", 1)[1])
        elif part == "--working-dir" and index + 1 < len(cmdline):
            candidates.append(cmdline[index + 1])
    try:
        env_dir = proc.environ().get("WORKING_DIR")
        cwd = proc.cwd()
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return True if any(Path(c).resolve() == folder for c in candidates if Path(c).is_absolute()) else None
    candidates.append(env_dir or "./rag_storage")
    resolved = {(Path(cwd) / c).resolve() for c in candidates}
    return folder in resolved or any(folder in r.parents or r in folder.parents for r in resolved)


def probe_lightrag(working_dir: Path) -> LightRAGPresence:
    """Look for signs that LightRAG is using `working_dir` on this host (never proof that it is not)."""
    folder = Path(working_dir).resolve()
    evidence: list[str] = []
    verdict = "cannot-tell"
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if not cmdline or not _mentions_lightrag(cmdline):
            continue
        uses = _uses(proc, cmdline, folder)
        shown = " ".join(cmdline)[:120]
        if uses:
            evidence.append(f"pid {proc.info['pid']} ({shown}) uses {folder}")
            verdict = "running"
        elif uses is None:
            evidence.append(f"pid {proc.info['pid']} ({shown}) is a LightRAG process whose working dir cannot be read")
            verdict = "possibly-running" if verdict == "cannot-tell" else verdict
    if folder.is_dir():
        now = time.time()
        for tmp in folder.glob("**/*.tmp.*"):
            try:
                age = now - tmp.stat().st_mtime
            except FileNotFoundError:
                continue
            if age < FRESH_TMP_SECONDS:
                evidence.append(f"fresh atomic-write temp file {tmp.name} ({age:.0f} s old)")
                verdict = "possibly-running" if verdict == "cannot-tell" else verdict
                break
    if verdict == "running":
        message = f"LightRAG appears to be running on {folder}; stop it before writing file storages"
    elif verdict == "possibly-running":
        message = f"LightRAG may be using {folder}; make sure every LightRAG process is stopped"
    else:
        message = ("cannot tell whether LightRAG is using this working dir: LightRAG keeps no lock file, and "
                   "processes of other users or hosts are invisible; make sure it is stopped")
    return LightRAGPresence(verdict, str(folder), evidence, message)
