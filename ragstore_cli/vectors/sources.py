"""Where vectors can be read from, behind one interface: NanoVectorDB files and exported `.npy` files.

`open_source(path)` returns a `Source` whose `batches()` yields (ids, vectors, matrix rows or None)
in file order, a batch at a time. An exported `.npy` is read memory-mapped with its ids from the
sibling `<stem>.ids.jsonl` that `vectors export` writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.vectors.nanofile import SKIP_HINT, NanoVectorFile, OnError

Batch = tuple[list[str], np.ndarray, "np.ndarray | None"]


@dataclass
class Source:
    """A readable set of (id, vector) rows."""

    path: Path
    kind: str  # "nanovectordb" | "npy"
    count: int
    dim: int
    nano: NanoVectorFile | None = None
    ids_path: Path | None = None

    def batches(self, batch_size: int = 2000, on_error: OnError = "stop") -> Iterator[Batch]:
        if self.nano is not None:
            for b in self.nano.batches(batch_size, vectors="raw", with_matrix=True, on_error=on_error):
                yield b.ids, b.vectors, b.matrix
            return
        arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        with open(self.ids_path, "rb") as ids_f:  # type: ignore[arg-type]
            for start in range(0, self.count, batch_size):
                stop = min(start + batch_size, self.count)
                ids = [_id_of(ids_f.readline(), self.ids_path, start + k) for k in range(stop - start)]
                yield ids, np.asarray(arr[start:stop], dtype=np.float32), None


def ids_path_for(npy: Path) -> Path:
    """The ids file that goes with an exported matrix: `vectors.npy` -> `vectors.ids.jsonl`."""
    return npy.with_name(npy.stem + ".ids.jsonl")


def open_source(path: str | Path, *, expected_dim: int | None = None) -> Source:
    """Open a NanoVectorDB `.json` or an exported `.npy`; anything else is a usage error."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file")
    if p.suffix == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{p}: not a readable .npy file ({exc})") from None
        if arr.ndim != 2 or arr.dtype.kind != "f":
            raise DataError(f"{p}: expected a 2-d float matrix, got {arr.dtype} {arr.shape}")
        ids = ids_path_for(p)
        if not ids.exists():
            raise UsageError(f"{p}: its ids file {ids.name} is missing (vectors export writes both)")
        if expected_dim is not None and arr.shape[1] != expected_dim:
            raise DataError(f"{p}: dimension {arr.shape[1]}, expected {expected_dim}")
        return Source(p, "npy", int(arr.shape[0]), int(arr.shape[1]), ids_path=ids)
    if p.suffix == ".json":
        nf = NanoVectorFile(p, expected_dim=expected_dim, stop_hint=SKIP_HINT)
        return Source(p, "nanovectordb", nf.count, nf.embedding_dim, nano=nf)
    raise UsageError(f"{p}: expected a NanoVectorDB file (.json) or an exported matrix (.npy)")


def _id_of(line: bytes, where: Path | None, row: int) -> str:
    if not line:
        raise DataError(f"{where}: has fewer lines than the matrix has rows (row {row})")
    try:
        rid = json.loads(line)["id"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{where}: line {row + 1} is not a JSON object with an 'id'") from None
    if not isinstance(rid, str):
        raise DataError(f"{where}: line {row + 1} has a non-string id")
    return rid
