"""`vectors verify A B`: are two vector sets the same, and if not, how much does the difference matter?

Identical (bit for bit, same ids in the same order) passes outright. Otherwise we report the max
absolute error (raw and after L2 normalisation) and recall@k of cosine kNN: for sampled queries
taken from A, the overlap of the k nearest neighbours found in B with those found in A (the query
itself excluded). Both passes stream; only when the ids come in different orders are both sides
loaded into memory to align them.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ragstore_cli.errors import DataError
from ragstore_cli.vectors.codecs import normalise
from ragstore_cli.vectors.nanofile import OnError
from ragstore_cli.vectors.sources import Batch, Source, open_source


def verify(a_path: str, b_path: str, *, min_recall: float = 0.99, k: int = 10, queries: int = 200,
           exact: bool = False, seed: int = 0, batch_size: int = 2000, on_error: OnError = "stop") -> dict[str, Any]:
    """Compare two vector sets; the returned document has `ok` and the reasons."""
    a, b = open_source(a_path), open_source(b_path)
    report: dict[str, Any] = {"a": str(a.path), "b": str(b.path), "count": a.count, "dim": a.dim, "k": k,
                              "min_recall": min_recall}
    if a.dim != b.dim:
        raise DataError(f"dimensions differ: {a.path} has {a.dim}, {b.path} has {b.dim}")
    cmp = _Compare()
    try:
        for (ids_a, va, ma), (ids_b, vb, mb) in _lockstep(a, b, batch_size, on_error):
            if ids_a != ids_b:
                raise _OutOfOrder()
            cmp.add(va, vb, ma, mb)
        report["aligned"] = "streamed in file order"
        loader = lambda: (_lockstep(a, b, batch_size, on_error))  # noqa: E731
    except _OutOfOrder:
        va, vb, missing = _aligned_in_memory(a, b, batch_size, on_error)
        report["aligned"] = "by id, in memory (ids in different orders)"
        report.update(missing)
        if missing["only_in_a"]["count"] or missing["only_in_b"]["count"]:
            report.update(ok=False, identical=False, reason="the two sides hold different ids")
            return report
        cmp = _Compare()
        cmp.add(va, vb, None, None)
        loader = lambda: iter([(([], va, None), ([], vb, None))])  # noqa: E731
    report.update(cmp.to_dict())
    if report["identical"]:
        report.update(ok=True, recall=1.0, reason="identical")
        return report
    if exact:
        report.update(ok=False, reason="vectors differ and --exact was given")
        return report
    report["recall"] = _recall(loader, a.count, a.dim, k, queries, seed)
    report["queries"] = min(queries, a.count)
    report["ok"] = report["recall"] >= min_recall
    report["reason"] = (f"recall@{k} {report['recall']:.4f} "
                        f"{'>=' if report['ok'] else '<'} --min-recall {min_recall}")
    return report


class _OutOfOrder(Exception):
    pass


class _Compare:
    """Running equality / error figures over aligned batches."""

    def __init__(self) -> None:
        self.identical, self.matrix_identical = True, True
        self.max_abs, self.max_abs_normalised = 0.0, 0.0
        self.min_cosine = 1.0
        self.n = 0

    def add(self, va: np.ndarray, vb: np.ndarray, ma: np.ndarray | None, mb: np.ndarray | None) -> None:
        self.n += len(va)
        if not len(va):
            return
        self.identical &= bool(np.array_equal(va.view(np.uint32), vb.view(np.uint32)))
        if ma is not None and mb is not None:
            self.matrix_identical &= bool(np.array_equal(ma.view(np.uint32), mb.view(np.uint32)))
        else:
            self.matrix_identical = False
        with np.errstate(invalid="ignore", over="ignore"):
            self.max_abs = max(self.max_abs, float(np.nanmax(np.abs(va - vb))))
            na, nb = normalise(va)[0], normalise(vb)[0]
            self.max_abs_normalised = max(self.max_abs_normalised, float(np.nanmax(np.abs(na - nb))))
            self.min_cosine = min(self.min_cosine, float(np.nanmin((na * nb).sum(axis=1))))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identical": self.identical, "max_abs_error": self.max_abs,
                               "max_abs_error_normalised": self.max_abs_normalised, "min_cosine": self.min_cosine}
        if self.n and self.matrix_identical:
            out["matrix_identical"] = True  # both NanoVectorDB files: what LightRAG queries is unchanged
        return out


def _lockstep(a: Source, b: Source, batch_size: int, on_error: OnError) -> Iterator[tuple[Batch, Batch]]:
    if a.count != b.count:
        raise _OutOfOrder()
    ia, ib = a.batches(batch_size, on_error), b.batches(batch_size, on_error)
    for ba in ia:
        bb = next(ib, None)
        if bb is None or len(ba[0]) != len(bb[0]):
            raise _OutOfOrder()
        yield ba, bb
    if next(ib, None) is not None:
        raise _OutOfOrder()


def _aligned_in_memory(a: Source, b: Source, batch_size: int,
                       on_error: OnError) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    def load(src: Source) -> tuple[list[str], np.ndarray]:
        ids: list[str] = []
        parts = []
        for bids, vecs, _ in src.batches(batch_size, on_error):
            ids += bids
            parts.append(vecs)
        return ids, (np.concatenate(parts) if parts else np.zeros((0, src.dim), np.float32))

    ids_a, va = load(a)
    ids_b, vb = load(b)
    pos_b = {rid: i for i, rid in enumerate(ids_b)}
    only_a = [rid for rid in ids_a if rid not in pos_b]
    set_a = set(ids_a)
    only_b = [rid for rid in ids_b if rid not in set_a]
    missing = {"only_in_a": {"count": len(only_a), "samples": only_a[:5]},
               "only_in_b": {"count": len(only_b), "samples": only_b[:5]}}
    if only_a or only_b:
        return va, vb, missing
    order = np.fromiter((pos_b[rid] for rid in ids_a), dtype=np.int64, count=len(ids_a))
    return va, vb[order], missing


def _recall(loader: Any, n: int, dim: int, k: int, queries: int, seed: int) -> float:
    """Mean overlap of the k nearest neighbours (cosine, query itself excluded) in B vs in A."""
    if n <= 1:
        return 1.0
    k = min(k, n - 1)
    picks = np.sort(np.random.default_rng(seed).choice(n, size=min(queries, n), replace=False))
    q = np.zeros((len(picks), dim), dtype=np.float32)
    offset = 0
    for (_, va, _), _ in loader():  # pass 1: fetch the query vectors from A
        inside = picks[(picks >= offset) & (picks < offset + len(va))]
        q[np.searchsorted(picks, inside)] = va[inside - offset]
        offset += len(va)
    qn = np.nan_to_num(normalise(q)[0])
    best = {side: (np.full((len(picks), k), -np.inf, np.float32), np.zeros((len(picks), k), np.int64))
            for side in "ab"}
    offset = 0
    for (_, va, _), (_, vb, _) in loader():  # pass 2: running top-k in both
        for side, vecs in (("a", va), ("b", vb)):
            sims = np.nan_to_num(normalise(vecs)[0], nan=0.0) @ qn.T  # (batch, queries)
            self_rows = picks - offset
            hit = (self_rows >= 0) & (self_rows < len(vecs))
            sims[self_rows[hit], np.flatnonzero(hit)] = -np.inf
            scores, idx = best[side]
            cand_s = np.concatenate([scores, sims.T], axis=1)
            cand_i = np.concatenate([idx, np.arange(offset, offset + len(vecs))[None, :].repeat(len(picks), 0)], axis=1)
            top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
            best[side] = (np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_i, top, 1))
        offset += len(va)
    ia, ib = best["a"][1], best["b"][1]
    overlap = [len(set(x.tolist()) & set(y.tolist())) for x, y in zip(ia, ib)]
    return float(np.mean(overlap) / k)
