"""files → files through ragstore's streaming protocol, checked with LightRAG 1.5.7's own classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragstore_cli.config import load_settings
from tests.transfer.helpers import copy_between
from tests.interop.lightrag_builder import KV_NS, VECTOR_NS, build_workspace, read_with_lightrag


def file_ids(folder) -> dict[str, list[str]]:
    """Every id of every namespace, read independently with json.load."""
    ids = {}
    for ns in (*KV_NS, "doc_status"):
        ids[ns] = list(json.loads((folder / f"kv_store_{ns}.json").read_text(encoding="utf-8")))
    for ns in VECTOR_NS:
        ids[ns] = [r["__id__"] for r in json.loads((folder / f"vdb_{ns}.json").read_text(encoding="utf-8"))["data"]]
    return ids


@pytest.fixture(scope="module")
async def built(tmp_path_factory):
    return await build_workspace(tmp_path_factory.mktemp("rag"), "src")


async def test_copy_files_to_files_reads_back_equal_with_lightrag(built):
    settings = load_settings(environ={"WORKING_DIR": str(built.working_dir)})
    report = await copy_between(settings, "files", "src", "files", "dst", batch_size=2)
    ids = file_ids(built.folder)
    assert all(len(v) > 0 for v in ids.values())
    for ns, values in ids.items():
        assert report.copied[ns] == len(values), ns
    # JSON KV and doc status: byte-identical to what LightRAG wrote
    for ns in (*KV_NS, "doc_status"):
        name = f"kv_store_{ns}.json"
        assert (built.working_dir / "dst" / name).read_bytes() == (built.folder / name).read_bytes(), name
    original = await read_with_lightrag(built.working_dir, "src", ids)
    copied = await read_with_lightrag(built.working_dir, "dst", ids)
    assert set(original) == set(copied)
    for key in original:
        assert copied[key] == original[key], key
    assert len(copied["nodes"]) > 5 and len(copied["edges"]) > 5
    assert len(copied["vectors:entities"]) == len(ids["entities"])


async def test_copied_matrix_is_the_normalised_vectors(built):
    dst = built.working_dir / "dst"
    for ns in VECTOR_NS:
        src_doc = json.loads((built.folder / f"vdb_{ns}.json").read_text(encoding="utf-8"))
        dst_doc = json.loads((dst / f"vdb_{ns}.json").read_text(encoding="utf-8"))
        assert dst_doc["embedding_dim"] == src_doc["embedding_dim"] == 16
        assert [r["vector"] for r in dst_doc["data"]] == [r["vector"] for r in src_doc["data"]]
        import base64
        a = np.frombuffer(base64.b64decode(src_doc["matrix"]), dtype="<f4")
        b = np.frombuffer(base64.b64decode(dst_doc["matrix"]), dtype="<f4")
        assert a.shape == b.shape and np.allclose(a, b, atol=2e-3)
