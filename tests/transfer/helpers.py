"""Shared by the transfer tests: comparing two workspaces record by record through ragstore's protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ragstore_cli.records import KV_NAMESPACES, VECTOR_NAMESPACES
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import Settings


async def snapshot_records(settings: Settings, profile: str, workspace: str) -> dict[str, Any]:
    """Every record of the workspace: {section: {id: value}}, vectors as {id: (meta, float32 list)}."""
    out: dict[str, Any] = {}
    async with await open_backends(settings, profile, workspace) as stores:
        for ns in KV_NAMESPACES:
            out[f"kv/{ns}"] = {k: v async for b in stores.kv.read(ns, 50) for k, v in b}
        out["doc_status"] = {k: v async for b in stores.doc_status.read(50) for k, v in b}
        out["graph/nodes"] = {n.id: n.properties async for b in stores.graph.read_nodes(50) for n in b}
        out["graph/edges"] = {tuple(sorted((e.source, e.target))): e.properties
                              async for b in stores.graph.read_edges(50) for e in b}
        for ns in VECTOR_NAMESPACES:
            rows = {}
            async for batch in stores.vectors.read(ns, 50):
                for i, m, v in zip(batch.ids, batch.meta, np.asarray(batch.vectors)):
                    rows[i] = (m, [float(x) for x in v])
            out[f"vectors/{ns}"] = rows
    return out


# JSON KV drops `create_time` on update (docs/lightrag-formats.md); PG keeps a create_time column and fills it.
# Nano's `__write_seq__` is a per-process write token PG has no column for (a new one is issued on write).
PG_REWRITES: dict[str, set[str]] = {**{f"kv/{ns}": {"create_time"} for ns in KV_NAMESPACES},
                                    **{f"vectors/{ns}": {"__write_seq__"} for ns in VECTOR_NAMESPACES}}


def assert_same(a: dict[str, Any], b: dict[str, Any], *, ignore: dict[str, set[str]] | None = None) -> None:
    """Equal sections; `ignore` lists value fields per section that a backend legitimately rewrites."""
    assert set(a) == set(b)
    for key in a:
        left, right = a[key], b[key]
        assert set(left) == set(right), key
        drop = (ignore or {}).get(key, set())
        for rid in left:
            x, y = left[rid], right[rid]
            if drop and isinstance(x, tuple):  # vectors: (meta, values)
                x = ({k: v for k, v in x[0].items() if k not in drop}, x[1])
                y = ({k: v for k, v in y[0].items() if k not in drop}, y[1])
            elif drop and isinstance(x, dict):
                x = {k: v for k, v in x.items() if k not in drop}
                y = {k: v for k, v in y.items() if k not in drop}
            assert x == y, (key, rid, x, y)


@dataclass
class Copied:
    """What a copy through the engine did, per namespace: records written, fields the target lost."""

    copied: dict[str, int]
    dropped_fields: dict[str, list[str]]


def namespace_of(key: str) -> str:
    """`kv/full_docs` → `full_docs`, `vectors/chunks` → `chunks`, `graph/nodes` → `graph_nodes`."""
    return key.replace("/", "_") if key.startswith("graph/") else key.split("/")[-1]


async def copy_between(settings: Settings, source: str, workspace: str, target: str, into: str,
                       batch_size: int = 1000) -> Copied:
    """Every record of `workspace` (profile `source`) into workspace `into` (profile `target`), through
    the engine's direct transfer (checked, read back and compared before it commits)."""
    from ragstore_cli.engine import TransferPlan, transfer_workspace

    report = await transfer_workspace(settings, TransferPlan(source, target, workspace, target_workspace=into,
                                                             batch_size=batch_size))
    return Copied({namespace_of(k): n for k, n in report.counts.items()},
                  {namespace_of(k): v for k, v in report.dropped_fields.items()})
