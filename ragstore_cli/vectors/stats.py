"""`vectors stats`: one streaming pass over a NanoVectorDB file that says what is in it and what is wrong.

Memory is one batch of vectors plus the set of ids (needed to count duplicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragstore_cli.vectors.codecs import normalise
from ragstore_cli.vectors.nanofile import SKIP_HINT, NanoVectorFile, OnError

# A float16 copy differs from the float32 it came from by <= 2**-11 relative per value; after
# normalisation that stays well under this bound, while a row that belongs to another record does not.
AGREEMENT_TOLERANCE = 4e-3
MAX_SAMPLES = 5
MAX_PROBLEMS = 20


@dataclass
class _Running:
    """Accumulators for norms and counts, updated one batch at a time."""

    n: int = 0
    norm_min: float = math.inf
    norm_max: float = 0.0
    norm_sum: float = 0.0
    nan: int = 0
    inf: int = 0
    zero: int = 0

    def add(self, vectors: np.ndarray) -> None:
        if not len(vectors):
            return
        nan = np.isnan(vectors).any(axis=1)
        inf = np.isinf(vectors).any(axis=1) & ~nan
        finite = ~(nan | inf)
        norms = np.linalg.norm(vectors[finite].astype(np.float64), axis=1)
        self.nan += int(nan.sum())
        self.inf += int(inf.sum())
        self.zero += int((norms == 0).sum())
        if norms.size:
            self.norm_min = min(self.norm_min, float(norms.min()))
            self.norm_max = max(self.norm_max, float(norms.max()))
            self.norm_sum += float(norms.sum())
            self.n += int(norms.size)

    def to_dict(self) -> dict[str, Any]:
        norms = ({"min": self.norm_min, "mean": self.norm_sum / self.n, "max": self.norm_max}
                 if self.n else {"min": None, "mean": None, "max": None})
        return {"norms": norms, "nan_vectors": self.nan, "inf_vectors": self.inf, "zero_vectors": self.zero}


@dataclass
class _Samples:
    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, ids: list[str]) -> None:
        self.count += len(ids)
        room = MAX_SAMPLES - len(self.samples)
        if room > 0:
            self.samples.extend(ids[:room])

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "samples": self.samples}


def nano_stats(path: str | Path, *, on_error: OnError = "skip", batch_size: int = 2000,
               expected_dim: int | None = None) -> dict[str, Any]:
    """Counts, norms, anomalies and per-part sizes of one NanoVectorDB file."""
    nf = NanoVectorFile(path, expected_dim=expected_dim, stop_hint=SKIP_HINT)
    raw, matrix = _Running(), _Running()
    seen: set[str] = set()
    dups, disagree, without_vector = _Samples(), _Samples(), _Samples()
    unnormalised = 0
    problems: list[str] = []
    problem_count = 0
    vector_bytes = 0
    aligned = nf.matrix_rows == nf.count
    mode = "raw" if aligned else "none"
    for batch in nf.batches(batch_size, vectors=mode, with_matrix=aligned, on_error=on_error, keep_vector_strings=True):
        problem_count += len(batch.problems)
        problems.extend(str(p) for p in batch.problems[: max(0, MAX_PROBLEMS - len(problems))])
        repeated = []
        for rid in batch.ids:
            if rid in seen:
                repeated.append(rid)
            seen.add(rid)
        dups.add(repeated)
        vector_bytes += sum(len(s) for s in batch.vector_strings if isinstance(s, str))
        if not aligned:
            continue
        has_raw = ~batch.from_matrix
        without_vector.add([i for i, m in zip(batch.ids, batch.from_matrix) if m])
        raw.add(batch.vectors[has_raw])
        rows = batch.matrix
        assert rows is not None
        matrix.add(rows)
        with np.errstate(invalid="ignore"):
            row_norms = np.linalg.norm(rows, axis=1)
            unnormalised += int((np.abs(row_norms - 1.0) > 1e-3).sum())
            expected, _ = normalise(batch.vectors[has_raw])
            diff = np.abs(expected - rows[has_raw]).max(axis=1) if expected.shape[1] else np.zeros(len(expected))
            bad = ~(diff <= AGREEMENT_TOLERANCE)  # NaN on either side counts as disagreement
        raw_ids = [i for i, h in zip(batch.ids, has_raw) if h]
        disagree.add([i for i, b in zip(raw_ids, bad) if b])
    if not aligned:
        problems.insert(0, f"matrix has {nf.matrix_rows} rows but data has {nf.count} records: "
                           "vectors were not read")
    n = max(nf.count, 1)
    data_bytes = nf.parts["data"]
    parts = {
        "metadata": data_bytes - vector_bytes,
        "vector_fields": vector_bytes,
        "matrix": nf.parts["matrix"],
        "other": nf.parts["other"],
    }
    return {
        "path": str(nf.path),
        "format": "nanovectordb",
        "embedding_dim": nf.embedding_dim,
        "count": nf.count,
        "matrix_rows": nf.matrix_rows,
        "dtype": {"vector_fields": "float16 (zlib, base64)", "matrix": "float32 (L2-normalised, base64)"},
        "vectors": raw.to_dict(),
        "matrix": {**matrix.to_dict(), "unnormalised_rows": unnormalised},
        "records_without_vector": without_vector.to_dict(),
        "duplicate_ids": dups.to_dict(),
        "matrix_disagreements": disagree.to_dict(),
        "bad_records": problem_count,
        "problems": problems,
        "file_bytes": nf.size,
        "parts": {k: {"bytes": v, "bytes_per_vector": round(v / n, 1)} for k, v in parts.items()},
        "bytes_per_vector": round(nf.size / n, 1),
        "ok": aligned and not (problem_count or dups.count or disagree.count or raw.nan or raw.inf),
    }


def workspace_files(directory: Path) -> list[Path]:
    """The NanoVectorDB files of one workspace folder, sorted by name."""
    return sorted(p for p in directory.glob("vdb_*.json") if p.is_file())
