"""Regenerate examples/sample_workspace/ (and the copy shipped in the package) with LightRAG's own pipeline.

Offline and deterministic: LightRAG 1.5.7's `ainsert` runs with the test suite's fake extraction LLM,
a hash-seeded 16-dimensional embedding and a character tokenizer (tests/interop/lightrag_builder.py).
Run from the repository root:  python examples/build_sample_workspace.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.interop.lightrag_builder import build_workspace  # noqa: E402

MODEL = "demo-hash-embed"
DOCS = {
    "alice.txt": "Alice met Bob in Paris. Alice works at Acme with Carol. Carol leads the Atlas project at Acme.",
    "bob.txt": "Bob founded Zenith in Berlin. Bob and Alice wrote Atlas together. Zenith later bought Acme.",
    "dana.md": "Dana visited Paris and the Louvre. Dana admires Carol. Dana writes for Zenith in Berlin.",
    "eve.txt": "Eve audits Acme. Eve met Dana in Lisbon. Lisbon hosts the Summit where Bob spoke.",
}
TARGETS = (ROOT / "examples" / "sample_workspace", ROOT / "ragstore_cli" / "demo_data" / "sample_workspace")
FILES = ("kv_store_", "vdb_", "graph_")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        built = await build_workspace(Path(tmp), "", docs=DOCS, embedding_model=MODEL)
        for target in TARGETS:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in sorted(built.folder.iterdir()):
                if path.is_file() and path.name.startswith(FILES):
                    shutil.copy2(path, target / path.name)
            (target / "MODEL").write_text(f"{MODEL}\n16\n", encoding="utf-8")
            size = sum(p.stat().st_size for p in target.iterdir())
            print(f"{target.relative_to(ROOT)}: {len(list(target.iterdir()))} files, {size / 1024:.0f} KB")


if __name__ == "__main__":
    asyncio.run(main())
