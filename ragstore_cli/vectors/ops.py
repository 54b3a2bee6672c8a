"""Rewrites of NanoVectorDB files that LightRAG still loads, and export to numpy.

`compact` drops the per-record `vector` copy (the file's float16 duplicate of every embedding) and
keeps the float32 `matrix` LightRAG queries; the raw norms go into `additional_data`, which
nano-vectordb carries through its own saves, so `expand` can put the per-record vectors back with
their magnitude. Trade-off, LightRAG 1.5.7: `get_vectors_by_ids` skips records without `vector`,
which only the chunk picker with KG_CHUNK_PICK_METHOD=VECTOR (the default) uses: it falls back to
WEIGHT, so the CLI compacts `vdb_chunks.json` only when asked explicitly.
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path
from typing import Any

import numpy as np

from ragstore_cli.atomic import AtomicFile
from ragstore_cli.errors import UsageError
from ragstore_cli.vectors.codecs import encode_records
from ragstore_cli.vectors.nanofile import SKIP_HINT, NanoVectorFile, NanoVectorWriter, OnError
from ragstore_cli.vectors.sources import ids_path_for

STASH_KEY = "ragstore_vector_norms"
NANO_CODECS = {"compact": "drop the per-record float16 `vector` copies; keep the float32 matrix LightRAG queries"}


def compact_nano(src: str | Path, dst: str | Path | None = None, *, on_error: OnError = "stop",
                 batch_size: int = 2000) -> dict[str, Any]:
    """Rewrite without per-record `vector` fields, atomically (in place unless `dst`)."""
    nf, target, extra = _rewrite(src, dst)
    stash_ok = extra is None or isinstance(extra, dict)
    kept_ids: list[str] = []
    kept_norms: list[np.ndarray] = []
    skipped = 0
    problems: list[str] = []
    with NanoVectorWriter(target, nf.embedding_dim) as w:
        for batch in nf.batches(batch_size, vectors="raw", with_matrix=True, on_error=on_error):
            skipped += len(batch.problems)
            problems += [str(p) for p in batch.problems[:5]]
            known = ~batch.from_matrix
            kept_ids += [rid for rid, k in zip(batch.ids, known) if k]
            kept_norms.append(np.linalg.norm(batch.vectors[known], axis=1).astype("<f4"))
            w.add(batch.ids, batch.matrix, batch.meta, None)  # type: ignore[arg-type]
        if stash_ok:
            # keyed by id, so that records LightRAG adds, replaces or deletes later do not shift them
            norms = np.concatenate(kept_norms) if kept_norms else np.zeros(0, "<f4")
            previous = _stash(extra)
            previous.update(zip(kept_ids, norms.tolist()))
            w.additional_data = {**(extra or {}), STASH_KEY: _pack(previous)}
        else:
            w.additional_data = extra
        written = w.count
    return {"source": str(nf.path), "target": str(target), "codec": "compact", "records": written,
            "vector_fields_dropped": len(kept_ids), "skipped_records": skipped, "problems": problems,
            "norms_kept": stash_ok, "bytes_before": nf.size, "bytes_after": target.stat().st_size}


def expand_nano(src: str | Path, dst: str | Path | None = None, *, on_error: OnError = "stop",
                batch_size: int = 2000) -> dict[str, Any]:
    """Give every record a LightRAG `vector` again (matrix row times the norm kept by `compact_nano`)."""
    nf, target, extra = _rewrite(src, dst)
    norms = _stash(extra)
    rest = {k: v for k, v in extra.items() if k != STASH_KEY} if isinstance(extra, dict) else extra
    added = unit = skipped = 0
    with NanoVectorWriter(target, nf.embedding_dim, additional_data=None if rest == {} else rest) as w:
        for batch in nf.batches(batch_size, vectors="none", with_matrix=True, on_error=on_error,
                                keep_vector_strings=True):
            skipped += len(batch.problems)
            strings = list(batch.vector_strings)
            missing = [i for i, s in enumerate(strings) if s is None]
            if missing:
                scale = np.array([norms.get(batch.ids[i], np.nan) for i in missing], dtype=np.float32)
                unit += int((~np.isfinite(scale)).sum())
                rows = batch.matrix[missing] * np.where(np.isfinite(scale), scale, 1.0)[:, None]  # type: ignore[index]
                for i, enc in zip(missing, encode_records(rows)):
                    strings[i] = enc
                added += len(missing)
            w.add(batch.ids, batch.matrix, batch.meta, strings)  # type: ignore[arg-type]
    return {"source": str(nf.path), "target": str(target), "codec": "none", "records": w.count,
            "vector_fields_added": added, "unit_length": unit, "norms_restored": added - unit,
            "skipped_records": skipped, "bytes_before": nf.size, "bytes_after": target.stat().st_size}


def _rewrite(src: str | Path, dst: str | Path | None) -> tuple[NanoVectorFile, Path, Any]:
    """The file to rewrite (its rows paired with its records), where the result goes, its additional_data."""
    nf = NanoVectorFile(src, stop_hint=SKIP_HINT)
    nf.check_alignment()
    return nf, Path(dst) if dst else nf.path, nf.additional_data


def _pack(norms: dict[str, float]) -> dict[str, Any]:
    values = np.asarray(list(norms.values()), dtype="<f4")
    return {"version": 1, "ids": list(norms), "norms": binascii.b2a_base64(values.tobytes(), newline=False).decode()}


def _stash(extra: Any) -> dict[str, float]:
    """id -> raw norm from an earlier compaction; {} when absent or unusable."""
    stash = extra.get(STASH_KEY) if isinstance(extra, dict) else None
    if not isinstance(stash, dict) or not isinstance(stash.get("ids"), list):
        return {}
    try:
        values = np.frombuffer(binascii.a2b_base64(stash["norms"], strict_mode=True), dtype="<f4")
    except (KeyError, TypeError, binascii.Error, ValueError):
        return {}
    if len(values) != len(stash["ids"]):
        return {}
    return dict(zip(stash["ids"], values.tolist()))


# --------------------------------------------------------------------------- export
class NpyWriter:
    """Streams rows into a `.npy` whose header is fixed up at the end (an AtomicFile: seekable, published whole)."""

    def __init__(self, path: Path, dim: int, dtype: str, rows_hint: int) -> None:
        self.path, self.dim, self.dtype = path, dim, np.dtype(dtype).newbyteorder("<")
        self.out = AtomicFile(path)
        self.header_len = len(self._header(max(rows_hint, 1) * 10))  # room for any smaller count
        self.out.write(b"\0" * self.header_len)
        self.rows = 0

    def _header(self, rows: int, length: int | None = None) -> bytes:
        text = repr({"descr": self.dtype.str, "fortran_order": False, "shape": (rows, self.dim)})
        body_len = (length or (10 + len(text) + 1 + 63) // 64 * 64) - 10
        text = text.ljust(body_len - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")

    def write(self, rows: np.ndarray) -> None:
        self.out.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def commit(self) -> None:
        self.out.file.seek(0)
        self.out.write(self._header(self.rows, self.header_len))
        self.out.commit()

    def abort(self) -> None:
        self.out.abort()


def export_nano(src: str | Path, out: str | Path, *, source: str = "raw", dtype: str = "float32",
                with_meta: bool = True, on_error: OnError = "stop", batch_size: int = 2000) -> dict[str, Any]:
    """Write `out` (.npy, rows in file order) and `<stem>.ids.jsonl` (`{"id", "row", meta...}` per row)."""
    out = Path(out)
    if out.suffix != ".npy":
        raise UsageError(f"{out}: the output must end in .npy")
    if source not in ("raw", "matrix"):
        raise UsageError("--source must be raw or matrix")
    nf = NanoVectorFile(src, stop_hint=SKIP_HINT)
    ids_out = ids_path_for(out)
    npy = NpyWriter(out, nf.embedding_dim, dtype, nf.count)
    from_matrix = skipped = non_finite = 0
    problems: list[str] = []
    try:
        with AtomicFile(ids_out) as ids_f:
            for batch in nf.batches(batch_size, vectors=source, on_error=on_error):  # type: ignore[arg-type]
                skipped += len(batch.problems)
                problems += [str(p) for p in batch.problems[:5]]
                from_matrix += int(batch.from_matrix.sum()) if source == "raw" else len(batch)
                lines = []
                for k, (rid, meta) in enumerate(zip(batch.ids, batch.meta)):
                    doc = {"id": rid, "row": npy.rows + k, **(meta if with_meta else {})}
                    lines.append(json.dumps(doc, ensure_ascii=False))
                ids_f.write(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass") if lines else b"")
                bad = ~np.isfinite(batch.vectors).all(axis=1)
                non_finite += int(bad.sum())
                problems += [f"{rid}: vector holds NaN or Inf" for rid in np.asarray(batch.ids)[bad][:5].tolist()]
                npy.write(batch.vectors)
            npy.commit()  # the matrix first: an ids file never stands beside a matrix it does not describe
    except BaseException:
        npy.abort()
        raise
    return {"source": str(nf.path), "npy": str(out), "ids": str(ids_out), "rows": npy.rows, "dim": nf.embedding_dim,
            "dtype": np.dtype(dtype).name, "vectors": source, "rows_from_matrix": from_matrix,
            "non_finite_rows": non_finite, "skipped_records": skipped, "problems": problems[:20]}


def check_dtype(dtype: str) -> str:
    if dtype not in ("float32", "float16"):
        raise UsageError(f"--dtype must be float32 or float16, not {dtype!r}")
    return dtype
