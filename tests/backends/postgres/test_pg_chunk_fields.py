"""Chunk vectors take tokens/chunk_order_index from text_chunks as they are inserted: one row version each."""

from __future__ import annotations

import numpy as np
import pytest

from ragstore_cli.backends.contract import LoadPlan
from ragstore_cli.records import Role, VectorBatch
from ragstore_cli.backends.postgres.chunk_fields import ChunkFieldMap
from ragstore_cli.backends.registry import open_backends
from ragstore_cli.config import load_settings
from ragstore_cli.errors import DataError

DIM = 8
TABLE = f"lightrag_vdb_chunks_m_{DIM}d"


def _chunks(ids: list[str]) -> list[tuple[str, dict]]:
    return [(i, {"tokens": 10 + n, "content": i, "chunk_order_index": n, "full_doc_id": "d", "file_path": "f",
                 "llm_cache_list": []}) for n, i in enumerate(ids)]


def _vectors(ids: list[str], **extra) -> VectorBatch:
    meta = [{"full_doc_id": "d", "content": i, "file_path": "f", **extra} for i in ids]
    return VectorBatch(ids, np.random.default_rng(0).standard_normal((len(ids), DIM), dtype=np.float32), meta)


class _Note:
    """What a load session is handed at its commit: no ledger here."""

    state: dict = {}
    store = None

    async def save(self) -> None:
        return None

    def point(self, name: str) -> None:
        return None


async def _load(env: dict[str, str], chunks: list[str], vectors: VectorBatch, *, replace: bool = True,
                apart: bool = False) -> None:
    """text_chunks then chunk vectors in ONE load session, as an import does; `apart`: text_chunks
    committed first, on their own (the vector writer then has no map of them: the trigger fills)."""
    settings = load_settings(environ={**env, "EMBEDDING_MODEL": "m", "EMBEDDING_DIM": str(DIM)})
    async with await open_backends(settings, "postgres", "ws") as stores:
        backend = next(iter(stores.backends.values()))
        if apart:
            kv = await stores.kv.writer("text_chunks", replace=replace)
            await kv.write(_chunks(chunks))
            await kv.commit()
        plan = LoadPlan(workspace="ws", roles=frozenset(Role), replace=replace, dims=(DIM,))
        session = await backend.loader(plan).session()
        try:
            if not apart:
                kv = await session.writer("kv/text_chunks", dim=None, rows=None)
                await kv.write(_chunks(chunks))
                await kv.commit()
            writer = await session.writer("vectors/chunks", dim=DIM, rows=len(vectors.ids))
            assert (writer.known_fields is None) is apart
            await writer.write(vectors)
            await writer.commit()
            await session.commit(_Note())
        finally:
            await session.close()


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("apart", [False, True], ids=["same-unit", "earlier-transaction"])
async def test_fields_come_from_text_chunks_without_a_second_row_version(pg_database, pg_server, replace, apart):
    db = pg_database["POSTGRES_DATABASE"]
    ids = [f"c{i}" for i in range(30)]
    await _load(pg_database, ids, _vectors(ids), replace=replace, apart=apart)
    rows = pg_server.psql(f"SELECT id, tokens, chunk_order_index FROM {TABLE} ORDER BY tokens", database=db)
    assert rows.split() == [f"c{i}|{10 + i}|{i}" for i in range(30)]
    # each row is the version the load inserted (line pointers 1..30 of page 0): no UPDATE made a second
    # version, which the index build in the same transaction would have indexed as well
    ctids = pg_server.psql(f"SELECT ctid FROM {TABLE} ORDER BY ctid", database=db).split()
    assert ctids == [f"(0,{i})" for i in range(1, 31)]
    leftovers = pg_server.psql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ragstore%' AND NOT tgisinternal",
                               database=db)
    assert leftovers.strip() == "0"


async def test_values_the_vectors_carry_are_kept(pg_database, pg_server):
    await _load(pg_database, ["a"], _vectors(["a"], tokens=99, chunk_order_index=7))
    row = pg_server.psql(f"SELECT tokens, chunk_order_index FROM {TABLE}", database=pg_database["POSTGRES_DATABASE"])
    assert row.strip() == "99|7"


async def test_a_chunk_vector_without_a_text_chunk_is_refused_and_nothing_lands(pg_database, pg_server):
    db = pg_database["POSTGRES_DATABASE"]
    await _load(pg_database, ["a"], _vectors(["a"]))
    with pytest.raises(DataError, match="'orphan' have no tokens/chunk_order_index"):
        await _load(pg_database, ["b"], _vectors(["b", "orphan"]))
    assert pg_server.psql(f"SELECT string_agg(id, ',') FROM {TABLE}", database=db).strip() == "a"
    leftovers = pg_server.psql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ragstore%'", database=db)
    assert leftovers.strip() == "0"


def test_the_map_answers_what_it_was_given_and_nothing_ambiguous():
    known = ChunkFieldMap()
    known.add([("a", {"tokens": 5, "chunk_order_index": 1}), ("b", {"tokens": 6, "chunk_order_index": 2}),
               ("dup", {"tokens": 1, "chunk_order_index": 1}), ("dup", {"tokens": 2, "chunk_order_index": 2}),
               ("bad", {"tokens": "7", "chunk_order_index": 3})])
    metas = [{"content": "x"}, {"tokens": 60}, {}, {}, {}, {"tokens": 0, "chunk_order_index": 0}]
    out = known.fill(["a", "b", "dup", "bad", "nobody", "a"], metas)
    assert out[0] == {"content": "x", "tokens": 5, "chunk_order_index": 1}
    assert out[1] == {"tokens": 60, "chunk_order_index": 2}  # what the vector carries wins
    assert out[2] == {} and out[3] == {} and out[4] == {}  # two values for one id / not an int / unknown
    assert out[5] is metas[5]
    assert metas[0] == {"content": "x"}  # the caller's dicts are not changed


def test_the_map_gives_up_past_its_limit():
    known = ChunkFieldMap(limit=2)
    known.add([(f"c{i}", {"tokens": i, "chunk_order_index": i}) for i in range(3)])
    assert known.full and known.fill(["c0"], [{}]) == [{}]
