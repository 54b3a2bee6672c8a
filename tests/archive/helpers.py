"""Build small archives for tests, and rewrite them member by member to make bad ones."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zstandard

from ragstore_cli.archive import ArchiveWriter
from ragstore_cli.records import GraphEdge, GraphNode, VectorBatch

DIM = 16


def sample_records(n_docs: int = 30, n_vectors: int = 50, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    docs = [(f"doc-{i:04d}", {"content": f"document {i} é ✓ \udc80" if i == 3 else f"document {i}", "n": i})
            for i in range(n_docs)]
    status = [(f"doc-{i:04d}", {"status": "processed", "chunks_list": [f"doc-{i:04d}-chunk-000"]}) for i in range(n_docs)]
    nodes = [GraphNode(f"E{i}", {"entity_id": f"E{i}", "weight": i / 3}) for i in range(10)]
    edges = [GraphEdge(f"E{i}", f"E{i + 1}", {"weight": 1.5, "keywords": "a,b"}) for i in range(9)]
    vectors = VectorBatch([f"chunk-{i:05d}" for i in range(n_vectors)],
                          rng.standard_normal((n_vectors, DIM)).astype(np.float32),
                          [{"content": f"c{i}", "__created_at__": 1700000000 + i} for i in range(n_vectors)])
    return {"full_docs": docs, "doc_status": status, "nodes": nodes, "edges": edges, "chunks": vectors}


def write_sample(path: Path, records: dict[str, Any] | None = None, *, dtype: str = "float32",
                 batch: int = 7) -> dict[str, Any]:
    """Write the sample records in small batches (many batches, several vector parts possible)."""
    records = records or sample_records()
    w = ArchiveWriter(path, workspace="ws1", backends={"kv": "JsonKVStorage", "vector": "NanoVectorDBStorage"},
                      embedding_model="fake-embed", embedding_dim=DIM, vector_dtype=dtype)
    with w.kv("full_docs") as s:
        for i in range(0, len(records["full_docs"]), batch):
            s.write(records["full_docs"][i:i + batch])
    with w.doc_status() as s:
        s.write(records["doc_status"])
    with w.graph_nodes() as s:
        s.write(records["nodes"])
    with w.graph_edges() as s:
        s.write(records["edges"])
    vb: VectorBatch = records["chunks"]
    with w.vectors("chunks") as s:
        for i in range(0, len(vb), batch):
            s.write(VectorBatch(vb.ids[i:i + batch], vb.vectors[i:i + batch], vb.meta[i:i + batch]))
    w.vectors("entities").close()
    w.not_carried("vectors/entities", ["entity_type", "description"])
    w.finish()
    return records


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:") as tar:
        return [(info, tar.extractfile(info).read()) for info in tar.getmembers()]  # type: ignore[union-attr]


def rewrite(src: Path, dst: Path, *, raw: Callable[[str, bytes], bytes | None] | None = None,
            manifest: Callable[[dict], None] | None = None, fix_checksums: bool = True,
            extra: list[tarfile.TarInfo] | None = None) -> None:
    """Copy an archive, editing decompressed member contents and/or the manifest, resealing checksums."""
    items = members(src)
    doc = json.loads(items[0][1])
    by_path = {m["path"]: m for m in doc["members"]}
    out: list[tuple[tarfile.TarInfo, bytes]] = []
    for info, data in items[2:]:
        if raw is not None:
            plain = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            new = raw(info.name, plain)
            if new is not None:
                data = zstandard.ZstdCompressor().compress(new)
                if fix_checksums:
                    m = by_path[info.name]
                    m["size"], m["raw_size"], m["sha256"] = len(data), len(new), hashlib.sha256(data).hexdigest()
        out.append((info, data))
    if manifest is not None:
        manifest(doc)
    mbytes = json.dumps(doc).encode()
    sha = (hashlib.sha256(mbytes).hexdigest() + "  manifest.json\n").encode()
    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", mbytes), ("manifest.json.sha256", sha)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in out:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
