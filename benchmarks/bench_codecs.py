"""Vector codecs and NanoVectorDB reads, each measured against its incumbent in the same run.

    python -m benchmarks.bench_codecs                 # 100k x 1024, as in shared/baselines.md
    python -m benchmarks.bench_codecs --n 20000       # quicker
    python -m benchmarks.bench_codecs --skip-nano     # codecs only

Codecs: bytes/vector, encode/decode MB/s (MB of float32 input), recall@10 of cosine kNN for sampled
queries (the query itself excluded), on random and realistic (low-rank + noise, normalised) data.
The incumbent is LightRAG 1.5.7's per-record codec, run as NanoVectorDBStorage runs it: one vector
at a time (float16 -> zlib -> base64). NanoVectorDB reads: a fresh subprocess per reader, wall time
and peak RSS (VmHWM) above the interpreter's RSS after imports.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ragstore_cli.vectors.codecs import (CODECS, DEFAULT_CODEC, decode_matrix, decode_records, encode_matrix,
                                         encode_records)


# --------------------------------------------------------------------------- data
def dataset(kind: str, n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.standard_normal((n, dim), dtype=np.float32)
    basis = rng.standard_normal((64, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 10000):  # low rank + noise, normalised (what embedding models produce)
        e = min(s + 10000, n)
        block = rng.standard_normal((e - s, 64), dtype=np.float32) @ basis
        block += 0.5 * rng.standard_normal((e - s, dim), dtype=np.float32) * np.sqrt(64)
        out[s:e] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def knn(data: np.ndarray, picks: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k nearest rows (cosine) to each picked row, the row itself excluded."""
    norms = np.linalg.norm(data, axis=1)
    unit = data / np.where(norms > 0, norms, 1)[:, None]
    sims = unit[picks] @ unit.T
    sims[np.arange(len(picks)), picks] = -np.inf
    return np.argpartition(-sims, k, axis=1)[:, :k]


def recall(original: np.ndarray, decoded: np.ndarray, picks: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Recall@k when the database holds `decoded` and the queries are the original vectors."""
    norms = np.linalg.norm(decoded, axis=1)
    unit = decoded / np.where(norms > 0, norms, 1)[:, None]
    q = original[picks] / np.linalg.norm(original[picks], axis=1, keepdims=True)
    sims = q @ unit.T
    sims[np.arange(len(picks)), picks] = -np.inf
    found = np.argpartition(-sims, k, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist())]) / k)


# --------------------------------------------------------------------------- codecs under test
def lightrag_encode(m: np.ndarray) -> list[str]:
    return [base64.b64encode(zlib.compress(v.astype(np.float16).tobytes())).decode("utf-8") for v in m]


def lightrag_decode(strings: list[str], dim: int) -> np.ndarray:
    return np.array([np.frombuffer(zlib.decompress(base64.b64decode(s)), dtype=np.float16).astype(np.float32)
                     for s in strings])


def candidates(dim: int) -> dict[str, tuple[Callable, Callable, Callable]]:
    """name -> (encode, decode(payload, n), size in bytes of payload)."""
    out = {
        "lightrag per-record (baseline)": (lightrag_encode, lambda p, n: lightrag_decode(p, dim),
                                           lambda p: sum(len(s) for s in p)),
        "ragstore per-record (same bytes)": (encode_records, lambda p, n: decode_records(p, dim)[0],
                                             lambda p: sum(len(s) for s in p)),
        "nano matrix (normalised f32 b64)": (encode_matrix, lambda p, n: decode_matrix(p, dim), len),
    }
    for name, codec in CODECS.items():
        label = name + (" (default)" if name == DEFAULT_CODEC else "")
        out[label] = (codec.encode, lambda p, n, c=codec: c.decode(p, n, dim), len)
    return out


def bench_codecs(n: int, dim: int, repeat: int, queries: int) -> list[dict]:
    """Every codec once per round, rounds repeated: load from other processes hits all codecs alike."""
    rows = []
    for kind in ("random", "realistic"):
        data = dataset(kind, n, dim)
        mb = data.nbytes / 1e6
        picks = np.random.default_rng(1).choice(n, size=min(queries, n - 1), replace=False)
        truth = knn(data, picks, 10)
        times: dict[str, dict[str, list[float]]] = {}
        sizes: dict[str, float] = {}
        recalls: dict[str, float] = {}
        for round_ in range(repeat):
            for name, (enc, dec, size) in candidates(dim).items():
                t0 = time.perf_counter()
                payload = enc(data)
                t1 = time.perf_counter()
                back = dec(payload, n)
                t2 = time.perf_counter()
                times.setdefault(name, {"enc": [], "dec": []})
                times[name]["enc"].append(t1 - t0)
                times[name]["dec"].append(t2 - t1)
                if round_ == 0:
                    sizes[name] = size(payload) / n
                    recalls[name] = recall(data, np.asarray(back), picks, truth)
                del payload, back
        for name in times:
            row = {"data": kind, "codec": name, "bytes_per_vector": sizes[name],
                   "encode_MBps": mb / statistics.median(times[name]["enc"]),
                   "decode_MBps": mb / statistics.median(times[name]["dec"]), "recall@10": recalls[name]}
            rows.append(row)
            print(f"  {kind:9s} {name:34s} {row['bytes_per_vector']:8.0f} B/v  enc {row['encode_MBps']:7.0f}"
                  f"  dec {row['decode_MBps']:7.0f} MB/s  recall@10 {row['recall@10']:.4f}", flush=True)
        del data
    return rows


# --------------------------------------------------------------------------- NanoVectorDB reads
def make_nano_file(path: Path, n: int, dim: int) -> None:
    from ragstore_cli.vectors.nanofile import NanoVectorWriter

    data = dataset("realistic", n, dim, seed=5) * 0.9
    rng = np.random.default_rng(2)
    with NanoVectorWriter(path, dim) as w:
        for s in range(0, n, 5000):
            e = min(s + 5000, n)
            ids = [f"doc-{i // 8:08x}-chunk-{i % 8:03d}" for i in range(s, e)]
            metas = [{"__created_at__": 1735689600, "__write_seq__": 1735689600000000000 + i,
                      "content": "".join(map(chr, rng.integers(97, 123, 300))), "full_doc_id": f"doc-{i // 8:08x}",
                      "file_path": "notes.txt"} for i in range(s, e)]
            w.add_vectors(ids, data[s:e], metas)


CHILD = {
    "nano-vectordb load (LightRAG's path)": "from nano_vectordb import NanoVectorDB\n"
                                            "db = NanoVectorDB({dim}, storage_file={path!r}); n = len(db)",
    "ragstore stream: ids+meta+matrix": "from ragstore_cli.vectors.nanofile import NanoVectorFile\n"
                                        "n = sum(len(b) for b in NanoVectorFile({path!r}).batches(2000, vectors='matrix'))",
    "ragstore stream: + raw vectors": "from ragstore_cli.vectors.nanofile import NanoVectorFile\n"
                                      "n = sum(len(b) for b in NanoVectorFile({path!r}).batches(2000, vectors='raw'))",
}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would inherit this process's peak
CHILD_PRELUDE = ("import time, json, numpy\nimport logging; logging.disable(logging.INFO)\n"
                 "import nano_vectordb, ragstore_cli.vectors.nanofile\n"
                 "hwm = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
                 "base = hwm()\nt0 = time.perf_counter()\n")
CHILD_EPILOGUE = ("\nt = time.perf_counter() - t0\npeak = hwm()\n"
                  "print(json.dumps({{'seconds': t, 'peak_mb': peak / 1024, 'delta_mb': (peak - base) / 1024, 'n': n}}))")


def bench_reads(n: int, dim: int, repeat: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "vdb_chunks.json"
        make_nano_file(path, n, dim)
        size = path.stat().st_size
        print(f"  file: {size / 1e6:.0f} MB ({size / n:.0f} B/vector)", flush=True)
        runs: dict[str, list[dict]] = {name: [] for name in CHILD}
        for _ in range(repeat):  # interleaved rounds, as for the codecs
            for name, body in CHILD.items():
                code = CHILD_PRELUDE + body.format(dim=dim, path=str(path)) + CHILD_EPILOGUE.format()
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for name, got in runs.items():
            best = {k: statistics.median(r[k] for r in got) for k in ("seconds", "peak_mb", "delta_mb")}
            rows.append({"reader": name, **best, "n": got[0]["n"]})
            print(f"  {name:38s} {best['seconds']:6.2f} s  peak RSS {best['peak_mb']:7.0f} MB "
                  f"(+{best['delta_mb']:.0f} MB over imports)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3, help="rounds over every codec / reader (median)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-nano", action="store_true")
    ap.add_argument("--skip-codecs", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    print(f"vectors: {args.n} x {args.dim} float32 ({args.n * args.dim * 4 / 1e6:.0f} MB); numpy {np.__version__}")
    result: dict = {"n": args.n, "dim": args.dim}
    if not args.skip_codecs:
        print("codecs (MB/s of float32 input, single thread):")
        result["codecs"] = bench_codecs(args.n, args.dim, args.repeat, args.queries)
        summarise(result["codecs"])
    if not args.skip_nano:
        print("NanoVectorDB file read (fresh process each):")
        result["reads"] = bench_reads(args.n, args.dim, args.repeat)
        base = result["reads"][0]
        for r in result["reads"][1:]:
            print(f"  {r['reader']}: {base['seconds'] / r['seconds']:.1f}x faster, "
                  f"{r['delta_mb'] / max(base['delta_mb'], 1):.2f}x the memory of nano-vectordb")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def summarise(rows: list[dict]) -> None:
    for kind in ("random", "realistic"):
        by = {r["codec"]: r for r in rows if r["data"] == kind}
        base = by["lightrag per-record (baseline)"]
        default = by[f"{DEFAULT_CODEC} (default)"]
        print(f"  [{kind}] {DEFAULT_CODEC}: {default['encode_MBps'] / base['encode_MBps']:.1f}x faster encode, "
              f"{default['decode_MBps'] / base['decode_MBps']:.1f}x faster decode, "
              f"{default['bytes_per_vector'] / base['bytes_per_vector']:.2f}x the bytes of LightRAG per-record; "
              f"f16 recall {by['f16']['recall@10']:.4f}; int8 recall {by['int8']['recall@10']:.4f}")


if __name__ == "__main__":
    main()
