"""Table and index names agree with LightRAG 1.5.7's own functions, for awkward model names too."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragstore_cli.errors import UsageError
from ragstore_cli.schema import names


def lightrag_suffix(model: str | None, dim: int) -> str | None:
    from lightrag.base import BaseVectorStorage

    class Probe:
        embedding_func = type("E", (), {"model_name": model, "embedding_dim": dim})()

    return BaseVectorStorage._generate_collection_suffix(Probe())  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(model=st.one_of(st.none(), st.text(max_size=30)), dim=st.integers(1, 4096),
       suffix=st.sampled_from(["id", "workspace_id", *names.VECTOR_INDEX_SUFFIXES.values()]))
def test_names_match_lightrag(model, dim, suffix):
    from lightrag.kg.postgres_impl import _safe_index_name

    assert names.model_suffix(model, dim) == lightrag_suffix(model, dim)
    expected = f"{names.VDB_ENTITY}_{lightrag_suffix(model, dim)}" if lightrag_suffix(model, dim) else names.VDB_ENTITY
    if len(expected) > 63:
        with pytest.raises(UsageError, match="63"):
            names.vector_table_name(names.VDB_ENTITY, model, dim)
        return
    table = names.vector_table_name(names.VDB_ENTITY, model, dim)
    assert table == expected
    assert names.safe_index_name(table, suffix) == _safe_index_name(table, suffix)


def test_examples_from_the_reference():
    assert names.vector_table_name(names.VDB_CHUNKS, "text-embedding-3-large", 3072) == \
        "LIGHTRAG_VDB_CHUNKS_text_embedding_3_large_3072d"
    assert names.vector_table_name(names.VDB_ENTITY, "BAAI/bge-m3", 1024) == "LIGHTRAG_VDB_ENTITY_baai_bge_m3_1024d"
    assert names.vector_table_name(names.VDB_RELATION, "  ", 8) == "LIGHTRAG_VDB_RELATION"
    with pytest.raises(UsageError):
        names.vector_table_name("LIGHTRAG_DOC_FULL", "m", 8)
    with pytest.raises(UsageError):
        names.vector_table_name(names.VDB_CHUNKS, "m", 0)
