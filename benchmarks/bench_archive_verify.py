"""`archive verify` throughput against plain zstd decompression + line splitting of the same members.

    python benchmarks/bench_archive_verify.py [--records 200000] [--repeat 5] [--keep DIR]

Builds a synthetic archive shaped like a LightRAG workspace's text (a `text_chunks` KV namespace of
~1.5 KB records; plus graph nodes and edges, whose ids verify checks across records) and times, in
alternation so the machine's load hits both alike:
- baseline: read the tar stream, zstd-decompress every member and split it into lines (no parsing,
  no checksum): the least any reader of this format does;
- ragstore: `ArchiveReader.verify()` in this process (every check `archive verify` and `import`'s
  verify pass make).
Prints medians in MB/s of decompressed and of stored bytes and the ratios, by wall clock and by
CPU time (this process's; steadier than the wall clock on a shared machine). It uses only APIs that
existed before issue 15, so the same script measures an older checkout:
`PYTHONPATH=<checkout> python benchmarks/bench_archive_verify.py` from outside this folder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import tarfile
import tempfile
import time
from pathlib import Path


def build(path: Path, records: int) -> None:
    from ragstore_cli.archive import ArchiveWriter
    from ragstore_cli.records import GraphEdge, GraphNode

    rng = random.Random(1)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    w = ArchiveWriter(path, workspace="bench")
    with w.kv("text_chunks") as section:
        for start in range(0, records, 1000):
            section.write([(f"chunk-{rng.getrandbits(128):032x}", {
                "content": " ".join(rng.choices(words, k=200)), "tokens": 256, "chunk_order_index": i % 50,
                "full_doc_id": f"doc-{i // 50:08d}", "file_path": "docs/file.txt", "llm_cache_list": [],
                "create_time": 1700000000 + i, "update_time": 1700000000 + i})
                for i in range(start, min(records, start + 1000))])
    nodes = max(1, records // 5)
    with w.graph_nodes() as section:
        for start in range(0, nodes, 1000):
            section.write([GraphNode(f"entity {i}", {"entity_id": f"entity {i}", "entity_type": "concept",
                                                     "description": " ".join(rng.choices(words, k=30)),
                                                     "source_id": f"chunk-{i}", "file_path": "docs/file.txt"})
                           for i in range(start, min(nodes, start + 1000))])
    with w.graph_edges() as section:
        for start in range(0, nodes, 1000):
            section.write([GraphEdge(f"entity {i}", f"entity {(i * 7 + 1) % nodes}", {
                "weight": 1.0 + i % 5, "description": " ".join(rng.choices(words, k=20)), "keywords": "a,b",
                "source_id": f"chunk-{i}"}) for i in range(start, min(nodes, start + 1000))])
    w.finish()


def baseline(path: Path) -> None:
    """Decompress every member and split it into lines: nothing checked."""
    import zstandard

    with tarfile.open(path, mode="r|", bufsize=1 << 16) as tar:
        for info in tar:
            if not info.name.endswith(".zst"):
                continue
            src = tar.extractfile(info)
            reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
            rest = b""
            while data := reader.read(1 << 20):
                lines = (rest + data).split(b"\n")
                rest = lines.pop()


def ragstore(path: Path) -> None:
    from ragstore_cli.archive import ArchiveReader

    ArchiveReader(path).verify()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="text_chunks records (nodes, edges: a fifth)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the archive in (and reuse it from) this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-verify-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"verify-{args.records}.ragstore"
    if not path.exists():
        build(path, args.records)
    from ragstore_cli.archive import ArchiveReader

    manifest = ArchiveReader(path).manifest
    raw = sum(m.raw_size for m in manifest.members) / 1e6
    stored = sum(m.size for m in manifest.members) / 1e6
    times: dict[str, list[float]] = {"baseline": [], "ragstore": []}
    cpu: dict[str, list[float]] = {"baseline": [], "ragstore": []}
    for _ in range(args.repeat):
        for name, run in (("baseline", baseline), ("ragstore", ragstore)):
            started, started_cpu = time.perf_counter(), time.process_time()
            run(path)
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    print(f"archive: {path} ({raw:.0f} MB decompressed, {stored:.0f} MB stored, "
          f"{sum(s.records for s in manifest.sections):,} records)")
    for name, runs in times.items():
        median, median_cpu = statistics.median(runs), statistics.median(cpu[name])
        print(f"{name:9s} median {median:6.2f} s  {raw / median:6.0f} MB/s decompressed  "
              f"{stored / median:5.0f} MB/s stored  (runs: {', '.join(f'{t:.2f}' for t in runs)}); "
              f"CPU {median_cpu:.2f} s: {raw / median_cpu:.0f} MB/s decompressed per CPU second")
    ratio = statistics.median(times["baseline"]) / statistics.median(times["ragstore"])
    ratio_cpu = statistics.median(cpu["baseline"]) / statistics.median(cpu["ragstore"])
    print(f"ragstore verify / baseline throughput: {ratio:.2f}x wall clock, {ratio_cpu:.2f}x CPU time")


if __name__ == "__main__":
    main()
