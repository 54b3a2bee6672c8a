"""Sets of 128-bit record keys in bounded memory: duplicate ids, duplicate edges, edges to missing nodes.

A workspace may hold millions of records, so a Python set of ids is out. Each id becomes a 128-bit
key (two 64-bit SipHash values of Python's `hash`, whose key is random per process: no archive can
be crafted to collide); two distinct ids share a key with probability about 2**-128. A set keeps up
to BUDGET keys (16 MiB) in numpy arrays; past that it spills them to BUCKETS files by their top
byte in a private temporary folder, and each check then loads one bucket at a time: memory about
16 MiB + 16 bytes x records / 256, disk 16 bytes a record (docs/archive-format.md, "Limits").
"""

from __future__ import annotations

import operator
import shutil
import tempfile
from itertools import repeat
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

BUDGET = 1 << 20
BUCKETS = 256
Keys = tuple[np.ndarray, np.ndarray]  # (hi, lo), uint64 arrays of one length


def text_keys(ids: Sequence[str]) -> Keys:
    """The 128-bit keys of `ids` (the same text gives the same key within one process)."""
    n = len(ids)
    hi = np.fromiter(map(hash, ids), dtype=np.int64, count=n).view(np.uint64)
    lo = np.fromiter(map(hash, map(operator.add, ids, repeat("\x00"))), dtype=np.int64, count=n).view(np.uint64)
    return hi, lo


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def pair_keys(a: Keys, b: Keys) -> Keys:
    """Keys of unordered pairs (an undirected edge): pair_keys(a, b) == pair_keys(b, a)."""
    swap = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] > b[1]))
    first = [np.where(swap, b[i], a[i]) for i in (0, 1)]
    second = [np.where(swap, a[i], b[i]) for i in (0, 1)]
    with np.errstate(over="ignore"):
        return (_mix(first[0] ^ _mix(second[0] + np.uint64(0x9E3779B97F4A7C15))),
                _mix(first[1] ^ _mix(second[1] + np.uint64(0xD1B54A32D192ED03))))


def first_duplicate(keys: Keys) -> tuple[int, int] | None:
    """A key that occurs more than once in `keys`, or None."""
    hi, lo = keys
    if len(hi) < 2:
        return None
    order = np.lexsort((lo, hi))
    hs, ls = hi[order], lo[order]
    same = (hs[1:] == hs[:-1]) & (ls[1:] == ls[:-1])
    if not same.any():
        return None
    i = int(np.argmax(same))
    return int(hs[i]), int(ls[i])


def first_missing(sub: Keys, sup: Keys) -> tuple[int, int] | None:
    """A key of `sub` that `sup` does not hold, or None."""
    if not len(sub[0]):
        return None
    if not len(sup[0]):
        return int(sub[0][0]), int(sub[1][0])
    order = np.lexsort((sup[1], sup[0]))
    shi, slo = sup[0][order], sup[1][order]
    at = np.minimum(np.searchsorted(shi, sub[0]), len(shi) - 1)
    found = (shi[at] == sub[0]) & (slo[at] == sub[1])
    for i in np.flatnonzero(~found):  # a 64-bit half shared by several keys of sup: look at all of them
        h, low = sub[0][i], sub[1][i]
        j = int(at[i])
        while j < len(shi) and shi[j] == h and slo[j] != low:
            j += 1
        if j == len(shi) or shi[j] != h:
            return int(h), int(low)
    return None


def contains(keys: Keys, wanted: tuple[int, int]) -> np.ndarray:
    """Mask of the positions of `keys` equal to `wanted`."""
    return (keys[0] == np.uint64(wanted[0])) & (keys[1] == np.uint64(wanted[1]))


class KeySet:
    """A multiset of keys: in memory up to BUDGET, then partitioned on disk by the key's top byte."""

    def __init__(self, unique: bool = True) -> None:
        self.unique = unique  # look for a duplicate while spilling (not for edge ends, which repeat)
        self._parts: list[Keys] = []
        self._held = 0
        self._dir: Path | None = None
        self.duplicate: tuple[int, int] | None = None  # one found early, while spilling

    def add(self, keys: Keys) -> None:
        self._parts.append(keys)
        self._held += len(keys[0])
        if self._held >= BUDGET:
            self._spill()

    def _take(self) -> Keys:
        if not self._parts:
            return np.empty(0, np.uint64), np.empty(0, np.uint64)
        keys = (np.concatenate([p[0] for p in self._parts]), np.concatenate([p[1] for p in self._parts]))
        self._parts, self._held = [], 0
        return keys

    def _spill(self) -> None:
        keys = self._take()
        if self.unique and self.duplicate is None:  # stops a bomb of repeated lines a million lines in
            self.duplicate = first_duplicate(keys)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="ragstore-verify-"))
        bucket = (keys[0] >> np.uint64(56)).astype(np.intp)
        order = np.argsort(bucket, kind="stable")
        ends = np.cumsum(np.bincount(bucket, minlength=BUCKETS))
        pairs = np.column_stack(keys)[order]
        start = 0
        for b, end in enumerate(ends):
            if end > start:
                with open(self._dir / f"{b:03d}", "ab") as fh:
                    pairs[start:end].tofile(fh)
            start = int(end)

    @property
    def spilled(self) -> bool:
        return self._dir is not None

    def buckets(self, partitioned: bool) -> Iterator[Keys]:
        """All keys, one bucket at a time (BUCKETS of them when `partitioned`, else one)."""
        if partitioned:
            self._spill()
            assert self._dir is not None
            for b in range(BUCKETS):
                path = self._dir / f"{b:03d}"
                pairs = np.fromfile(path, dtype=np.uint64).reshape(-1, 2) if path.exists() else np.empty((0, 2), np.uint64)
                yield pairs[:, 0].copy(), pairs[:, 1].copy()
        else:
            keys = self._take()
            self._parts, self._held = [keys], len(keys[0])
            yield keys

    def first_duplicate(self) -> tuple[int, int] | None:
        if self.duplicate is not None:
            return self.duplicate
        for keys in self.buckets(self.spilled):
            found = first_duplicate(keys)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        self._parts, self._held = [], 0
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def first_missing_in(sub: KeySet, sup: KeySet) -> tuple[int, int] | None:
    """A key of `sub` that `sup` does not hold, bucket by bucket."""
    partitioned = sub.spilled or sup.spilled
    for part, whole in zip(sub.buckets(partitioned), sup.buckets(partitioned)):
        found = first_missing(part, whole)
        if found is not None:
            return found
    return None
