"""One LightRAG-built workspace for every transfer test (LightRAG keeps per-workspace state in-process,
so a second build under the same workspace name in one test session would see the first one's docs)."""

from __future__ import annotations

import pytest

from tests.interop.lightrag_builder import build_workspace

SRC = "transfer_src"


@pytest.fixture(scope="session")
async def built(tmp_path_factory):
    return await build_workspace(tmp_path_factory.mktemp("rag"), SRC)
